/** Just enough ELF reading to tell a static executable from a dynamic one, and what machine an object is for. */
import { open } from 'node:fs/promises';

const PT_INTERP = 3;

/** True for a 64-bit little-endian ELF executable with no program interpreter. */
export function isStaticElf(head: Buffer): boolean {
  if (head.length < 64 || head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) return false;
  const phoff = Number(head.readBigUInt64LE(32));
  const phentsize = head.readUInt16LE(54);
  const phnum = head.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > head.length) return false;
    if (head.readUInt32LE(at) === PT_INTERP) return false;
  }
  return true;
}

/** A file's first bytes (fewer where it is shorter). */
async function headOf(path: string, bytes: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export async function isStaticElfFile(path: string): Promise<boolean> {
  return isStaticElf(await headOf(path, 8192));
}

/** An ELF object's e_machine (3 EM_386, 62 EM_X86_64, 183 EM_AARCH64); undefined for no little-endian ELF. */
export async function elfMachineOfFile(path: string): Promise<number | undefined> {
  const head = await headOf(path, 20).catch(() => undefined);
  if (!head || head.length < 20 || head.readUInt32BE(0) !== 0x7f454c46 || head[5] !== 1) return undefined;
  return head.readUInt16LE(18);
}
