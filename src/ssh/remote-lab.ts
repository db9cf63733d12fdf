/**
 * The lab on a real machine over SSH: the same jobs as in a guest (vm/job.sh,
 * the test program, the same records), on a kernel the user already runs.
 *
 * A session: connect (host key verified) -> facts (uname -r, boot_id,
 * os-release) -> refuse this very machine -> sudo -n works -> compiler and
 * headers present -> a private temporary directory -> sources uploaded and
 * built there -> a kernel log follower from a marker of its own -> jobs ->
 * cleanup (processes, kprobe events, the module if still loaded, the device
 * node, the directory), also after a failure or Ctrl-C. A machine that goes
 * down mid-job is reported as a lost connection with the log received so far.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile, appendFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import tarStream from 'tar-stream';
import { kbuildFailure, kbuildOutput } from '../kbuild/kbuild.js';
import { parseDiagnostics } from '../kbuild/diagnostics.js';
import { formatDiagnostic, type Diagnostic } from '../model/diagnostic.js';
import type { DriverSource } from '../kbuild/driver-source.js';
import { jobEnv, type LabJob } from '../guest/job.js';
import { shellQuote } from '../util/shell-quote.js';
import { LineSplitter, parseRecordLine, type GuestRecord } from '../guest/protocol.js';
import { modinfo } from '../kernel/modules.js';
import { moduleName } from '../kbuild/kbuild.js';
import type { StrategyRun } from '../model/outcome.js';
import { MmaplabError } from '../util/errors.js';
import { projectPaths } from '../util/paths.js';
import { ConnectionLost, ExecTimeout, SshConnection, type ConnectOptions } from './connection.js';
import { headersInstall, parseOsRelease, toolchainInstall, type OsRelease } from './packages.js';

export interface TargetFacts {
  release: string;
  /** uname -v: the kernel's build string. */
  version: string;
  arch: string;
  user: string;
  bootId: string;
  os: OsRelease;
}

export interface TargetSessionOptions extends ConnectOptions {
  /** --allow-own-kernel: the user really means to load the driver into the kernel mmaplab runs on. */
  allowOwnKernel: boolean;
  /** This machine's boot_id (read from /proc unless given, for tests of the decision). */
  ownBootId?: string;
  /** The full kernel log received from the target is kept here. */
  kernelLogPath: string;
}

export interface RemoteModule {
  name: string;
  /** The built module, downloaded (with debug info, for oops frames). */
  data: Buffer;
  compiler: string;
  warnings: Diagnostic[];
  parameters: string[];
}

export type TargetJobResult = { end: StrategyRun['end']; records: GuestRecord[]; status: number | null };

/** The decision the issue asks for: the same boot_id means the same running kernel, whatever the address. */
export function isOwnKernel(targetBootId: string, ownBootId: string): boolean {
  return targetBootId.trim() !== '' && targetBootId.trim() === ownBootId.trim();
}

async function ownBootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim();
}

export class RemoteLab {
  /** Sessions of this process, so Ctrl-C can clean every target up. */
  private static readonly live = new Set<RemoteLab>();
  private kernelText = '';
  /** The kernel log's appends to its file, one after another: unchained appends land out of order. */
  private logWrites: Promise<void> = Promise.resolve();
  private started = false;
  private cleaned: Promise<string[]> | undefined;
  private module: string | undefined;
  /** The built .ko's file name under files/module/. */
  private koFile: string | undefined;
  private device: string | undefined;

  private constructor(
    readonly conn: SshConnection,
    readonly facts: TargetFacts,
    /** The private temporary directory on the target. */
    readonly dir: string,
    /** '' for root, else 'sudo -n '. */
    private readonly asRoot: string,
    private readonly marker: string,
    private readonly kernelLogPath: string,
  ) {
    RemoteLab.live.add(this);
  }

  get where(): string {
    return this.conn.target.name;
  }

  /** The target's kernel log from this session's marker on, in console format. */
  get kernelLog(): string {
    return this.kernelText;
  }

  get lost(): boolean {
    return this.conn.isLost;
  }

  static async cleanupAll(): Promise<void> {
    await Promise.all([...RemoteLab.live].map((l) => l.cleanup().catch(() => [])));
  }

