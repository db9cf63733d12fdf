/**
 * The guest's busybox: the host's static one for a guest of the host's
 * architecture, else Debian's busybox-static of the guest's architecture,
 * fetched once with a private apt and cached.
 */
import { copyFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { hostArch, type Arch } from '../kernel/arch.js';
import { debianArchives, privateAptFor, type DebianFetchOptions } from '../kernel/debian.js';
import { baseSuite } from '../kernel/spec.js';
import { MmaplabError } from '../util/errors.js';
import { runChecked } from '../util/exec.js';
import { exists, installDirAtomic, removeTree } from '../util/fsx.js';
import { isStaticElfFile } from '../util/elf.js';
import { which } from '../util/tools.js';

export async function findStaticBusybox(): Promise<string> {
  const candidates = [process.env.MMAPLAB_BUSYBOX, '/bin/busybox', '/usr/bin/busybox', which('busybox')].filter((p): p is string => !!p);
  for (const c of candidates) {
    if ((await exists(c)) && (await isStaticElfFile(c))) return c;
  }
  throw new MmaplabError('missing-tool', 'a statically linked busybox was not found', {
    hint: 'install the Debian/Ubuntu package busybox-static (sudo apt-get install busybox-static), or run mmaplab setup',
  });
}

/** The user's Debian archives (--archive-uri, --security-uri). */
export type ArchiveOptions = Pick<DebianFetchOptions, 'archiveUri' | 'securityUri'>;

/** A static busybox for a guest of arch; suite: the Debian release to take it from (the kernel's). */
export async function busyboxFor(arch: Arch, suite: string, cacheDir: string, archives: ArchiveOptions = {}): Promise<string> {
  if (arch === hostArch()) return findStaticBusybox();
  const base = baseSuite(suite || 'bookworm');
  const dir = join(cacheDir, 'userland', `busybox-${arch}-${base}`);
  const path = join(dir, 'busybox');
  if (await exists(path)) return path;
  const a = debianArchives(archives);
  if (!a.archive) throw new MmaplabError('fetch', `no Debian archive to fetch an ${arch} busybox from`, { hint: 'give one with --archive-uri URI (or MMAPLAB_DEBIAN_ARCHIVE=URI)' });
  await installDirAtomic(dir, async (staging) => {
    const apt = await privateAptFor(join(staging, 'apt'), base, a, [arch]);
    await apt.update();
    const debs = join(staging, 'debs');
    await apt.download(['busybox-static'], debs);
    const deb = (await readdir(debs)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new MmaplabError('fetch', `busybox-static for ${arch} was not downloaded from debian:${base}`);
    await runChecked('fetch', 'dpkg-deb -x', 'dpkg-deb', ['-x', join(debs, deb), join(staging, 'root')]);
    await copyFile(join(staging, 'root', 'bin', 'busybox'), join(staging, 'busybox'));
    for (const d of ['apt', 'debs', 'root']) await removeTree(join(staging, d));
  });
  return path;
}
