/**
 * `mmaplab doctor`: every tool and condition mmaplab needs, looked at without
 * changing anything (no guest is booted, nothing is installed or created), as
 * findings the report renders. The packages come from bin/packages.txt, the
 * list bin/install-deps and `mmaplab setup` install from.
 */
import { existsSync } from 'node:fs';
import { access, constants, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { compilerMajor, hostCompiler } from '../kbuild/compiler.js';
import { loadCachedKernel, debianArchives } from '../kernel/debian.js';
import { doctorExit, type DoctorReport, type Finding } from '../model/doctor.js';
import { probeSandbox, requestedConfinement } from '../sandbox/policy.js';
import { isStaticElfFile } from '../util/elf.js';
import { run } from '../util/exec.js';
import { systemPackages, type SystemPackage } from '../util/packages.js';
import { which } from '../util/tools.js';
import { kvmStatus } from '../vm/accel.js';
import { listCache } from './kernels.js';
import type { CacheListing } from '../model/cache.js';

export interface DoctorOptions {
  cacheDir: string;
  /** Also the packages only the test suite needs (a clone's). */
  tests: boolean;
  platform?: NodeJS.Platform;
  path?: string;
}

const LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib64', '/lib'];

/** Where a package's probe finds it, or undefined. */
function probeFound(probe: string, path: string | undefined): string | undefined {
  if (probe.startsWith('lib:')) return LIB_DIRS.map((d) => join(d, probe.slice(4))).find((p) => existsSync(p));
  if (probe.startsWith('/')) return existsSync(probe) ? probe : undefined;
  return which(probe, path);
}

const GiB = 1024 ** 3;

export async function doctor(o: DoctorOptions): Promise<DoctorReport> {
  const platform = o.platform ?? process.platform;
  if (platform !== 'linux') return unsupported(platform);
  const findings: Finding[] = [];
  const wanted = systemPackages().filter((p) => o.tests || !p.need.startsWith('test'));
  for (const p of wanted) findings.push(packageFinding(p, o.path));
  findings.push(...(await qemuFindings(o.path)));
  // One walk of the cache for the three findings that read it: a cache of several kernels and build roots is many files.
  const listing = await listCache(o.cacheDir);
  findings.push(...(await compilerFindings(listing, o.path)));
  findings.push(await sandboxFinding(), await userNamespaceFinding(o.path));
  findings.push(archiveFinding(listing), await diskFinding(o.cacheDir), await cacheFinding(o.cacheDir, listing));
  const kvm = await kvmStatus(o.cacheDir);
  findings.push({ id: 'kvm', title: 'KVM', status: kvm.usable ? 'ok' : 'warn', detail: kvm.detail, ...(kvm.fix ? { fix: kvm.fix } : {}) });
  const missing = wanted.filter((p) => findings.some((f) => f.id === `package:${p.debian}` && f.status !== 'ok'));
  const cmd = (prefix: string, names: Array<string | undefined>) => {
    const known = [...new Set(names.filter((n): n is string => !!n))];
    return known.length ? `${prefix} ${known.join(' ')}` : undefined;
  };
  return {
    kind: 'linux',
    findings,
    install: {
      debian: cmd('sudo apt-get install --no-install-recommends', missing.map((p) => p.debian)),
      fedora: cmd('sudo dnf install', missing.map((p) => p.fedora)),
      arch: cmd('sudo pacman -S --needed', missing.map((p) => p.arch)),
    },
    exitCode: doctorExit(findings),
  };
}

function unsupported(platform: string): DoctorReport {
  const common = 'mmaplab runs on Linux: it boots Debian kernels in QEMU and builds drivers with their headers, in a Linux sandbox.';
  const advice =
    platform === 'win32'
      ? [common, 'On Windows, use WSL2: `wsl --install -d Debian`, then inside it `npx mmaplab setup` and `npx mmaplab run` (KVM works in WSL2 where nested virtualization is on).']
      : platform === 'darwin'
        ? [common, 'On macOS, use a Linux VM (UTM, Lima, multipass or similar) with Debian or Ubuntu, then `npx mmaplab setup` and `npx mmaplab run` inside it; on Apple silicon the amd64 guests run under TCG, slower.']
        : [common, `This is ${platform}: use a Linux machine or VM with Debian or Ubuntu.`];
  return { kind: 'unsupported', platform, advice, exitCode: 1 };
}

function packageFinding(p: SystemPackage, path: string | undefined): Finding {
  const found = p.probe ? probeFound(p.probe, path) : undefined;
  const base = { id: `package:${p.debian}`, title: p.debian, packages: { debian: p.debian, fedora: p.fedora, arch: p.arch } };
  if (found) return { ...base, status: 'ok', detail: found };
  const optional = p.need !== 'run';
  const what = p.need.startsWith('test') ? 'only the test suite needs it, for' : optional ? 'optional, for' : 'needed for';
  return { ...base, status: optional ? 'warn' : 'missing', detail: `not found; ${what} ${p.why}`, fix: `install the package ${p.debian} (Fedora: ${p.fedora ?? 'none'}, Arch: ${p.arch ?? 'none'})` };
}

/** QEMU's version (bookworm's 7.2 boots the 6.12 kernels flakily) and busybox being static. */
async function qemuFindings(path: string | undefined): Promise<Finding[]> {
  const out: Finding[] = [];
  const qemu = which('qemu-system-x86_64', path);
  if (qemu) {
    const r = await run(qemu, ['--version']);
    const version = /version\s+(\S+)/.exec(r.stdout)?.[1];
    const major = Number(version?.split('.')[0] ?? 0);
    out.push(
      major >= 8
        ? { id: 'qemu-version', title: 'QEMU version', status: 'ok', detail: `${version} (${qemu})` }
        : { id: 'qemu-version', title: 'QEMU version', status: 'warn', detail: `${version ?? 'unknown'}: QEMU 7 boots Debian's 6.12 kernels flakily (about 1 boot in 20 panics)`, fix: 'on Debian bookworm, install qemu-system-x86 from bookworm-backports (mmaplab setup does)' },
    );
  }
  const busybox = which('busybox', path);
  if (busybox && !(await isStaticElfFile(busybox))) {
    out.push({ id: 'busybox-static', title: 'busybox, statically linked', status: 'missing', detail: `${busybox} is dynamically linked; the guest has no libraries`, fix: 'install busybox-static (Debian/Ubuntu), or point MMAPLAB_BUSYBOX at a static busybox' });
  }
  return out;
}

/** The compiler each cached kernel needs (the default kernel's when none is cached): the host's, or a build root made with mmdebstrap. */
async function compilerFindings(listing: CacheListing, path: string | undefined): Promise<Finding[]> {
  const needs = new Map<number, string[]>();
  for (const k of listing.kernels) {
    const kernel = await loadCachedKernel(k.dir);
    const major = kernel ? compilerMajor(kernel.compilerText)?.major : undefined;
    if (major) needs.set(major, [...(needs.get(major) ?? []), k.release]);
  }
  // Nothing cached yet: the default kernel (bookworm's) is built with gcc-12.
  if (needs.size === 0) needs.set(12, ['debian:bookworm, the default kernel']);
  const buildRoots = !!which('mmdebstrap', path) && !!which('newuidmap', path);
  const out: Finding[] = [];
  for (const [major, kernels] of [...needs].sort((a, b) => a[0] - b[0])) {
    const host = which('gcc', path) ? await hostCompiler(major) : undefined;
    const title = `gcc-${major} (for ${kernels.join(', ')})`;
    if (host) out.push({ id: `compiler:${major}`, title, status: 'ok', detail: `${host.cc} ${host.version} on this machine` });
    else if (buildRoots) out.push({ id: `compiler:${major}`, title, status: 'ok', detail: `not on this machine: a Debian build root with gcc-${major} is made with mmdebstrap on first use (about 1-2 minutes, cached)` });
    else out.push({ id: `compiler:${major}`, title, status: 'missing', detail: `neither gcc-${major} nor mmdebstrap and uidmap (to make a build root with it)`, fix: major === 12 ? 'install gcc-12, or mmdebstrap and uidmap' : 'install mmdebstrap and uidmap' });
  }
  return out;
}

async function sandboxFinding(): Promise<Finding> {
  const title = 'the build sandbox (bubblewrap)';
  const wanted = requestedConfinement({ trustDriver: false });
  if (wanted.kind !== 'sandbox') return { id: 'sandbox', title, status: 'warn', detail: `not used: ${wanted.setBy}; drivers are built unconfined` };
  const s = await probeSandbox();
  if ('reason' in s) return { id: 'sandbox', title, status: 'missing', detail: `${s.reason}: drivers other than mmaplab's own cannot be checked`, fix: s.fix };
  const i = s.isolation();
  return { id: 'sandbox', title, status: 'ok', detail: `${i.kind === 'sandbox' ? i.tool : 'bubblewrap'}, ${i.kind === 'sandbox' && !i.userNamespace ? 'as root without capabilities' : 'as an unprivileged user'}` };
}

async function userNamespaceFinding(path: string | undefined): Promise<Finding> {
  const title = 'user namespaces (build roots without root)';
  const unshare = which('unshare', path);
  if (!unshare) return { id: 'userns', title, status: 'warn', detail: 'unshare not found (util-linux)' };
  const r = await run(unshare, ['--user', '--map-root-user', 'true']);
  if (r.ok) return { id: 'userns', title, status: 'ok', detail: 'unshare --user works' };
  return { id: 'userns', title, status: 'warn', detail: `unshare --user fails: ${(r.stderr || r.all).trim().split('\n')[0]}; kernels whose compiler is not on this machine cannot get a build root`, fix: 'see the sandbox finding: the same sysctl settings allow both' };
}

function archiveFinding(listing: CacheListing): Finding {
  const title = "Debian's archive (kernels are fetched from it)";
  const a = debianArchives({});
  if (a.archive) return { id: 'archive', title, status: 'ok', detail: `${a.archive}${a.security ? `, security ${a.security}` : ''}` };
  const cached = listing.kernels.length;
  const fix = "set MMAPLAB_DEBIAN_ARCHIVE (or --archive-uri) to a Debian mirror's URI; this host's apt sources name none";
  return cached > 0
    ? { id: 'archive', title, status: 'warn', detail: `none known; the ${cached} cached kernel(s) work offline`, fix }
    : { id: 'archive', title, status: 'missing', detail: 'none known, and no kernel is cached', fix };
}

/** The nearest folder of a path that exists. */
function existingAncestor(p: string): string {
  let d = p;
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  return d;
}

async function diskFinding(cacheDir: string): Promise<Finding> {
  const at = existingAncestor(cacheDir);
  const s = await statfs(at);
  const free = s.bavail * s.bsize;
  const detail = `${(free / GiB).toFixed(1)} GiB free at ${at}`;
  if (free < 0.5 * GiB) return { id: 'disk', title: 'disk space for the cache', status: 'missing', detail, fix: 'free space: a kernel with its headers and snapshot takes about 300 MB, a build root about 400 MB (mmaplab kernels prune)' };
  if (free < 2 * GiB) return { id: 'disk', title: 'disk space for the cache', status: 'warn', detail, fix: 'a kernel with its headers and snapshot takes about 300 MB, a build root about 400 MB' };
  return { id: 'disk', title: 'disk space for the cache', status: 'ok', detail };
}

async function cacheFinding(cacheDir: string, l: CacheListing): Promise<Finding> {
  const at = existingAncestor(cacheDir);
  const writable = await access(at, constants.W_OK).then(() => true, () => false);
  if (!writable) return { id: 'cache', title: 'the cache', status: 'missing', detail: `${cacheDir} cannot be created: ${at} is not writable`, fix: 'set MMAPLAB_CACHE_DIR (or XDG_CACHE_HOME) to a writable folder' };
  if (at !== cacheDir) return { id: 'cache', title: 'the cache', status: 'ok', detail: `${cacheDir} (empty: the first run fetches a kernel, 30-100 MB)` };
  const snapshots = l.other.find((x) => x.name.startsWith('snapshots'))?.bytes ?? 0;
  return { id: 'cache', title: 'the cache', status: 'ok', detail: `${cacheDir}: ${l.kernels.length} kernel(s) (${l.kernels.map((k) => k.release).join(', ') || 'none'}), ${l.buildRoots.length} build root(s), ${snapshots > 0 ? 'snapshots' : 'no snapshot yet'}; ${(l.totalBytes / 1024 ** 2).toFixed(0)} MB` };
}
