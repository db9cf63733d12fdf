import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cpioArchive, withParents } from '../../src/guest/cpio.js';

describe('newc cpio writer', () => {
  const archive = cpioArchive(
    withParents([
      { type: 'file', path: 'bin/hello', data: '#!/bin/sh\necho hi\n', mode: 0o755 },
      { type: 'symlink', path: 'bin/sh', target: 'busybox' },
      { type: 'file', path: 'etc/odd-size', data: Buffer.from([1, 2, 3]) },
      { type: 'dir', path: 'tmp', mode: 0o1777 },
      { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    ]),
  );

  it('is read back by busybox cpio (the guest unpacks jobs with it)', () => {
    const listing = execFileSync('busybox', ['cpio', '-t'], { input: archive }).toString().split('\n').filter(Boolean);
    expect(listing).toEqual(['bin', 'bin/hello', 'bin/sh', 'etc', 'etc/odd-size', 'tmp', 'dev', 'dev/console']);
  });

  it('round-trips contents, modes and links', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cpio-test-'));
    // Device nodes need root to create; extract everything else.
    execFileSync('busybox', ['cpio', '-i', '-d', '-m', 'bin/*', 'etc/*', 'tmp'], { input: archive, cwd: dir });
    expect(readFileSync(join(dir, 'bin/hello'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect(statSync(join(dir, 'bin/hello')).mode & 0o777).toBe(0o755);
    expect(readlinkSync(join(dir, 'bin/sh'))).toBe('busybox');
    expect([...readFileSync(join(dir, 'etc/odd-size'))]).toEqual([1, 2, 3]);
  });

  it('pads every header and body to 4 bytes and ends with the trailer', () => {
    expect(archive.length % 4).toBe(0);
    expect(archive.subarray(0, 6).toString()).toBe('070701');
    expect(archive.includes(Buffer.from('TRAILER!!!\0'))).toBe(true);
  });
});
