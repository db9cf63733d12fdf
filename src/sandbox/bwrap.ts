/**
 * The build sandbox: bubblewrap (the sandbox Flatpak uses), so a submission's
 * Kbuild, Makefile and compiler run with no network, in their own user, PID,
 * IPC, UTS and cgroup namespaces, on a filesystem of read-only host
 * toolchain plus exactly the folders a build names, with only its build folder
 * writable, a short allowlisted environment, no capabilities, a new session
 * (no TIOCSTI into the user's terminal) and rlimits. When the build's first
 * process ends, the PID namespace ends with it: nothing it started survives.
 */
import { lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import type { BuildIsolation, BuildLimits } from '../model/isolation.js';
import { run, type ExecResult } from '../util/exec.js';

export interface SandboxMounts {
  /** A build root to use as / (a Debian root with its own gcc); else the host's toolchain, read-only. */
  root?: string;
  /** Host paths bound read-only at the same path (the kernel's headers). */
  readOnly: readonly string[];
  /** Host paths bound writable at the same path (the build folder). */
  writable: readonly string[];
  /** A host folder (inside a writable one) bound as /tmp; a fresh tmpfs if absent. */
  tmp?: string;
  /** Where the command starts. */
  cwd: string;
}

export type SandboxResult = ExecResult & {
  /** Why mmaplab stopped it, if it did: past its time, its output or its disk limit. */
  stopped?: 'time' | 'output' | 'disk';
};

/** What a build may read of the host's /etc: the dynamic loader's cache and the alternatives (cc, ld). */
const HOST_ETC = ['/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/alternatives'];
/** The toolchain's top-level folders; on a merged-/usr host all but /usr are symlinks into it. */
const HOST_TOP = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
const PATH = '/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin';
/** Variables a build sees; every other one of the user's environment (tokens, SSH_AUTH_SOCK, HOME) is gone. */
const ALLOWED_ENV = ['SOURCE_DATE_EPOCH', 'KBUILD_BUILD_TIMESTAMP', 'KBUILD_BUILD_USER', 'KBUILD_BUILD_HOST'];

export const DEFAULT_LIMITS: BuildLimits = { timeS: 300, memoryMb: 4096, fileMb: 512, diskMb: 1024, outputKb: 4096, processes: undefined };

/** Bytes under the given folders (and how many entries), stopping early once past `max` of either. */
function usage(dirs: readonly string[], maxBytes: number, maxEntries: number): { bytes: number; entries: number } {
  let bytes = 0;
  let entries = 0;
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      if (bytes > maxBytes || ++entries > maxEntries) return;
      const p = `${d}/${n}`;
      try {
        const st = lstatSync(p);
        bytes += st.blocks * 512;
        if (st.isDirectory()) walk(p);
      } catch {
        // gone meanwhile
      }
    }
  };
  for (const d of dirs) walk(d);
  return { bytes, entries };
}

/**
 * The toolchain's folders, read-only, on the sandbox's own (tmpfs) root: the
 * host's, or a build root's (then its /usr is the sandbox's /usr). Mount
 * points for the other binds are made in that tmpfs, never in the host's tree.
 */
function toolchainArgs(root = ''): string[] {
  const out: string[] = [];
  for (const p of HOST_TOP) {
    const info = lstatIf(root + p);
    if (!info) continue;
    if (info.isSymbolicLink()) out.push('--symlink', readlinkSync(root + p), p);
    else if (info.isDirectory()) out.push('--ro-bind', root + p, p);
  }
  for (const p of HOST_ETC) if (lstatIf(root + p)) out.push('--ro-bind', root + p, p);
  return out;
}

function lstatIf(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/** How many processes this user has now: RLIMIT_NPROC counts them all, so a limit is this plus the build's share. */
function processesOfUser(uid: number): number {
  // RLIMIT_NPROC counts tasks: every thread of every process of the user (a browser has hundreds).
  let n = 0;
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (statSync(`/proc/${e}`).uid === uid) n += readdirSync(`/proc/${e}/task`).length;
    } catch {
      // gone meanwhile
    }
  }
  return n;
}

/** Processes a build may start besides the user's own (make -j, gcc's cc1 and as, Kbuild's shells). */
const BUILD_PROCESSES = 1024;

