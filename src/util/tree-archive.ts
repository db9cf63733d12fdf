/**
 * Folders packed into one .tar.gz and unpacked again, symlinks kept as
 * symlinks (a kernel's headers and a build root are full of them). Unpacking
 * refuses what could write outside the destination: absolute or ".." names,
 * and any entry below a symlink the archive made. Nothing is followed.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, symlink, utimes } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { MmaplabError } from './errors.js';

/** Pack each of roots (folders relative to base) into file; skip(rel) leaves a path out. */
export async function packTrees(base: string, roots: readonly string[], file: string, skip: (rel: string) => boolean = () => false): Promise<{ files: number; bytes: number }> {
  const pack = tar.pack();
  const written = pipeline(pack, createGzip({ level: 6 }), createWriteStream(file));
  let files = 0;
  let bytes = 0;
  const add = (header: Parameters<typeof pack.entry>[0], data?: Buffer) =>
    new Promise<void>((res, rej) => {
      pack.entry(header, data ?? '', (e) => (e ? rej(e) : res()));
    });
  async function walk(rel: string): Promise<void> {
    if (skip(rel)) return;
    const abs = join(base, rel);
    const st = await lstat(abs);
    const common = { name: rel, mode: st.mode & 0o7777, mtime: st.mtime };
    if (st.isSymbolicLink()) await add({ ...common, type: 'symlink', linkname: await readlink(abs) });
    else if (st.isDirectory()) {
      await add({ ...common, type: 'directory' });
      for (const n of (await readdir(abs)).sort()) await walk(join(rel, n));
    } else if (st.isFile()) {
      // Whole files: a cache's largest (a vmlinux) is tens of MiB.
      const fh = await open(abs, 'r');
      try {
        const data = await fh.readFile();
        await add({ ...common, type: 'file', size: data.length }, data);
        files++;
        bytes += data.length;
      } finally {
        await fh.close();
      }
    }
  }
  try {
    for (const r of roots) await walk(r);
  } finally {
    pack.finalize();
  }
  await written;
  return { files, bytes };
}

function refuse(file: string, why: string): MmaplabError {
  return new MmaplabError('usage', `${file}: ${why}: refused`, { hint: 'give an archive that mmaplab kernels export wrote' });
}

/**
 * Unpack file into dest (an empty folder). allowTop: each top-level folder
 * the archive may hold, with the least depth at which a symlink may stand in
 * it (a link in place of kernels/debian would make whatever it names the
 * folder the importer moves things through). Symlinks may point anywhere (a
 * build root's point into the root itself), but nothing is ever written
 * through one.
 */
export async function unpackTrees(file: string, dest: string, allowTop: Readonly<Record<string, number>>): Promise<{ files: number }> {
  const links = new Set<string>();
  const extract = tar.extract();
  const reading = pipeline(createReadStream(file), createGunzip(), extract);
  reading.catch(() => undefined);
  let files = 0;
  try {
    for await (const entry of extract) {
      const h = entry.header;
      const rel = normalize(h.name).replace(/\/+$/, '');
      const parts = rel.split(sep);
      if (h.name.startsWith('/') || parts.includes('..')) throw refuse(file, `an entry outside the archive (${h.name})`);
      const linkDepth = allowTop[parts[0]!];
      if (linkDepth === undefined) throw refuse(file, `an entry that is not part of a cache (${h.name})`);
      for (let i = 1; i < parts.length; i++) if (links.has(parts.slice(0, i).join(sep))) throw refuse(file, `an entry below a symbolic link (${h.name})`);
      const abs = join(dest, rel);
      if (h.type === 'directory') await mkdir(abs, { recursive: true, mode: 0o755 });
      else if (h.type === 'symlink') {
        if (parts.length < linkDepth) throw refuse(file, `a symbolic link where a folder of the cache goes (${h.name})`);
        await mkdir(dirname(abs), { recursive: true });
        await symlink(h.linkname ?? '', abs);
        links.add(rel);
      } else if (h.type === 'file') {
        await mkdir(dirname(abs), { recursive: true });
        await pipeline(entry, createWriteStream(abs, { flags: 'wx', mode: (h.mode ?? 0o644) & 0o755 }));
        if (h.mtime) await utimes(abs, h.mtime, h.mtime);
        files++;
        continue;
      } else throw refuse(file, `a ${h.type ?? 'special'} entry (${h.name})`);
      entry.resume();
    }
    await reading;
  } catch (e) {
    if (e instanceof MmaplabError) throw e;
    throw refuse(file, `not a .tar.gz mmaplab can read (${(e as Error).message.split('\n')[0]})`);
  }
  return { files };
}
