import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { installDirAtomic, sweepStaging } from '../../src/util/fsx.js';

describe('atomic cache entries', () => {
  it('two racing writers leave exactly one complete entry and no staging directory', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fsx-'));
    const final = join(root, 'kernel');
    const fill = (who: string, delay: number) => async (dir: string) => {
      writeFileSync(join(dir, 'part1'), who);
      await new Promise((r) => setTimeout(r, delay));
      writeFileSync(join(dir, 'part2'), who);
    };
    await Promise.all([installDirAtomic(final, fill('a', 30)), installDirAtomic(final, fill('b', 10))]);
    const p1 = readFileSync(join(final, 'part1'), 'utf8');
    expect(readFileSync(join(final, 'part2'), 'utf8')).toBe(p1);
    expect(readdirSync(root)).toEqual(['kernel']);
  });

  it('a failed fill leaves nothing behind', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fsx-'));
    await expect(
      installDirAtomic(join(root, 'x'), async (dir) => {
        writeFileSync(join(dir, 'half'), '');
        throw new Error('download killed');
      }),
    ).rejects.toThrow('download killed');
    expect(readdirSync(root)).toEqual([]);
  });

  it('sweeps the staging directory of a process that was killed, but not a live one', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fsx-'));
    mkdirSync(join(root, '.staging-999999999-dead-kernel'));
    mkdirSync(join(root, `.staging-${process.pid}-live-kernel`));
    mkdirSync(join(root, 'complete'));
    await sweepStaging(root);
    expect(readdirSync(root).sort()).toEqual([`.staging-${process.pid}-live-kernel`, 'complete']);
  });
});
