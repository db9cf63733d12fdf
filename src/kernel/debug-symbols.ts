/**
 * The kernel's own symbols for mmaplab debug: Debian ships them apart from
 * the kernel, in linux-image-<release>-dbg (bookworm's cloud kernel: a 283 MB
 * download, 1.7 GB installed, nearly all of it the modules' debug files). Only
 * the vmlinux is taken out of it (590 MB), straight from the package's data,
 * into the cache, where every later debug session finds it. The package comes
 * through the same private apt as the kernel, at the kernel's own version.
 */
import { randomBytes } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ByteCount } from '../model/progress.js';
import { MmaplabError } from '../util/errors.js';
import { runChecked } from '../util/exec.js';
import { exists, installDirAtomic, sweepStaging } from '../util/fsx.js';
import { requireTool } from '../util/tools.js';
import { PrivateApt } from './apt.js';
import { aptLinesFor, debianArchives } from './debian.js';
import type { Kernel } from './types.js';

/** The Debian package with the kernel's debug info. */
export function kernelDbgPackage(release: string): string {
  return `linux-image-${release}-dbg`;
}

/** The vmlinux with debug info, as the -dbg package's data holds it. */
export function vmlinuxMember(release: string): string {
  return `./usr/lib/debug/boot/vmlinux-${release}`;
}

function symbolsRoot(cacheDir: string): string {
  return join(cacheDir, 'kernel-symbols');
}

/** Where the kernel's vmlinux with debug info is cached: by release and package version. */
export function kernelSymbolsDir(cacheDir: string, kernel: Pick<Kernel, 'release' | 'packageVersion'>): string {
  return join(symbolsRoot(cacheDir), `${kernel.release}_${kernel.packageVersion}`);
}

export async function cachedKernelSymbols(cacheDir: string, kernel: Pick<Kernel, 'release' | 'packageVersion'>): Promise<string | undefined> {
  const p = join(kernelSymbolsDir(cacheDir, kernel), 'vmlinux');
  return (await exists(p)) ? p : undefined;
}

/** Take the vmlinux alone out of a -dbg package, without unpacking the rest (`out`: the file to write). */
export async function extractVmlinux(deb: string, release: string, out: string): Promise<void> {
  const dpkgDeb = requireTool('dpkg-deb');
  const script = '"$1" --fsys-tarfile "$2" | tar -xOf - "$3" > "$4"';
  await runChecked('fetch', `extracting vmlinux-${release}`, 'sh', ['-c', script, 'sh', dpkgDeb, deb, vmlinuxMember(release), out], { timeoutMs: 600_000 });
  const head = Buffer.alloc(4);
  const f = await open(out, 'r');
  try {
    await f.read(head, 0, 4, 0);
  } finally {
    await f.close();
  }
  if (!head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) throw new MmaplabError('fetch', `${deb} holds no vmlinux-${release} (what came out is not an ELF file)`);
}

export interface SymbolsFetchOptions {
  cacheDir: string;
  archiveUri?: string | undefined;
  securityUri?: string | undefined;
  onProgress?: (msg: string, bytes?: ByteCount) => void;
}

/** The kernel's vmlinux with debug info: cached, or fetched now (the -dbg package of the kernel's version) and cached. */
export async function kernelSymbols(kernel: Kernel, opts: SymbolsFetchOptions): Promise<string> {
  const cached = await cachedKernelSymbols(opts.cacheDir, kernel);
  if (cached) return cached;
  const progress = opts.onProgress ?? (() => {});
  const archives = debianArchives(opts);
  if (!archives.archive) throw new MmaplabError('fetch', "no Debian archive found in this host's apt sources", { hint: 'give one with --archive-uri, or debug without the kernel\'s symbols (--no-kernel-symbols)' });
  const root = symbolsRoot(opts.cacheDir);
  await sweepStaging(root);
  const work = join(root, `.staging-${process.pid}-apt-${randomBytes(4).toString('hex')}`);
  const pkg = `${kernelDbgPackage(kernel.release)}=${kernel.packageVersion}`;
  try {
    progress(`resolving ${kernelDbgPackage(kernel.release)} ${kernel.packageVersion} (the kernel's symbols; --no-kernel-symbols skips them)`);
    const apt = await PrivateApt.create(join(work, 'apt'), aptLinesFor(kernel.suite, archives));
    await apt.update();
    if (!(await apt.has(pkg))) {
      throw new MmaplabError('fetch', `debian:${kernel.suite} serves no ${pkg}`, { hint: "debug with the module's symbols only: --no-kernel-symbols" });
    }
    const what = `downloading ${kernelDbgPackage(kernel.release)} (once; cached for every later session)`;
    await apt.download([pkg], join(work, 'debs'), (b) => progress(what, b));
    const deb = join(work, 'debs', `${kernelDbgPackage(kernel.release)}_${kernel.packageVersion.replace(/^\d+:/, '')}_amd64.deb`);
    await installDirAtomic(kernelSymbolsDir(opts.cacheDir, kernel), async (staging) => {
      progress(`extracting vmlinux-${kernel.release} from ${kernelDbgPackage(kernel.release)}`);
      await extractVmlinux(deb, kernel.release, join(staging, 'vmlinux'));
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return join(kernelSymbolsDir(opts.cacheDir, kernel), 'vmlinux');
}