  static async open(opts: TargetSessionOptions): Promise<RemoteLab> {
    const conn = await SshConnection.connect(opts);
    try {
      const facts = await readFacts(conn);
      if (!opts.allowOwnKernel && isOwnKernel(facts.bootId, opts.ownBootId ?? (await ownBootId()))) {
        throw new MmaplabError('target', `${conn.target.url} is this very machine (same boot_id ${facts.bootId}): mmaplab will not load a driver into the kernel it runs on`, {
          hint: 'a driver under test can crash or corrupt the kernel it is loaded into; if you really mean this machine, pass --allow-own-kernel',
        });
      }
      const asRoot = facts.user === 'root' ? '' : 'sudo -n ';
      if (asRoot) await checkSudo(conn, facts);
      await checkToolchain(conn, facts);
      const mk = await conn.exec('umask 077 && mktemp -d /tmp/mmaplab.XXXXXXXX');
      const dir = mk.stdout.toString().trim();
      if (mk.code !== 0 || !dir.startsWith('/tmp/mmaplab.')) throw new MmaplabError('target', `could not make a temporary directory on ${conn.target.name}: ${mk.stderr.trim()}`);
      return new RemoteLab(conn, facts, dir, asRoot, `mmaplab: target session ${randomBytes(6).toString('hex')} begin`, opts.kernelLogPath);
    } catch (e) {
      conn.close();
      if (e instanceof ConnectionLost) throw new MmaplabError('target', `lost the connection to ${conn.target.name} right after logging in (${e.reason})`);
      throw e;
    }
  }

  /** Uploads files into the session's directory as one tar stream (no SFTP server needed). */
  private async upload(files: Array<{ path: string; data: Buffer | string; mode?: number }>): Promise<void> {
    const p = tarStream.pack();
    const chunks: Buffer[] = [];
    p.on('data', (c: unknown) => chunks.push(c as Buffer));
    const done = new Promise<void>((resolve, reject) => {
      p.on('end', () => resolve());
      p.on('error', reject);
    });
    for (const f of files) p.entry({ name: f.path, mode: f.mode ?? 0o644 }, typeof f.data === 'string' ? Buffer.from(f.data) : f.data);
    p.finalize();
    await done;
    const r = await this.conn.exec(`tar -x -m -C ${shellQuote(this.dir)} -f -`, { stdin: Buffer.concat(chunks) });
    if (r.code !== 0) throw new MmaplabError('target', `could not upload files to ${this.dir} on ${this.where}: ${r.stderr.trim() || `tar exited ${r.code}`}`);
  }

  /** Follow the kernel log from a marker of this session's own (root reads it all; the marker says where ours begins). */
  async startKernelLog(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await writeFile(this.kernelLogPath, '');
    const lines = new LineSplitter();
    let seen = false;
    let markerSeen: () => void = () => {};
    const marked = new Promise<void>((resolve) => (markerSeen = resolve));
    const script = `echo $$ > ${shellQuote(`${this.dir}/kmsg.pid`)}; echo ${shellQuote(this.marker)} > /dev/kmsg; exec dmesg -w 2>/dev/null || exec cat /dev/kmsg`;
    const follower = this.conn.exec(`${this.asRoot}sh -c ${shellQuote(script)}`, {
      onStdout: (chunk) => {
        let text = '';
        for (const raw of lines.push(chunk.toString())) {
          const line = consoleLine(raw);
          if (!seen && line.includes(this.marker)) {
            seen = true;
            markerSeen();
          }
          if (seen) text += `${line}\n`;
        }
        if (!text) return;
        this.kernelText += text;
        const path = this.kernelLogPath;
        this.logWrites = this.logWrites.then(() => appendFile(path, text)).catch(() => undefined);
      },
    });
    // The marker is the first line we need: wait for it, so a job never starts before its log does.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([marked, follower.then(() => {}, () => {}), new Promise((r) => (timer = setTimeout(r, 15_000)))]);
    clearTimeout(timer);
    if (!seen && this.conn.isLost) throw new ConnectionLost('before the kernel log could be followed');
    // Without its kernel log a run could not tell an oops from a pass: stop rather than guess.
    if (!seen) throw new MmaplabError('target', `could not follow the kernel log on ${this.where} (neither dmesg -w nor /dev/kmsg answered with mmaplab's marker within 15 s)`);
  }

