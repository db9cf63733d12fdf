/**
 * The lab guest's initramfs: static busybox with its applets as symlinks
 * (made here, so the guest spends no time on `busybox --install`), the agent
 * as /init, and the kernel's virtio modules for the job channel. It holds
 * nothing of the driver under test: that arrives as a job, so one initramfs
 * (and later one snapshot) serves every driver on a kernel.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Kernel } from '../kernel/types.js';
import { resolveModules } from '../kernel/modules.js';
import { runChecked } from '../util/exec.js';
import { exists, Hasher, writeFileAtomic } from '../util/fsx.js';
import { projectPaths } from '../util/paths.js';
import { buildStaticProgram } from '../kbuild/userspace.js';
import { cpioArchive, withParents, type CpioEntry } from './cpio.js';
import { envFile, jobFileName, traceEnv } from './job.js';
import { busyboxFor, type ArchiveOptions } from './busybox.js';
import { hostArch, unameOf } from '../kernel/arch.js';

export { findStaticBusybox } from './busybox.js';

/** Modules the agent loads, roots only; dependencies are resolved per kernel. */
export const GUEST_MODULES = ['virtio_pci', 'virtio_mmio', 'virtio_console'] as const;

/** Bump when what goes into the initramfs changes in a way its inputs' hashes do not show. */
const INITRAMFS_FORMAT = 6;

export interface Initramfs {
  path: string;
  key: string;
  busybox: string;
  /** Job files the guest holds from the start (names under files/): jobs need not send them. */
  preloaded: string[];
  /** The test program it holds (the same build jobs name; kept in the run directory). */
  testProgram: string;
}

/** archives: where a busybox of another architecture than the host's is fetched from (the user's --archive-uri). */
export async function buildInitramfs(kernel: Kernel, cacheDir: string, archives: ArchiveOptions = {}): Promise<Initramfs> {
  const busybox = await busyboxFor(kernel.arch, kernel.suite, cacheDir, archives);
  const machine = unameOf(kernel.arch);
  const initPath = join(projectPaths.vm, 'init');
  const jobScript = join(projectPaths.vm, 'job.sh');
  // Sets the clock and reseeds the RNG after a snapshot restore (see userspace/guest-sync.c).
  const sync = await buildStaticProgram(join(projectPaths.userspace, 'guest-sync.c'), cacheDir, kernel.arch);
  // The test program is the same for every job: in the initramfs (and so in every snapshot), it is never sent.
  const test = await buildStaticProgram(join(projectPaths.userspace, 'mmap-test.c'), cacheDir, kernel.arch);
  const testData = await readFile(test.path);
  const preloaded = [jobFileName(test.path, testData)];
  const hasher = new Hasher().add('format', String(INITRAMFS_FORMAT)).add('kernel', kernel.release).add('modules', GUEST_MODULES.join(',')).add('test', testData).add('trace', envFile(traceEnv(machine)));
  const key = (await (await (await (await hasher.addFile('busybox', busybox)).addFile('init', initPath)).addFile('job', jobScript)).addFile('guest-sync', sync.path)).digest();
  const path = join(cacheDir, 'initramfs', `${kernel.release}-${key}.cpio`);
  if (await exists(path)) return { path, key, busybox, preloaded, testProgram: test.path };

  // A busybox of another architecture does not run here: the guest's /init links its applets (vm/init).
  const applets = kernel.arch === hostArch() ? (await runChecked('guest', 'busybox --list', busybox, ['--list'])).stdout.split('\n').filter((a) => /^[\w.[-]+$/.test(a)) : ['sh'];
  const modules = await resolveModules(kernel.modulesDir, GUEST_MODULES, await readFile(kernel.config, 'utf8'));
  const entries: CpioEntry[] = [
    { type: 'dir', path: 'dev' },
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { type: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { type: 'dir', path: 'proc' },
    { type: 'dir', path: 'sys' },
    { type: 'dir', path: 'tmp', mode: 0o1777 },
    { type: 'dir', path: 'sbin' },
    { type: 'file', path: 'bin/busybox', data: await readFile(busybox), mode: 0o755 },
    ...applets.filter((a) => a !== 'busybox').map((a): CpioEntry => ({ type: 'symlink', path: `bin/${a}`, target: 'busybox' })),
    { type: 'file', path: 'init', data: await readFile(initPath), mode: 0o755 },
    { type: 'file', path: 'bin/guest-sync', data: await readFile(sync.path), mode: 0o755 },
    // For the agent's kprobe preparation (job.sh --prepare); jobs bring their own copy.
    { type: 'file', path: 'lib/mmaplab/job.sh', data: await readFile(jobScript), mode: 0o755 },
    { type: 'file', path: `lib/mmaplab/files/${preloaded[0]}`, data: testData, mode: 0o755 },
    { type: 'file', path: 'etc/mmaplab/modules', data: `${modules.map((m) => m.name).join('\n')}\n` },
    // The kprobe events job.sh --prepare registers before the snapshot (the guest's architecture).
    { type: 'file', path: 'etc/mmaplab/trace.env', data: envFile(traceEnv(machine)) },
    ...modules.map((m): CpioEntry => ({ type: 'file', path: `lib/mmaplab/${m.name}.ko`, data: m.data })),
  ];
  await writeFileAtomic(path, cpioArchive(withParents(entries)));
  return { path, key, busybox, preloaded, testProgram: test.path };
}
