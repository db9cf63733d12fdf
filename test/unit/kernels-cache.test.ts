/** `mmaplab kernels prune` on a cache laid out as mmaplab lays it out. */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { listCache, pruneCache } from '../../src/commands/kernels.js';

let cache: string;

/** Two flavours of one suite cached, each with a module build and a snapshot. */
function twoFlavours(): string {
  cache = mkdtempSync(join(tmpdir(), 'mmaplab-prune-'));
  const debian = join(cache, 'kernels', 'debian');
  mkdirSync(join(debian, 'aliases'), { recursive: true });
  for (const [flavour, release] of [['cloud-amd64', '6.1.0-57-cloud-amd64'], ['amd64', '6.1.0-57-amd64']] as const) {
    mkdirSync(join(debian, release));
    writeFileSync(join(debian, release, 'vmlinuz'), 'x'.repeat(1000));
    writeFileSync(join(debian, 'aliases', `bookworm_${flavour}.json`), JSON.stringify({ release }));
    mkdirSync(join(cache, 'builds', `module-${release}-abc`), { recursive: true });
    mkdirSync(join(cache, 'snapshots', `${release}-tcg-256m`), { recursive: true });
  }
  return cache;
}

afterEach(() => rmSync(cache, { recursive: true, force: true }));

describe('kernels prune', () => {
  it('removes the kernel of the flavour asked for, not every flavour of the suite', async () => {
    const dir = twoFlavours();
    expect((await listCache(dir)).kernels.map((k) => [k.release, k.specs])).toEqual([
      ['6.1.0-57-amd64', ['debian:bookworm (amd64)']],
      ['6.1.0-57-cloud-amd64', ['debian:bookworm (cloud-amd64)']],
    ]);
    const r = await pruneCache(dir, { specs: ['debian:bookworm'], flavour: 'amd64', all: false });
    expect(r.removed.map((x) => x.name)).toEqual(['kernel 6.1.0-57-amd64', 'build module-6.1.0-57-amd64-abc', 'snapshot 6.1.0-57-amd64-tcg-256m']);
    expect(readdirSync(join(dir, 'kernels', 'debian')).sort()).toEqual(['6.1.0-57-cloud-amd64', 'aliases']);
    expect(readdirSync(join(dir, 'kernels', 'debian', 'aliases'))).toEqual(['bookworm_cloud-amd64.json']);
  });

  it('removes a release named as such, whatever its flavour', async () => {
    const dir = twoFlavours();
    const r = await pruneCache(dir, { specs: ['6.1.0-57-cloud-amd64'], flavour: 'amd64', all: false });
    expect(r.removed.map((x) => x.name)[0]).toBe('kernel 6.1.0-57-cloud-amd64');
    expect((await listCache(dir)).kernels.map((k) => k.release)).toEqual(['6.1.0-57-amd64']);
  });
});
