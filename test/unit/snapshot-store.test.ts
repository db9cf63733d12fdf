/**
 * The snapshot cache on its own: keys, and what lookup says of a slot that is
 * missing, current, stale or damaged. The files are stand-ins; a real guest
 * is saved and restored in test/integration/snapshot.test.ts.
 */
import { mkdtempSync, readFileSync, utimesSync, writeFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { baseAppend } from '../../src/vm/qemu-args.js';
import { discardSnapshot, keyDifference, keyHash, lookupSnapshot, makeSnapshot, slotDir, snapshotKey, type BootSpec } from '../../src/vm/snapshot.js';

let dir: string;
let spec: BootSpec;
const qemu = { binary: process.execPath, version: '10.0.2' };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mmaplab-snap-unit-'));
  writeFileSync(join(dir, 'vmlinux'), 'kernel');
  writeFileSync(join(dir, 'initrd.cpio'), 'initrd');
  spec = { accel: 'tcg', memoryMb: 256, kernelImage: join(dir, 'vmlinux'), initrd: join(dir, 'initrd.cpio'), append: baseAppend(), firmware: undefined };
});

async function make(slot: string, s: BootSpec = spec) {
  return makeSnapshot(slot, async (files) => {
    writeFileSync(files.ram, Buffer.alloc(4096, 1));
    writeFileSync(files.state, 'device state');
    return { bootMs: 1234, key: await snapshotKey(s, qemu) };
  });
}

describe('snapshot keys', () => {
  it('cover QEMU, the kernel and initramfs files and the command line, without per-process paths', async () => {
    const k = await snapshotKey(spec, qemu);
    expect(k.args.join(' ')).toContain('path=<channel>');
    expect(k.args.join(' ')).toContain('mem-path=<ram>,share=on');
    expect(k.args).not.toContain('-incoming');
    expect(keyHash(k)).toBe(keyHash(await snapshotKey(spec, qemu)));
    expect(keyDifference(k, await snapshotKey(spec, { ...qemu, version: '10.1.0' }))).toBe('QEMU changed (10.0.2 -> 10.1.0)');
    expect(keyDifference(k, await snapshotKey({ ...spec, append: [...baseAppend(), 'nokaslr'] }, qemu))).toBe('the QEMU command line changed');
    writeFileSync(spec.initrd, 'another initrd');
    expect(keyDifference(k, await snapshotKey(spec, qemu))).toBe('the initramfs changed');
  });

  it('one slot per kernel, accelerator and memory size', () => {
    expect(slotDir('/c', '6.1.0-56-cloud-amd64', spec)).toBe('/c/snapshots/6.1.0-56-cloud-amd64-tcg-256m');
  });
});

describe('looking a snapshot up', () => {
  it('missing, then current once made; the staging directory is gone', async () => {
    const slot = join(dir, 'slot');
    expect((await lookupSnapshot(slot, await snapshotKey(spec, qemu))).kind).toBe('missing');
    const meta = await make(slot);
    expect(meta).toMatchObject({ bootMs: 1234, state: { size: 12 } });
    const found = await lookupSnapshot(slot, await snapshotKey(spec, qemu));
    expect(found).toMatchObject({ kind: 'ok', meta: { hash: meta.hash } });
    expect(readdirSync(dir).filter((n) => n.includes('staging'))).toEqual([]);
  });

  it('stale when made from something else, saying what', async () => {
    const slot = join(dir, 'slot');
    await make(slot);
    const found = await lookupSnapshot(slot, await snapshotKey({ ...spec, memoryMb: 512 }, qemu));
    expect(found).toEqual({ kind: 'stale', dir: slot, why: 'the QEMU command line changed' });
  });

  it('damaged: a changed state, a touched RAM file, a missing file or meta.json', async () => {
    const slot = join(dir, 'slot');
    const key = await snapshotKey(spec, qemu);
    await make(slot);
    writeFileSync(join(slot, 'state'), 'device statE');
    expect(await lookupSnapshot(slot, key)).toMatchObject({ kind: 'corrupt', why: 'the device state file does not match its checksum' });
    await make(slot);
    utimesSync(join(slot, 'ram'), new Date(), new Date(Date.now() + 5000));
    expect(await lookupSnapshot(slot, key)).toMatchObject({ kind: 'corrupt', why: 'the RAM file changed since the snapshot was made' });
    await make(slot);
    rmSync(join(slot, 'ram'));
    expect(await lookupSnapshot(slot, key)).toMatchObject({ kind: 'corrupt', why: 'a snapshot file is missing' });
    await make(slot);
    rmSync(join(slot, 'meta.json'));
    expect(await lookupSnapshot(slot, key)).toMatchObject({ kind: 'corrupt', why: 'meta.json is missing' });
  });

  it('making one sweeps away the staging and trash of killed processes (a RAM file each), not of live ones', async () => {
    const { mkdirSync } = await import('node:fs');
    const dead = join(dir, 'other.staging-999999-0a1b2c3d');
    const deadTrash = join(dir, 'other.trash-999999-0a1b2c3d');
    const live = join(dir, `other.staging-${process.ppid}-0a1b2c3d`);
    for (const d of [dead, deadTrash, live]) mkdirSync(d);
    await make(join(dir, 'slot'));
    expect([existsSync(dead), existsSync(deadTrash), existsSync(live)]).toEqual([false, false, true]);
  });

  it('two runs making the same snapshot at once both end with it, and nothing else is left', async () => {
    const slot = join(dir, 'slot');
    const [a, b] = await Promise.all([make(slot), make(slot)]);
    expect(a.hash).toBe(b.hash);
    expect(await lookupSnapshot(slot, await snapshotKey(spec, qemu))).toMatchObject({ kind: 'ok' });
    expect(readdirSync(dir).filter((n) => /staging|trash/.test(n))).toEqual([]);
  });

  it('a save that fails leaves the slot as it was and no staging behind', async () => {
    const slot = join(dir, 'slot');
    const before = await make(slot);
    await expect(makeSnapshot(slot, async () => {
      throw new Error('QEMU died');
    })).rejects.toThrow('QEMU died');
    expect(JSON.parse(readFileSync(join(slot, 'meta.json'), 'utf8'))).toMatchObject({ hash: before.hash });
    expect(readdirSync(dir).filter((n) => n.includes('staging'))).toEqual([]);
    await discardSnapshot(slot);
    expect(existsSync(slot)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.includes('trash'))).toEqual([]);
  });
});