  /** Upload and build the driver against /lib/modules/<release>/build, and the test program, on the target. */
  async build(src: DriverSource, display: { userRoot: string; userDir: string; displayDir: string }, logDir: string): Promise<RemoteModule> {
    const files = [
      ...(await Promise.all(src.files.map(async (f) => ({ path: `src/${f}`, data: await readFile(join(src.root, f)) })))),
      ...(src.generatedKbuild ? [{ path: `src/${src.subdir ? `${src.subdir}/` : ''}Kbuild`, data: src.generatedKbuild }] : []),
      { path: 'userspace/mmap-test.c', data: await readFile(join(projectPaths.userspace, 'mmap-test.c')) },
      { path: 'run.sh', data: await readFile(join(projectPaths.vm, 'job.sh')), mode: 0o755 },
    ];
    await this.upload(files);
    const tree = `${this.dir}/src`;
    const m = src.subdir ? `${tree}/${src.subdir}` : tree;
    const kdir = `/lib/modules/${this.facts.release}/build`;
    const make = `make -C ${shellQuote(kdir)} M=${shellQuote(m)} ${shellQuote(`KCFLAGS=-ffile-prefix-map=${tree}=${src.root}`)} -j"$(nproc 2>/dev/null || echo 1)" modules`;
    // The test program does not depend on the driver: it compiles while kbuild runs, whose own
    // overhead and a driver of one file keep a core idle (on an emulated target, seconds of it).
    // Not static (a target may have no static libc), no -Werror (its compiler is not ours).
    const progP = this.conn
      .exec(`cd ${shellQuote(this.dir)} && mkdir -p files/module files/test && "$(command -v cc || command -v gcc)" -O2 -Wall -o files/test/mmap-test userspace/mmap-test.c 2>&1`, { timeoutMs: 300_000 })
      .then((x) => x, (e: unknown) => (e instanceof Error ? e : new Error(String(e))));
    // Whatever happens to the driver's build, the compiler is not left running behind it.
    const r = await this.conn.exec(`${make} 2>&1`, { timeoutMs: 900_000 }).finally(() => progP);
    const all = r.stdout.toString();
    const inBuild = new Set(src.files.map((f) => relative(src.subdir, f)));
    const { log, diagnostics } = kbuildOutput(all, { tree, build: m, userRoot: display.userRoot, userDir: display.userDir, existsInBuild: (p) => inBuild.has(p) });
    const logPath = join(logDir, 'module-build.log');
    await writeFile(logPath, `$ ${make}    (on ${this.where})\n${log}`);
    if (r.code !== 0) throw kbuildFailure(all, log, diagnostics, { displayDir: display.displayDir, release: this.facts.release, logPath, where: this.where });

    const ls = await this.conn.exec(`cd ${shellQuote(m)} && ls *.ko 2>/dev/null`);
    const kos = ls.stdout.toString().split('\n').filter(Boolean);
    if (kos.length !== 1) throw new MmaplabError('build', `expected one .ko from ${display.displayDir} on ${this.where}, found ${kos.length ? kos.join(', ') : 'none'}`);
    const ko = kos[0]!;
    const data = (await this.conn.exec(`cat ${shellQuote(`${m}/${ko}`)}`)).stdout;
    const name = moduleName(modinfo(data, 'name')[0], ko);
    // A module of that name loaded before mmaplab came is not ours to load over or to unload.
    const loaded = await this.conn.exec(`grep -q ${shellQuote(`^${name} `)} /proc/modules`);
    if (loaded.code === 0) throw new MmaplabError('target', `a module named ${name} is already loaded on ${this.where}; mmaplab will not replace or unload it`, { hint: `unload it yourself (sudo rmmod ${name}) if it is a leftover, then run again` });

    const cc = await this.conn.exec(`grep -s '^CONFIG_CC_VERSION_TEXT=' ${shellQuote(`${kdir}/.config`)} | cut -d'"' -f2; gcc --version 2>/dev/null | head -n 1`);
    const compiler = cc.stdout.toString().split('\n').find(Boolean) ?? 'unknown';
    const prog = await progP;
    if (prog instanceof Error) throw prog;
    if (prog.code === 0) {
      const cp = await this.conn.exec(`cp ${shellQuote(`${m}/${ko}`)} ${shellQuote(`${this.dir}/files/module/`)} 2>&1`);
      if (cp.code !== 0) throw new MmaplabError('target', `could not copy ${ko} in ${this.dir} on ${this.where}: ${cp.stdout.toString().trim()}`);
    } else {
      const out = prog.stdout.toString().split(`${this.dir}/userspace/`).join('userspace/');
      throw new MmaplabError('build', `the test program does not compile on ${this.where}`, { details: parseDiagnostics(out).map(formatDiagnostic).slice(0, 10), hint: toolchainInstall(this.facts.os) });
    }
    this.module = name;
    this.koFile = ko;
    return { name, data, compiler, warnings: diagnostics.filter((d) => d.severity === 'warning'), parameters: modinfo(data, 'parmtype').map((p) => p.split(':')[0]!) };
  }