export class BwrapSandbox {
  constructor(
    private readonly bwrap: string,
    private readonly version: string,
    /** False only for root where user namespaces cannot be made: the build is then root without capabilities. */
    private readonly userNamespace: boolean,
    private readonly baseLimits: BuildLimits = DEFAULT_LIMITS,
  ) {}

  /** The limits as they apply to this user: the kernel exempts root from RLIMIT_NPROC. */
  limits(overrides: Partial<BuildLimits> = {}): BuildLimits {
    const uid = process.getuid?.() ?? 0;
    return { ...this.baseLimits, ...overrides, processes: uid === 0 ? undefined : processesOfUser(uid) + BUILD_PROCESSES };
  }

  isolation(limits: BuildLimits = this.limits()): BuildIsolation {
    return { kind: 'sandbox', tool: `bubblewrap ${this.version}`, userNamespace: this.userNamespace, limits };
  }

  /** The whole command line: prlimit's rlimits around bwrap around argv. */
  commandLine(argv: readonly string[], m: SandboxMounts, limits: BuildLimits): string[] {
    const mb = 1024 * 1024;
    const rlimits = [`--as=${limits.memoryMb * mb}`, `--fsize=${limits.fileMb * mb}`, '--core=0', ...(limits.processes ? [`--nproc=${limits.processes}`] : [])];
    // LANG too: Kbuild unexports LC_ALL, and gcc in the C locale quotes with ' instead of ‘’.
    const env = ['--clearenv', '--setenv', 'PATH', PATH, '--setenv', 'LANG', 'C.UTF-8', '--setenv', 'LC_ALL', 'C.UTF-8', '--setenv', 'HOME', '/tmp', '--setenv', 'TMPDIR', '/tmp'];
    for (const k of ALLOWED_ENV) {
      const v = process.env[k];
      if (v !== undefined) env.push('--setenv', k, v);
    }
    const fs = toolchainArgs(m.root);
    return [
      'prlimit',
      ...rlimits,
      '--',
      this.bwrap,
      '--unshare-all',
      ...(this.userNamespace ? ['--unshare-user', '--uid', '65534', '--gid', '65534'] : []),
      '--die-with-parent',
      '--new-session',
      '--cap-drop',
      'ALL',
      ...fs,
      '--proc',
      '/proc',
      '--dev',
      '/dev',
      ...(m.tmp ? ['--bind', m.tmp, '/tmp'] : ['--tmpfs', '/tmp']),
      ...m.readOnly.flatMap((p) => ['--ro-bind', p, p]),
      ...m.writable.flatMap((p) => ['--bind', p, p]),
      // Once every mount point is made: its own root and /dev (/dev/shm) are read-only too, so it writes nowhere in memory.
      '--remount-ro',
      '/',
      '--remount-ro',
      '/dev',
      ...env,
      '--chdir',
      m.cwd,
      '--',
      ...argv,
    ];
  }

  async run(argv: readonly string[], m: SandboxMounts, limits: BuildLimits = this.limits()): Promise<SandboxResult> {
    const [file, ...args] = this.commandLine(argv, m, limits);
    // What it writes is watched: RLIMIT_FSIZE bounds one file, this all of them (and how many there are).
    const stop = new AbortController();
    const written = [...m.writable, ...(m.tmp ? [m.tmp] : [])];
    const maxBytes = limits.diskMb * 1024 * 1024;
    let overDisk = false;
    const watch = setInterval(() => {
      const u = usage(written, maxBytes, 100_000);
      if (u.bytes > maxBytes || u.entries > 100_000) {
        overDisk = true;
        stop.abort();
      }
    }, 500);
    try {
      // bwrap itself, PID 1 of the sandbox, gets no more of the user's environment than the build does (/proc/1/environ).
      const r = await run(file!, args, { timeoutMs: limits.timeS * 1000, maxOutputBytes: limits.outputKb * 1024, env: { PATH, LC_ALL: 'C.UTF-8' }, clearEnv: true, signal: stop.signal });
      return { ...r, ok: r.ok && !overDisk, ...(overDisk ? { stopped: 'disk' as const } : r.timedOut ? { stopped: 'time' as const } : r.outputCapped ? { stopped: 'output' as const } : {}) };
    } finally {
      clearInterval(watch);
    }
  }
}
