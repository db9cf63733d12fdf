/**
 * Filesystem helpers for a cache that several mmaplab processes share: every
 * entry is made in a private staging place and renamed into position, so a
 * killed process leaves no half-made entry and two racing processes never
 * see each other's partial work (the loser's copy is simply discarded).
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, relative } from 'node:path';

export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

function stagingName(final: string): string {
  return join(dirname(final), `.staging-${process.pid}-${randomBytes(4).toString('hex')}-${final.split('/').pop()}`);
}

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = stagingName(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Make a directory entry atomically: `fill` populates a fresh staging
 * directory, which is then renamed to `final`. If another process got there
 * first, its entry wins and ours is removed. Returns the final path.
 */
export async function installDirAtomic(final: string, fill: (staging: string) => Promise<void>): Promise<string> {
  if (await exists(final)) return final;
  await mkdir(dirname(final), { recursive: true });
  const staging = stagingName(final);
  await mkdir(staging, { recursive: true });
  try {
    await fill(staging);
    try {
      await rename(staging, final);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      // Lost the race: the other process's entry is complete; use it.
    }
  } finally {
    // A build may leave a folder it made unreadable; cleaning up never hides the error that ended the fill.
    await removeTree(staging);
  }
  return final;
}

/** Give the owner back read, write and search on every folder of a tree (as `chmod -R u+rwX`), so it can be removed. */
async function chmodTree(dir: string): Promise<void> {
  await chmod(dir, 0o700).catch(() => {});
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await chmodTree(join(dir, e.name));
}

/** Remove a tree whatever modes were left on it (a folder made unreadable cannot be removed until made writable again); never throws. */
export async function removeTree(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true }).catch(async () => {
    await chmodTree(dir);
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  });
}

/** Remove leftovers of processes that no longer exist (killed mid-download, a watch ended by Ctrl-C): entries named <prefix>-<pid>-... */
export async function sweepStaging(dir: string, prefix = '.staging'): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(`${prefix}-`)) continue;
    const m = /^(\d+)-/.exec(n.slice(prefix.length + 1));
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && !processAlive(pid)) await removeTree(join(dir, n));
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** All regular files under dir, sorted, as paths relative to dir. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(relative(dir, p));
    }
  }
  await walk(dir);
  return out.sort();
}

/** A stable hash over named inputs: strings, buffers, and whole directory trees. */
export class Hasher {
  private readonly h = createHash('sha256');
  add(label: string, value: string | Uint8Array): this {
    this.h.update(`${label}\0${value.length}\0`);
    this.h.update(value);
    return this;
  }
  async addTree(label: string, dir: string): Promise<this> {
    for (const f of await listFiles(dir)) this.add(`${label}/${f}`, await readFile(join(dir, f)));
    return this;
  }
  async addFile(label: string, path: string): Promise<this> {
    return this.add(label, await readFile(path));
  }
  digest(len = 16): string {
    return this.h.digest('hex').slice(0, len);
  }
}
