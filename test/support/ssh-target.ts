/**
 * An SSH target for the tests: a real kernel that is not the test machine's
 * own. The lab's QEMU guest, booted with user-mode networking (port 22
 * forwarded from 127.0.0.1 only) and an initramfs holding a minimal Debian
 * root made with mmdebstrap from the host's own archive: openssh-server,
 * sudo, kmod, gcc-12 and make, plus the kernel's headers at their Debian
 * paths. Two accounts: `lab` (sudo without a password) and `student` (sudo
 * wants a password it does not have). The image is cached per kernel; host
 * and client keys are made with it.
 */
import { createServer } from 'node:net';
import { lstat, mkdir, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import ssh2 from 'ssh2';
import tarStream from 'tar-stream';
import { buildArchive } from '../../src/machines/setup.js';
import { cpioArchive, withParents, type CpioEntry } from '../../src/guest/cpio.js';
import { findStaticBusybox } from '../../src/guest/initramfs.js';
import type { Kernel } from '../../src/kernel/types.js';
import { resolveModules } from '../../src/kernel/modules.js';
import { run, runChecked } from '../../src/util/exec.js';
import { exists, Hasher, installDirAtomic } from '../../src/util/fsx.js';
import { GuestVm } from '../../src/vm/guest-vm.js';
import { baseAppend, type Accel } from '../../src/vm/qemu-args.js';
import type { QemuInfo } from '../../src/vm/qemu.js';
import { ROOT } from '../helpers.js';

const FORMAT = 2;
const SUITE = 'bookworm';
/** What a machine needs to build and load an out-of-tree module, and to be reached over SSH. */
const PACKAGES = ['gcc', 'make', 'libc6-dev', 'libelf1', 'openssh-server', 'sudo', 'kmod', 'procps', 'mount', 'mawk'];
/** Large files no module build uses (LTO, sanitizers, manuals): a smaller initramfs boots faster. */
const EXCLUDES = ['/usr/share/man/*', '/usr/share/doc/*', '/usr/share/locale/*', '/usr/share/info/*', '/usr/bin/*lto-dump*', '/usr/lib/gcc/x86_64-linux-gnu/12/lto1', '/usr/lib/x86_64-linux-gnu/lib*san.so*', '/usr/lib/gcc/x86_64-linux-gnu/12/lib*san*'];
const HOOKS = [
  // Host keys are made per image below, so the test knows the one to trust.
  'rm -f "$1"/etc/ssh/ssh_host_*',
  // Usable with a key only ('*': no password, not locked).
  'for u in lab student; do chroot "$1" useradd -m -s /bin/sh $u && chroot "$1" usermod -p "*" $u; done',
  'echo "lab ALL=(ALL:ALL) NOPASSWD: ALL" > "$1/etc/sudoers.d/lab"; echo "student ALL=(ALL:ALL) ALL" > "$1/etc/sudoers.d/student"; chmod 440 "$1"/etc/sudoers.d/*',
  'printf "UsePAM no\\nPasswordAuthentication no\\nKbdInteractiveAuthentication no\\n" > "$1/etc/ssh/sshd_config.d/mmaplab-test.conf"',
  'printf "127.0.0.1 localhost\\n127.0.1.1 mmaplab-target\\n" > "$1/etc/hosts"',
];
const TARGET_MODULES = ['virtio_pci', 'virtio_console', 'virtio_net'];
const INIT = join(ROOT, 'test', 'support', 'target-init.sh');

export interface TargetImage {
  initrd: string;
  /** The client's private key (OpenSSH format), authorized for both accounts. */
  identity: string;
  /** The target's host key, as a known_hosts key field: "ssh-ed25519 AAAA...". */
  hostKey: string;
}

/** Merged /usr: the root's /lib, /bin and /sbin are symlinks into /usr. */
function usrMerged(path: string): string {
  return path.replace(/^(lib|bin|sbin)\//, 'usr/$1/');
}

/** The mmdebstrap tarball as cpio entries: ownership becomes root's, modes (setuid sudo) are kept. */
async function tarEntries(tarPath: string): Promise<CpioEntry[]> {
  const out: CpioEntry[] = [];
  const files = new Map<string, Buffer>();
  const ex = tarStream.extract();
  ex.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    stream.on('end', () => {
      const path = header.name.replace(/^\.\//, '').replace(/\/$/, '');
      const mode = header.mode ?? 0o644;
      if (path && !path.startsWith('dev/')) {
        if (header.type === 'directory') out.push({ type: 'dir', path, mode });
        else if (header.type === 'file') {
          const data = Buffer.concat(chunks);
          files.set(path, data);
          out.push({ type: 'file', path, data, mode });
        } else if (header.type === 'symlink') out.push({ type: 'symlink', path, target: header.linkname ?? '' });
        else if (header.type === 'link') {
          const data = files.get((header.linkname ?? '').replace(/^\.\//, ''));
          if (data) out.push({ type: 'file', path, data, mode });
        }
      }
      next();
    });
    stream.resume();
  });
  await pipeline(createReadStream(tarPath), ex);
  return out;
}

/** A directory tree of the cached kernel (headers, kbuild) as entries at its Debian path. */
async function treeEntries(rootfs: string, dir: string): Promise<CpioEntry[]> {
  const out: CpioEntry[] = [];
  const walk = async (abs: string): Promise<void> => {
    const st = await lstat(abs);
    const path = usrMerged(relative(rootfs, abs));
    // Made absolute: moving lib/ into usr/lib (merged /usr) would break a relative link.
    if (st.isSymbolicLink()) out.push({ type: 'symlink', path, target: `/${relative(rootfs, resolve(dirname(abs), await readlink(abs)))}` });
    else if (st.isDirectory()) {
      out.push({ type: 'dir', path, mode: st.mode & 0o7777 });
      for (const e of await readdir(abs)) await walk(join(abs, e));
    } else if (st.isFile()) out.push({ type: 'file', path, data: await readFile(abs), mode: st.mode & 0o7777 });
  };
  await walk(dir);
  return out;
}

export async function ensureTargetImage(kernel: Kernel, cacheDir: string): Promise<TargetImage> {
  const busybox = await findStaticBusybox();
  const key = (await (await new Hasher().add('format', String(FORMAT)).add('kernel', `${kernel.release} ${kernel.packageVersion}`).add('packages', PACKAGES.join(',')).add('excludes', EXCLUDES.join(',')).add('hooks', HOOKS.join('\n')).addFile('busybox', busybox)).addFile('init', INIT)).digest();
  const dir = join(cacheDir, 'ssh-target', `${kernel.release}-${key}`);
  const describe = async (): Promise<TargetImage> => ({
    initrd: join(dir, 'initrd.cpio'),
    identity: join(dir, 'client_key'),
    hostKey: (await readFile(join(dir, 'host_key.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' '),
  });
  if (await exists(join(dir, 'initrd.cpio'))) return describe();

  await installDirAtomic(dir, async (staging) => {
    const archive = buildArchive({ archiveUri: undefined, securityUri: undefined });
    if (!archive.uri) throw new Error('no Debian archive in the host apt sources for the SSH target root');
    const tar = join(staging, 'root.tar');
    const r = await run('mmdebstrap', [
      '--variant=apt', `--include=${PACKAGES.join(',')}`, '--components=main',
      ...(archive.keyring ? [`--keyring=${archive.keyring}`] : []),
      '--aptopt=Acquire::Languages "none"',
      ...EXCLUDES.map((e) => `--dpkgopt=path-exclude=${e}`),
      ...HOOKS.map((h) => `--customize-hook=${h}`),
      SUITE, tar, archive.uri,
    ], { timeoutMs: 900_000 });
    if (!r.ok) throw new Error(`mmdebstrap for the SSH target failed:\n${r.all.split('\n').slice(-15).join('\n')}`);

    const hostKey = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'mmaplab-target' });
    const client = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'mmaplab-test-client' });
    await writeFile(join(staging, 'client_key'), client.private, { mode: 0o600 });
    await writeFile(join(staging, 'client_key.pub'), `${client.public}\n`);
    await writeFile(join(staging, 'host_key.pub'), `${hostKey.public}\n`);

    const rootfs = join(kernel.dir, 'root');
    const kernelTrees: CpioEntry[] = [];
    for (const sub of ['usr/src', 'usr/lib', 'lib']) {
      if (!(await exists(join(rootfs, sub)))) continue;
      for (const e of await readdir(join(rootfs, sub))) {
        // Headers and kbuild; of /lib/modules only the build and source links and the module lists.
        if (sub.endsWith('lib') && e === 'modules') {
          const mdir = join(rootfs, sub, 'modules', kernel.release);
          for (const m of await readdir(mdir)) if (m !== 'kernel') kernelTrees.push(...(await treeEntries(rootfs, join(mdir, m))));
        } else kernelTrees.push(...(await treeEntries(rootfs, join(rootfs, sub, e))));
      }
    }
    const modules = await resolveModules(kernel.modulesDir, TARGET_MODULES, await readFile(kernel.config, 'utf8'));
    const applets = (await runChecked('guest', 'busybox --list', busybox, ['--list'])).stdout.split('\n').filter((a) => /^[\w.[-]+$/.test(a));
    const home = (u: string): CpioEntry[] => [
      { type: 'dir', path: `home/${u}/.ssh`, mode: 0o755 },
      { type: 'file', path: `home/${u}/.ssh/authorized_keys`, data: `${client.public}\n`, mode: 0o644 },
    ];
    const entries: CpioEntry[] = [
      ...(await tarEntries(tar)),
      ...kernelTrees,
      { type: 'file', path: 'mmaplab/bin/busybox', data: await readFile(busybox), mode: 0o755 },
      ...applets.filter((a) => a !== 'busybox').map((a): CpioEntry => ({ type: 'symlink', path: `mmaplab/bin/${a}`, target: 'busybox' })),
      { type: 'file', path: 'mmaplab/modules/list', data: `${modules.map((m) => m.name).join('\n')}\n` },
      ...modules.map((m): CpioEntry => ({ type: 'file', path: `mmaplab/modules/${m.name}.ko`, data: m.data })),
      { type: 'file', path: 'init', data: await readFile(INIT), mode: 0o755 },
      { type: 'file', path: 'etc/ssh/ssh_host_ed25519_key', data: hostKey.private, mode: 0o600 },
      { type: 'file', path: 'etc/ssh/ssh_host_ed25519_key.pub', data: `${hostKey.public}\n`, mode: 0o644 },
      ...home('lab'),
      ...home('student'),
    ];
    await rm(tar, { force: true });
    await writeFile(join(staging, 'initrd.cpio'), cpioArchive(withParents(entries)));
  });
  return describe();
}

/** A free TCP port on 127.0.0.1 (QEMU binds it right after; a lost race fails the boot loudly). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export interface BootedTarget {
  vm: GuestVm;
  port: number;
  image: TargetImage;
  /** ssh://lab@127.0.0.1:<port> */
  url(user?: 'lab' | 'student'): string;
  /** A known_hosts line for it. */
  knownHostsLine: string;
  consoleLog: string;
}

export async function bootTarget(qemu: QemuInfo, accel: Accel, kernel: Kernel, image: TargetImage, consoleLog: string): Promise<BootedTarget> {
  await mkdir(join(consoleLog, '..'), { recursive: true });
  const port = await freePort();
  const r = await GuestVm.start(
    { accel, memoryMb: 2048, smp: 2, kernelImage: kernel.vmlinux ?? kernel.image, initrd: image.initrd, append: baseAppend(), firmware: qemu.firmware, sshForwardPort: port },
    { qemu: qemu.binary, consoleLog, bootTimeoutMs: 240_000 },
  );
  if (r.kind !== 'ready') throw new Error(`the SSH target did not boot (${r.kind}); console: ${consoleLog}`);
  return {
    vm: r.vm,
    port,
    image,
    url: (user = 'lab') => `ssh://${user}@127.0.0.1:${port}`,
    knownHostsLine: `[127.0.0.1]:${port} ${image.hostKey}`,
    consoleLog,
  };
}

/** Run a command on the target as the test itself (not through mmaplab), to look for leftovers. */
export async function targetExec(t: BootedTarget, command: string): Promise<{ code: number | null; stdout: string }> {
  const key = await readFile(t.image.identity, 'utf8');
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('ready', () => {
      c.exec(command, (err, ch) => {
        if (err) return reject(err);
        let stdout = '';
        ch.on('data', (d: Buffer) => (stdout += d.toString()));
        ch.stderr.on('data', () => {});
        ch.on('close', (code: number | null) => {
          c.end();
          resolve({ code, stdout });
        });
      });
    });
    c.on('error', reject);
    c.connect({ host: '127.0.0.1', port: t.port, username: 'lab', privateKey: key, readyTimeout: 60_000 });
  });
}
