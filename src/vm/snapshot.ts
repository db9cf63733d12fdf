/**
 * The snapshot cache: a guest that booted to the agent's ready, saved as its
 * RAM file (ram) and QEMU's device state (state), with meta.json saying what it
 * was made from. One slot per kernel release, accelerator and memory size;
 * the key inside it (QEMU binary and version, kernel image, initramfs and the
 * whole QEMU command line) must match exactly, or the snapshot is rebuilt.
 * A restore reads the RAM file privately (share=off), so any number of
 * guests restore from one snapshot and none of them changes it.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { exists, processAlive } from '../util/fsx.js';
import { qemuArgs, type VmSpec } from './qemu-args.js';

/** Bump when the agent's waiting state or the snapshot files change in a way the key does not show. */
const SNAPSHOT_FORMAT = 1;

type FileId = { path: string; size: number; mtimeMs: number };

export interface SnapshotKey {
  format: number;
  qemu: { version: string; binary: FileId };
  kernel: FileId;
  initrd: FileId;
  /** QEMU's command line with the per-process socket and RAM paths replaced by placeholders. */
  args: string[];
}

export interface SnapshotMeta {
  key: SnapshotKey;
  hash: string;
  state: { size: number; sha256: string };
  ram: { size: number; mtimeMs: number };
  created: string;
  /** How long the boot that made it took, to show what a restore saves. */
  bootMs: number;
}

export type SnapshotLookup =
  | { kind: 'ok'; dir: string; meta: SnapshotMeta }
  | { kind: 'missing'; dir: string }
  /** Made from something else: never used, rebuilt. `why` names what changed. */
  | { kind: 'stale'; dir: string; why: string }
  /** Files missing, truncated or altered since it was made: not used; the run boots. */
  | { kind: 'corrupt'; dir: string; why: string };

export type BootSpec = Omit<VmSpec, 'channelSocket' | 'qmpSocket' | 'incoming' | 'ram'>;

async function fileId(path: string): Promise<FileId> {
  const s = await stat(path);
  return { path, size: s.size, mtimeMs: s.mtimeMs };
}

export async function snapshotKey(spec: BootSpec, qemu: { binary: string; version: string }): Promise<SnapshotKey> {
  const args = qemuArgs({ ...spec, channelSocket: '<channel>', qmpSocket: '<qmp>', ram: { path: '<ram>', share: true } });
  return {
    format: SNAPSHOT_FORMAT,
    qemu: { version: qemu.version, binary: await fileId(qemu.binary) },
    kernel: await fileId(spec.kernelImage),
    initrd: await fileId(spec.initrd),
    args,
  };
}

export function keyHash(key: SnapshotKey): string {
  return createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 16);
}

/** Which part of the key differs, in words, for the note that says why a snapshot was rebuilt. */
export function keyDifference(old: SnapshotKey, now: SnapshotKey): string {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (old.format !== now.format) return 'the snapshot format changed';
  if (old.qemu.version !== now.qemu.version) return `QEMU changed (${old.qemu.version} -> ${now.qemu.version})`;
  if (!same(old.qemu.binary, now.qemu.binary)) return 'the QEMU binary changed';
  if (!same(old.kernel, now.kernel)) return 'the kernel image changed';
  if (!same(old.initrd, now.initrd)) return 'the initramfs changed';
  if (!same(old.args, now.args)) return 'the QEMU command line changed';
  return 'its key changed';
}

export function slotDir(cacheDir: string, release: string, spec: BootSpec): string {
  return join(cacheDir, 'snapshots', `${release}-${spec.accel}-${spec.memoryMb}m`);
}

export async function lookupSnapshot(dir: string, key: SnapshotKey): Promise<SnapshotLookup> {
  let meta: SnapshotMeta;
  try {
    meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as SnapshotMeta;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return (await exists(dir)) ? { kind: 'corrupt', dir, why: 'meta.json is missing' } : { kind: 'missing', dir };
    return { kind: 'corrupt', dir, why: 'meta.json is unreadable' };
  }
  if (meta.hash !== keyHash(key)) return { kind: 'stale', dir, why: meta.key ? keyDifference(meta.key, key) : 'its key changed' };
  try {
    const ram = await stat(join(dir, 'ram'));
    if (ram.size !== meta.ram.size || ram.mtimeMs !== meta.ram.mtimeMs) return { kind: 'corrupt', dir, why: 'the RAM file changed since the snapshot was made' };
    // The state is small (a few hundred KB): checked whole on every use.
    const state = await readFile(join(dir, 'state'));
    if (state.length !== meta.state.size || sha256(state) !== meta.state.sha256) return { kind: 'corrupt', dir, why: 'the device state file does not match its checksum' };
  } catch {
    return { kind: 'corrupt', dir, why: 'a snapshot file is missing' };
  }
  return { kind: 'ok', dir, meta };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Make a snapshot in a staging directory beside the slot and move it into
 * place: `save` boots a guest with its RAM in `<staging>/ram`, saves the
 * device state to `<staging>/state` and says what it booted (the key). A slot in use by another process is
 * renamed away first, so its restores keep reading the files they opened.
 */
export async function makeSnapshot(
  dir: string,
  save: (files: { ram: string; state: string }) => Promise<{ bootMs: number; key: SnapshotKey }>,
): Promise<SnapshotMeta> {
  await sweepLeftovers(dirname(dir));
  const staging = `${dir}.staging-${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(staging, { recursive: true });
  try {
    const files = { ram: join(staging, 'ram'), state: join(staging, 'state') };
    // The key comes from the guest that booted (a kernel whose PVH boot failed is saved from its bzImage).
    const { bootMs, key } = await save(files);
    const state = await readFile(files.state);
    if (state.length === 0) throw new Error('QEMU wrote an empty device state');
    const ram = await stat(files.ram);
    const meta: SnapshotMeta = {
      key,
      hash: keyHash(key),
      state: { size: state.length, sha256: sha256(state) },
      ram: { size: ram.size, mtimeMs: ram.mtimeMs },
      created: new Date().toISOString(),
      bootMs: Math.round(bootMs),
    };
    await writeFile(join(staging, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
    await discardSnapshot(dir);
    try {
      await rename(staging, dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      // Another run made it in the meantime: theirs serves if it is the same.
      const theirs = await lookupSnapshot(dir, key);
      if (theirs.kind !== 'ok') throw e;
      return theirs.meta;
    }
    return meta;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Staging and trash directories of mmaplab processes that were killed before they could remove them (a RAM file each). */
async function sweepLeftovers(root: string): Promise<void> {
  for (const n of await readdir(root).catch(() => [] as string[])) {
    const m = /\.(?:staging|trash)-(\d+)-[0-9a-f]+$/.exec(n);
    if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) await rm(join(root, n), { recursive: true, force: true });
  }
}

/** Remove a slot (stale, corrupt, or one that failed to restore). */
export async function discardSnapshot(dir: string): Promise<void> {
  const trash = `${dir}.trash-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(dir, trash);
  } catch {
    return;
  }
  await rm(trash, { recursive: true, force: true });
}
