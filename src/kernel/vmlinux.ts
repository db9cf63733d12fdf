/**
 * The uncompressed kernel for a PVH boot: QEMU loads an ELF vmlinux with a
 * PVH entry note directly, which skips the guest's own decompression and the
 * real-mode setup (measured here: 0.8 s of 2.6 s for 6.1, 1.3 s of 3.8 s for
 * 7.2 under TCG). It is cut out of the bzImage (the payload's compression
 * found by its magic) and kept in the cache; where that fails, the bzImage boots.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { createReadStream, createWriteStream } from 'node:fs';
import { spawn } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import { dirname, join } from 'node:path';
import { exists } from '../util/fsx.js';
import { which } from '../util/tools.js';
import type { Kernel } from './types.js';

/** The payload compressions Debian's and upstream's bzImages use, by magic, with the tool that undoes each. */
const FORMATS: ReadonlyArray<{ name: string; magic: Buffer; tool: string; args: string[] }> = [
  { name: 'zstd', magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), tool: 'zstd', args: ['-dcq'] },
  { name: 'lz4', magic: Buffer.from([0x02, 0x21, 0x4c, 0x18]), tool: 'lz4', args: ['-dcq'] },
  { name: 'xz', magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), tool: 'xz', args: ['-dcq'] },
  { name: 'gzip', magic: Buffer.from([0x1f, 0x8b, 0x08]), tool: 'gzip', args: ['-dcq'] },
];

/** XEN_ELFNOTE_PHYS32_ENTRY: the note QEMU looks for to boot an ELF kernel through PVH. */
const PVH_NOTE = 18;

/** True for a complete x86-64 ELF kernel with a PVH entry: every segment inside the file, the note present. */
export function isPvhVmlinux(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf.readUInt16LE(18) !== 62) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  let pvh = false;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + 56 > elf.length) return false;
    const type = elf.readUInt32LE(ph);
    const offset = Number(elf.readBigUInt64LE(ph + 8));
    const size = Number(elf.readBigUInt64LE(ph + 32));
    if (offset + size > elf.length) return false; // truncated: the decompressor stopped early
    if (type !== 4) continue; // PT_NOTE
    for (let at = offset; at + 12 <= offset + size; ) {
      const namesz = elf.readUInt32LE(at);
      const descsz = elf.readUInt32LE(at + 4);
      const ntype = elf.readUInt32LE(at + 8);
      const name = elf.toString('latin1', at + 12, at + 12 + Math.max(0, namesz - 1));
      if (name === 'Xen' && ntype === PVH_NOTE) pvh = true;
      at += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
    }
  }
  return pvh;
}

/** Decompress from `offset` with `tool`; trailing bytes after the stream make some tools complain, which is fine. */
async function decompress(image: string, offset: number, tool: string, args: string[], out: string): Promise<void> {
  const child = spawn(tool, args, { stdio: ['pipe', 'pipe', 'ignore'] });
  const done = new Promise<void>((resolve) => child.on('close', () => resolve()));
  child.on('error', () => {});
  child.stdin.on('error', () => {}); // the tool may stop reading at the end of its stream
  await Promise.all([
    pipeline(createReadStream(image, { start: offset }), child.stdin).catch(() => {}),
    pipeline(child.stdout, createWriteStream(out)),
    done,
  ]);
}

/**
 * Where a kernel's vmlinux is kept: beside a fetched Debian kernel, in the
 * cache for any other. Never in a kernel tree: Kbuild takes a vmlinux there
 * as the tree's own and tries to add BTF to modules against it.
 */
export function vmlinuxPath(kernel: Kernel, cacheDir: string): string {
  return kernel.spec.startsWith('debian:') ? join(kernel.dir, 'vmlinux') : join(cacheDir, 'vmlinux', `${kernel.release}-${kernel.packageVersion}`);
}

/**
 * The PVH-bootable vmlinux of a kernel, made once; undefined when the image
 * cannot be unpacked here (no tool for its compression, no PVH note), so the
 * bzImage boots instead.
 */
export async function pvhImage(kernel: Kernel, cacheDir: string): Promise<string | undefined> {
  const path = vmlinuxPath(kernel, cacheDir);
  if (await exists(`${path}.none`)) return undefined;
  if (await exists(path)) return path;
  const head = await readFile(kernel.image);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await mkdir(dirname(path), { recursive: true });
    for (const f of FORMATS) {
      if (!which(f.tool)) continue;
      // The first match is usually the payload; a later one may be, when the setup code happens to contain the magic.
      for (let at = head.indexOf(f.magic); at >= 0; at = head.indexOf(f.magic, at + 1)) {
        await decompress(kernel.image, at, f.tool, f.args, tmp);
        if (isPvhVmlinux(await readFile(tmp))) {
          await rename(tmp, path);
          return path;
        }
      }
    }
  } catch {
    /* fall through: boot the bzImage */
  } finally {
    await rm(tmp, { force: true });
  }
  await markNoPvh(path);
  return undefined;
}

/** The marker that makes pvhImage() answer "boot the bzImage" for this kernel. */
async function markNoPvh(vmlinux: string): Promise<void> {
  await open(`${vmlinux}.none`, 'w').then((h) => h.close()).catch(() => {});
}

/** After a PVH boot that did not reach init: boot this kernel's bzImage from now on. */
export async function forgetPvhImage(vmlinux: string): Promise<void> {
  await markNoPvh(vmlinux);
  await rm(vmlinux, { force: true });
}

/** The marker saying microvm did not boot this vmlinux with this QEMU version (pc boots it instead). */
function noMicrovmMarker(vmlinux: string, qemuVersion: string): string {
  return `${vmlinux}.no-microvm-${qemuVersion.replace(/[^\w.+-]/g, '_')}`;
}

export async function microvmRuledOut(vmlinux: string, qemuVersion: string): Promise<boolean> {
  return exists(noMicrovmMarker(vmlinux, qemuVersion));
}

/** After a microvm boot that failed where pc then booted the same vmlinux: pc for this kernel and QEMU from now on. */
export async function ruleOutMicrovm(vmlinux: string, qemuVersion: string): Promise<void> {
  await open(noMicrovmMarker(vmlinux, qemuVersion), 'w').then((h) => h.close()).catch(() => {});
}