  /** The test program as built on the target (kept with the run's artefacts). */
  async testProgram(): Promise<Buffer> {
    return (await this.conn.exec(`cat ${shellQuote(`${this.dir}/files/test/mmap-test`)}`)).stdout;
  }

  /** One job, as a guest runs it: vm/job.sh as root, its records streamed back. */
  async runJob(job: LabJob, timeoutMs: number): Promise<TargetJobResult> {
    if (!this.koFile) throw new MmaplabError('internal', 'a job before the driver was built on the target');
    // Being cleaned up (Ctrl-C): no job may start behind the cleanup's back.
    if (this.cleaned) return { end: 'connection-lost', records: [], status: null };
    const jobDir = `job-${job.id}`;
    this.device = job.device || this.device;
    const records: GuestRecord[] = [];
    const lines = new LineSplitter();
    try {
      await this.upload([{ path: `${jobDir}/job.env`, data: jobEnv(job, { module: `module/${this.koFile}`, test: 'test/mmap-test' }, { traceKeep: false, linkTest: false, arch: this.facts.arch }) }]);
      const r = await this.conn.exec(`${this.asRoot}sh ${shellQuote(`${this.dir}/run.sh`)} ${shellQuote(`${this.dir}/${jobDir}`)} 2>&1`, {
        timeoutMs,
        onStdout: (chunk) => {
          for (const l of lines.push(chunk.toString())) records.push(parseRecordLine(l));
        },
      });
      for (const l of lines.flush()) records.push(parseRecordLine(l));
      return { end: 'done', records, status: r.code };
    } catch (e) {
      if (e instanceof ConnectionLost) return { end: 'connection-lost', records, status: null };
      if (e instanceof ExecTimeout) return { end: 'timeout', records, status: null };
      throw e;
    }
  }

  /** Kill what still runs, unload, remove. Once; returns what could not be undone (empty: nothing left behind). */
  cleanup(): Promise<string[]> {
    // The kernel log's file is whole once the cleanup is done: the report names it.
    this.cleaned ??= this.doCleanup().then(async (left) => {
      await this.logWrites;
      return left;
    });
    return this.cleaned;
  }

  private async doCleanup(): Promise<string[]> {
    RemoteLab.live.delete(this);
    if (this.conn.isLost) {
      this.conn.close();
      return [`the connection to ${this.where} was lost: ${this.dir}${this.module ? ` and the module ${this.module}` : ''} may remain there if the machine did not go down`];
    }
    const d = shellQuote(this.dir);
    // [/]tmp/...: matches the job's processes, never this cleanup shell's own command line.
    const pattern = shellQuote(`[/]${this.dir.slice(1)}/`);
    const mod = this.module ? shellQuote(this.module) : '';
    const T = '/sys/kernel/tracing';
    const script = [
      `[ -f ${d}/kmsg.pid ] && kill "$(cat ${d}/kmsg.pid)" 2>/dev/null`,
      `pkill -KILL -f ${pattern} 2>/dev/null; sleep 0.2`,
      // Whatever job.sh registered in the mmaplab group, read back from kprobe_events (one list, in job.sh).
      `if [ -d ${T}/events/mmaplab ]; then echo 0 > ${T}/events/mmaplab/enable; for e in $(grep -o 'mmaplab/[^ ]*' ${T}/kprobe_events); do echo "-:$e" >> ${T}/kprobe_events; done; fi 2>/dev/null`,
      ...(mod ? [`if grep -q "^"${mod}" " /proc/modules; then timeout 20 rmmod ${mod} 2>&1 || echo "left: the module ${this.module} could not be unloaded (it stays loaded until reboot)"; fi`] : []),
      ...(this.device?.startsWith('/dev/mmaplab') ? [`rm -f ${shellQuote(this.device)}`] : []),
      `rm -rf ${d} || echo "left: ${this.dir} could not be removed"`,
    ].join('\n');
    try {
      const r = await this.conn.exec(`${this.asRoot}sh -c ${shellQuote(script)}`, { timeoutMs: 60_000 });
      return r.stdout.toString().split('\n').filter((l) => l.startsWith('left: ')).map((l) => l.slice(6));
    } catch (e) {
      return [`cleanup on ${this.where} did not finish (${(e as Error).message}): look for ${this.dir}${this.module ? ` and the module ${this.module}` : ''}`];
    } finally {
      this.conn.close();
    }
  }
}

