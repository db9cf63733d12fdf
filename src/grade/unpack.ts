/**
 * A student's archive (.zip, .tar, .tar.gz) unpacked into a folder of its own,
 * refusing what could reach outside it: an absolute path or ".." (refused,
 * with the name), links and devices (left out, said), and more files or bytes
 * than a driver's sources could be (a zip bomb stops at the limit). Nothing in
 * an archive is ever run or followed.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import yauzl from 'yauzl';

/** What one submission may hold, all its archives and folders together: entries of any kind, and bytes. */
export const UNPACK_LIMITS = { files: 2000, bytes: 64 << 20 } as const;

export type Unpacked =
  | { kind: 'ok'; files: number; skipped: string[] }
  /** The archive is the student's mistake: corrupt, not an archive, a path that escapes it, too big. */
  | { kind: 'refused'; why: string };

export class Refusal extends Error {}

/** The path an entry would be written to, or a refusal when it would leave the folder. */
function entryPath(dest: string, name: string): string | undefined {
  const clean = name.replace(/\\/g, '/');
  if (clean.startsWith('/') || /^[A-Za-z]:/.test(clean)) throw new Refusal(`an entry with an absolute path (${clean.slice(0, 120)}): refused`);
  const rel = normalize(clean);
  if (rel === '..' || rel.startsWith(`..${sep}`) || rel.split(sep).includes('..')) throw new Refusal(`an entry whose path escapes the archive (${clean.slice(0, 120)}): refused`);
  if (rel === '.' || rel === '') return undefined;
  return join(dest, rel);
}

/** One submission's allowance, shared by every archive and folder it is made of. */
export class Budget {
  files = 0;
  bytes = 0;
  /** An entry of any kind: a file, a folder, a link left out. */
  file(): void {
    if (++this.files > UNPACK_LIMITS.files) throw new Refusal(`more than ${UNPACK_LIMITS.files} entries: not a driver's sources`);
  }
  add(n: number): void {
    this.bytes += n;
    if (this.bytes > UNPACK_LIMITS.bytes) throw new Refusal(`more than ${UNPACK_LIMITS.bytes >> 20} MiB unpacked: not a driver's sources`);
  }
}

async function writeLimited(path: string, stream: AsyncIterable<Buffer>, budget: Budget): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  // wx: an entry never replaces one written before it (two entries of one name).
  const fh = await open(path, 'wx');
  try {
    for await (const chunk of stream) {
      budget.add(chunk.length);
      await fh.write(chunk);
    }
  } finally {
    await fh.close();
  }
}

async function unzip(file: string, dest: string, budget: Budget, skipped: string[]): Promise<void> {
  const zip = await new Promise<yauzl.ZipFile>((res, rej) => yauzl.open(file, { lazyEntries: true, strictFileNames: false, validateEntrySizes: true }, (e, z) => (e ? rej(e) : res(z))));
  try {
    await new Promise<void>((res, rej) => {
      zip.on('error', rej);
      zip.on('end', () => res());
      zip.on('entry', (entry: yauzl.Entry) => {
        void (async () => {
          const path = entryPath(dest, entry.fileName);
          // Unix mode in the high half of the external attributes: S_IFLNK is a link.
          const type = (entry.externalFileAttributes >>> 16) & 0o170000;
          budget.file();
          if (!path || entry.fileName.endsWith('/')) {
            if (path) await mkdir(path, { recursive: true });
          } else if (type === 0o120000) skipped.push(`${entry.fileName} (a symbolic link)`);
          else {
            if (entry.uncompressedSize > UNPACK_LIMITS.bytes) throw new Refusal(`an entry of ${entry.uncompressedSize} bytes: not a driver's sources`);
            const stream = await new Promise<Readable>((r, j) => zip.openReadStream(entry, (e, s) => (e ? j(e) : r(s))));
            await writeLimited(path, stream, budget);
          }
          zip.readEntry();
        })().catch(rej);
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
}

async function untar(file: string, dest: string, gzip: boolean, budget: Budget, skipped: string[]): Promise<void> {
  const extract = tar.extract();
  const source = createReadStream(file);
  const reading = gzip ? pipeline(source, createGunzip(), extract) : pipeline(source, extract);
  // Awaited after the entries; until then its failure shows as the loop's.
  reading.catch(() => undefined);
  for await (const entry of extract) {
    const h = entry.header;
    const path = entryPath(dest, h.name);
    budget.file();
    if (h.type === 'directory') {
      if (path) await mkdir(path, { recursive: true });
      entry.resume();
    } else if (h.type === 'file' || h.type === 'contiguous-file') {
      if (path) await writeLimited(path, entry as AsyncIterable<Buffer>, budget);
      else entry.resume();
    } else {
      // Links, devices and fifos are never made (tar-stream reads pax headers itself).
      skipped.push(`${h.name} (a ${h.type ?? 'special'} entry)`);
      entry.resume();
    }
  }
  await reading;
}

async function kindOf(file: string): Promise<'zip' | 'gzip' | 'tar' | undefined> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    if (bytesRead >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'zip';
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
    if (bytesRead >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
    return undefined;
  } finally {
    await fh.close();
  }
}

/** Unpack file into dest (which must exist and be empty), by what its bytes say it is, within the submission's budget. */
export async function unpackArchive(file: string, dest: string, budget = new Budget()): Promise<Unpacked> {
  const skipped: string[] = [];
  try {
    const kind = await kindOf(file);
    if (kind === undefined) return { kind: 'refused', why: 'it is not a zip, tar or tar.gz archive (or is empty)' };
    if (kind === 'zip') await unzip(file, dest, budget, skipped);
    else await untar(file, dest, kind === 'gzip', budget, skipped);
    return { kind: 'ok', files: budget.files, skipped };
  } catch (e) {
    if (e instanceof Refusal) return { kind: 'refused', why: e.message };
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return { kind: 'refused', why: 'two entries of one name' };
    // yauzl checks a zip's names itself, in its own words.
    const escape = /^(invalid relative path|absolute path): (.*)$/.exec((e as Error).message);
    if (escape) return { kind: 'refused', why: `an entry ${escape[1] === 'absolute path' ? 'with an absolute path' : 'whose path escapes the archive'} (${escape[2]!.slice(0, 120)}): refused` };
    // yauzl's and zlib's words for a damaged archive.
    return { kind: 'refused', why: `it is damaged (${(e as Error).message.split('\n')[0]!.slice(0, 160)})` };
  }
}
