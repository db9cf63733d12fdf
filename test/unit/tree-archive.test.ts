/** kernels export/import's archive: trees with their symlinks round-trip; nothing is written outside or through a link. */
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { packTrees, unpackTrees } from '../../src/util/tree-archive.js';
import { importCache } from '../../src/commands/cache-transfer.js';
import { tarOf } from '../support/archives.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'mmaplab-tree-'));

async function tgz(entries: Parameters<typeof tarOf>[0]): Promise<Buffer> {
  return gzipSync(await tarOf(entries));
}

describe('tree archives', () => {
  it('pack and unpack keep files, modes and symlinks (absolute ones too), and leave out what is skipped', async () => {
    const src = tmp();
    mkdirSync(join(src, 'kernels', 'k', 'bin'), { recursive: true });
    writeFileSync(join(src, 'kernels', 'k', 'bin', 'tool'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(src, 'kernels', 'k', 'kernel.json'), '{}');
    symlinkSync('bin/tool', join(src, 'kernels', 'k', 'rel'));
    symlinkSync('/usr/lib/x', join(src, 'kernels', 'k', 'abs'));
    mkdirSync(join(src, 'kernels', '.staging-1'));
    writeFileSync(join(src, 'kernels', '.staging-1', 'half'), 'x');
    const file = join(tmp(), 'a.tar.gz');
    expect(await packTrees(src, ['kernels'], file, (rel) => rel.includes('.staging-'))).toEqual({ files: 2, bytes: 12 });
    const dest = tmp();
    expect(await unpackTrees(file, dest, { kernels: 3 })).toEqual({ files: 2 });
    expect(readFileSync(join(dest, 'kernels', 'k', 'bin', 'tool'), 'utf8')).toBe('#!/bin/sh\n');
    expect(lstatSync(join(dest, 'kernels', 'k', 'bin', 'tool')).mode & 0o777).toBe(0o755);
    expect(readlinkSync(join(dest, 'kernels', 'k', 'rel'))).toBe('bin/tool');
    expect(readlinkSync(join(dest, 'kernels', 'k', 'abs'))).toBe('/usr/lib/x');
    expect(() => lstatSync(join(dest, 'kernels', '.staging-1'))).toThrow();
  });

  it('refuses names outside, other top folders, and any entry below a link the archive made', async () => {
    const cases: Array<[Parameters<typeof tgz>[0], RegExp]> = [
      [[{ name: 'kernels/../../x', data: 'x' }], /an entry outside the archive \(kernels\/\.\.\/\.\.\/x\): refused$/],
      [[{ name: 'etc/passwd', data: 'x' }], /an entry that is not part of a cache \(etc\/passwd\): refused$/],
      [[{ name: 'kernels/k/l', type: 'symlink', linkname: '/tmp' }, { name: 'kernels/k/l/evil', data: 'x' }], /an entry below a symbolic link \(kernels\/k\/l\/evil\): refused$/],
      // A link where a folder of the cache goes would be what an importer moves things through.
      [[{ name: 'kernels/debian', type: 'symlink', linkname: '/root/projects' }], /a symbolic link where a folder of the cache goes \(kernels\/debian\): refused$/],
    ];
    for (const [entries, why] of cases) {
      const d = tmp();
      writeFileSync(join(d, 'a.tar.gz'), await tgz(entries));
      mkdirSync(join(d, 'out'));
      await expect(unpackTrees(join(d, 'a.tar.gz'), join(d, 'out'), { kernels: 3 })).rejects.toThrow(why);
    }
    const d = tmp();
    writeFileSync(join(d, 'junk.tar.gz'), 'not gzip');
    await expect(unpackTrees(join(d, 'junk.tar.gz'), d, { kernels: 3 })).rejects.toThrow(/not a \.tar\.gz mmaplab can read/);
  });

  it('kernels import: a link in place of the kernels folder is refused, and nothing outside the cache moves', async () => {
    const d = tmp();
    const victim = join(d, 'projects');
    mkdirSync(join(victim, 'thesis'), { recursive: true });
    writeFileSync(join(d, 'evil.tar.gz'), await tgz([{ name: 'kernels/debian', type: 'symlink', linkname: victim }]));
    await expect(importCache(join(d, 'cache'), join(d, 'evil.tar.gz'))).rejects.toThrow(/a symbolic link where a folder of the cache goes/);
    expect(readdirSync(victim)).toEqual(['thesis']);
    expect(readdirSync(join(d, 'cache'))).toEqual([]);
  });
});
