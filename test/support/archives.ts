/** Archives the tests write: tars (with links when asked) and zips, as bytes. */
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import yazl from 'yazl';

export interface TarEntry {
  name: string;
  data?: string | Buffer;
  type?: 'file' | 'directory' | 'symlink';
  linkname?: string;
  mode?: number;
}

export async function tarOf(entries: readonly TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name, ...(e.type ? { type: e.type } : {}), ...(e.linkname ? { linkname: e.linkname } : {}), ...(e.mode ? { mode: e.mode } : {}) }, e.data ?? '');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of Readable.from(pack) as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

export async function zipOf(add: (z: yazl.ZipFile) => void): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  add(zip);
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}