/** dmesg -w lines are already "[ ts] text"; /dev/kmsg records ("6,123,4567890,-;text") are made so. */
export function consoleLine(raw: string): string {
  const m = /^\d+,\d+,(\d+),[^;]*;(.*)$/.exec(raw);
  if (!m) return raw.replace(/\r$/, '');
  const us = Number(m[1]);
  return `[${(us / 1e6).toFixed(6).padStart(12)}] ${m[2]}`;
}

async function readFacts(conn: SshConnection): Promise<TargetFacts> {
  const r = await conn.exec('cat /proc/sys/kernel/random/boot_id; uname -r; uname -v; uname -m; id -un; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null');
  const [bootId = '', release = '', version = '', arch = '', user = '', ...os] = r.stdout.toString().split('\n');
  if (r.code === null || !release) throw new MmaplabError('target', `${conn.target.url} did not say which kernel it runs (uname -r): ${r.stderr.trim()}`);
  return { bootId: bootId.trim(), release: release.trim(), version: version.trim(), arch: arch.trim(), user: user.trim(), os: parseOsRelease(os.join('\n')) };
}

async function checkSudo(conn: SshConnection, facts: TargetFacts): Promise<void> {
  const r = await conn.exec('sudo -n true');
  if (r.code === 0) return;
  const host = conn.target.name;
  if (r.code === 127 || /not found/.test(r.stderr)) {
    throw new MmaplabError('target', `sudo is not installed on ${host}, and mmaplab needs root there to load the driver`, { hint: `log in as root, or install sudo and give ${facts.user} a NOPASSWD rule` });
  }
  throw new MmaplabError('target', `sudo on ${host} wants a password for ${facts.user} (sudo -n: ${r.stderr.trim().split('\n')[0] ?? 'refused'}); mmaplab never types one`, {
    hint: `give ${facts.user} a rule without a password (e.g. '${facts.user} ALL=(root) NOPASSWD: ALL' in /etc/sudoers.d/), or use a target account that has one`,
  });
}

async function checkToolchain(conn: SshConnection, facts: TargetFacts): Promise<void> {
  const kdir = `/lib/modules/${facts.release}/build`;
  const r = await conn.exec(`command -v make >/dev/null 2>&1 || echo "tool make"; command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || echo "tool gcc"; [ -e ${shellQuote(`${kdir}/Makefile`)} ] || echo headers; command -v tar >/dev/null || echo "tool tar"`);
  const missing = r.stdout.toString().split('\n').filter(Boolean);
  const host = conn.target.name;
  if (missing.includes('headers')) {
    throw new MmaplabError('target', `${host} has no headers for its kernel ${facts.release} (${kdir} is missing), so the driver cannot be built there`, { hint: `on ${host}: ${headersInstall(facts.os, facts.release)}` });
  }
  const tools = missing.filter((m) => m.startsWith('tool ')).map((m) => m.slice(5));
  if (tools.length) throw new MmaplabError('missing-tool', `${host} lacks ${tools.join(', ')}, needed to build the driver there`, { hint: `on ${host}: ${toolchainInstall(facts.os)}` });
}
