/**
 * One running lab guest: QEMU with the console on stdio (teed to a log file as
 * it arrives) and the job channel on a Unix socket this process listens on.
 * Every way out (ready, job done, guest died, deadline, Ctrl-C) ends with QEMU
 * reaped and the console log flushed.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnLogged } from '../util/exec.js';
import { requireTool } from '../util/tools.js';
import { shellQuote } from '../util/shell-quote.js';
import { jobHeader, LineSplitter, parseRecordLine, POWEROFF, SHELL, syncHeader, WARM, type GuestRecord } from '../guest/protocol.js';
import { Qmp, QmpError } from './qmp.js';
import { qemuArgs, type VmSpec } from './qemu-args.js';
import { ConsoleWatch } from './console-watch.js';
import { FLOOD_LINES, type Flood } from '../model/outcome.js';
import { HeadTail } from '../util/head-tail.js';
import type { JobPhases } from '../model/timing.js';
import { jobPhases } from './job-timing.js';

export type BootResult =
  /** guestUptimeS: the guest's own clock when it said ready, to tell QEMU/host time from guest time. */
  | { kind: 'ready'; vm: GuestVm; kernel: string; bootMs: number; guestUptimeS: number; synced?: Extract<GuestRecord, { t: 'synced' }> }
  /** QEMU ended before the guest was ready: a panic, a bad option, a missing file. */
  | { kind: 'exited'; exitCode: number | undefined; signal: string | undefined; stderr: string; console: string }
  | { kind: 'timeout'; console: string };

/** Every job result says where the job's time went (phases: from its records' arrival). */
export type JobResult = { phases: JobPhases } & (
  | { kind: 'done'; records: GuestRecord[]; status: number }
  /** The guest went away mid-job (panic, reboot, QEMU killed). */
  | { kind: 'guest-died'; records: GuestRecord[]; console: string }
  | { kind: 'timeout'; records: GuestRecord[]; console: string }
  /** The kernel reported an oops/BUG/panic and then went quiet: it will not finish the job. */
  | { kind: 'stalled'; records: GuestRecord[]; console: string }
  /** The guest printed more than FLOOD_LINES lines in this job: stopped then, not left to time out behind its console. */
  | { kind: 'flooded'; records: GuestRecord[]; console: string; flood: Flood }
);

/**
 * After an oops, this much silence (no console output, no record) means the
 * guest is stuck: the oops report is printed in one go, and a test program
 * whose child it killed reports that at once. Killing a guest that would have
 * gone on loses nothing: the oops already fails its check, and the checks
 * after it run in a fresh guest. (4 s before grading made every pass of a
 * driver that oopses in mmap() cost 5 s; 2 s was measured with the bench.)
 */
export const STALL_AFTER_OOPS_MS = 2_000;

/**
 * What is kept of a console, in memory and in its log file, whatever the guest
 * prints: its first 4 MiB and its last 2 MiB, and a line between saying how
 * much was dropped. A lab job prints a few KiB; an oops, some 10 KiB.
 */
const CONSOLE_HEAD_BYTES = 4 << 20;
const CONSOLE_TAIL_BYTES = 2 << 20;
/** Records one job may send (a lab job sends some hundreds, some 100 KB), in number and in bytes; past these, they are dropped. */
const MAX_RECORDS_PER_JOB = 50_000;
const MAX_RECORD_BYTES_PER_JOB = 16 << 20;

/** After a lockup report, this much silence: the report (its RIP, its trace) has been printed whole. */
const LOCKUP_REPORT_MS = 1_500;


export interface StartOptions {
  qemu?: string;
  consoleLog: string;
  bootTimeoutMs: number;
  /** Job files the guest has from its initramfs (see jobPayload). */
  preloaded?: readonly string[];
  onConsoleLine?: (line: string) => void;
}

type Subprocess = ReturnType<typeof spawnLogged>;

export class GuestVm {
  private readonly kept = new HeadTail(CONSOLE_HEAD_BYTES, CONSOLE_TAIL_BYTES);
  /** Set when the kernel's last words (power off, halt) have been seen since powerOff asked. */
  private poweredOff = false;
  private recordsThisJob = 0;
  private recordBytesThisJob = 0;
  /** The last job-end record, kept as it arrives: a job's end is not searched for among its records at every wake. */
  private lastJobEnd: Extract<GuestRecord, { t: 'job-end' }> | undefined;
  private stderrText = '';
  private readonly waiters = new Set<() => void>();
  private records: GuestRecord[] = [];
  /** When each of this job's records arrived (performance.now()), for its phases. */
  private arrivals: number[] = [];
  private socket: Socket | undefined;
  private exited = false;
  /** Job files this guest already holds (see jobPayload), so later jobs need not send them. */
  readonly filesInGuest = new Set<string>();
  private fatalSeenAt: number | undefined;
  private readonly watch = new ConsoleWatch();
  /** Where console output also goes while a user is attached (mmaplab shell). */
  private consoleSink: ((text: string) => void) | undefined;
  private lastActivity = performance.now();
  private exitInfo: { exitCode: number | undefined; signal: string | undefined } = { exitCode: undefined, signal: undefined };
  private readonly exitPromise: Promise<void>;
  private qmp: Qmp | undefined;

  private constructor(
    private readonly proc: Subprocess,
    private readonly server: Server,
    private readonly tmp: string,
    private readonly log: WriteStream,
    onConsoleLine: ((line: string) => void) | undefined,
    private readonly qmpSocket: string | undefined,
  ) {
    proc.stdout?.on('data', (chunk: string | Buffer) => {
      const text = chunk.toString();
      // The log file gets the head as it comes, and the rest (the omission line, the tail) when the guest is gone.
      const toHead = this.kept.push(text);
      if (toHead) log.write(toHead);
      this.lastActivity = performance.now();
      this.consoleSink?.(text);
      const wasFatal = this.watch.fatal;
      for (const l of this.watch.push(text)) {
        onConsoleLine?.(l);
        if (/reboot: (Restarting system|Power down|System halted)/.test(l)) this.poweredOff = true;
      }
      if (!wasFatal && this.watch.fatal) this.fatalSeenAt = this.lastActivity;
      this.wake();
    });
    proc.stderr?.on('data', (chunk: string | Buffer) => {
      this.stderrText += chunk.toString();
    });
    this.exitPromise = (async () => {
      const r = await proc;
      this.exited = true;
      this.exitInfo = { exitCode: r.exitCode, signal: r.signal };
      this.wake();
    })();
    server.on('connection', (s) => {
      this.socket = s;
      this.wake();
      s.setEncoding('utf8');
      const lines = new LineSplitter();
      s.on('data', (chunk: string) => {
        const now = performance.now();
        for (const l of lines.push(chunk)) {
          this.recordBytesThisJob += l.length;
          if (this.recordsThisJob++ >= MAX_RECORDS_PER_JOB || this.recordBytesThisJob > MAX_RECORD_BYTES_PER_JOB) continue;
          const r = parseRecordLine(l);
          if (r.t === 'job-end') this.lastJobEnd = r;
          this.records.push(r);
          this.arrivals.push(now);
        }
        this.lastActivity = now;
        this.wake();
      });
      s.on('error', () => {});
    });
    GuestVm.live.add(this);
  }

  /** Every guest still running in this process, so an interrupted CLI can reap them all. */
  private static readonly live = new Set<GuestVm>();

  /** Set by killAll (Ctrl-C): no guest may start after it, so none outlives the CLI. */
  static stopping = false;

  private static reaping = false;

  /** However this process exits (an uncaught error included), no detached QEMU outlives it: execa reaps only the others. */
  private static reapOnExit(): void {
    if (GuestVm.reaping) return;
    GuestVm.reaping = true;
    process.on('exit', () => {
      for (const vm of GuestVm.live) if (!vm.exited) vm.proc.kill('SIGKILL');
    });
  }

  static async killAll(): Promise<void> {
    GuestVm.stopping = true;
    await Promise.all([...GuestVm.live].map((vm) => vm.kill()));
  }

  /** QEMU started on `spec`, its channel socket (and QMP socket, if asked) in a private directory. */
  private static async spawn(spec: Omit<VmSpec, 'channelSocket' | 'qmpSocket'>, opts: StartOptions, withQmp: boolean): Promise<GuestVm> {
    if (GuestVm.stopping) throw new Error('mmaplab is stopping: no guest is started');
    const qemu = opts.qemu ?? requireTool('qemu-system-x86_64');
    // Socket paths are limited to 108 bytes: keep them in a short private directory.
    const tmp = await mkdtemp(join(tmpdir(), 'mmaplab-'));
    const channelSocket = join(tmp, 'jobs.sock');
    const qmpSocket = withQmp ? join(tmp, 'qmp.sock') : undefined;
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(channelSocket, () => resolve());
    });
    const log = createWriteStream(opts.consoleLog);
    // A guest with a gdb stub runs out of the terminal's process group: Ctrl-C at gdb's prompt is gdb's (it stops the guest), not QEMU's end.
    const detached = spec.gdbPort !== undefined;
    if (detached) GuestVm.reapOnExit();
    const proc = spawnLogged(qemu, qemuArgs({ ...spec, channelSocket, ...(qmpSocket ? { qmpSocket } : {}) }), { detached });
    const vm = new GuestVm(proc, server, tmp, log, opts.onConsoleLine, qmpSocket);
    // Ctrl-C may have reaped every guest while this one was being started: it goes too.
    if (GuestVm.stopping) {
      await vm.kill();
      throw new Error('mmaplab is stopping: no guest is started');
    }
    for (const f of opts.preloaded ?? []) vm.filesInGuest.add(f);
    return vm;
  }

  /** Boot and wait for the agent's ready record. `withQmp`: the guest may be saved as a snapshot (saveSnapshot). */
  static async start(spec: Omit<VmSpec, 'channelSocket' | 'qmpSocket'>, opts: StartOptions, withQmp = false): Promise<BootResult> {
    const vm = await GuestVm.spawn(spec, opts, withQmp);
    const started = performance.now();
    const ready = await vm.waitFor(() => vm.records.find((r) => r.t === 'ready'), opts.bootTimeoutMs);
    if (ready.kind === 'found' && ready.value.t === 'ready') {
      vm.recordsThisJob = 0;
      return { kind: 'ready', vm, kernel: ready.value.kernel, bootMs: performance.now() - started, guestUptimeS: Number(ready.value.uptime) };
    }
    return vm.failed(ready.kind === 'exited' ? 'exited' : 'timeout');
  }

  /**
   * Restore a snapshot: QEMU on the spec it was saved with (RAM from its file,
   * never written), the device state streamed in, then SYNC (clock and RNG) to
   * prove the agent answers. Anything else (QEMU refusing the state, a guest
   * that does not answer) is a failed restore: the caller boots instead.
   */
  static async restore(spec: Omit<VmSpec, 'channelSocket' | 'qmpSocket' | 'incoming'>, statePath: string, opts: StartOptions): Promise<BootResult> {
    const vm = await GuestVm.spawn({ ...spec, incoming: true }, opts, true);
    const started = performance.now();
    try {
      const qmp = await Qmp.connect(vm.qmpSocket!, opts.bootTimeoutMs);
      vm.qmp = qmp;
      await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
      await qmp.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(statePath)}` });
      // Bytes sent before the guest runs again could be lost: wait for RESUME.
      const resumed = await Promise.race([qmp.waitEvent('RESUME', opts.bootTimeoutMs), vm.exitPromise.then(() => false)]);
      if (!resumed) return await vm.restoreFailed();
    } catch {
      return await vm.restoreFailed();
    }
    const synced = await vm.sync(opts.bootTimeoutMs);
    if (!synced) return await vm.restoreFailed();
    return { kind: 'ready', vm, kernel: '', bootMs: performance.now() - started, guestUptimeS: 0, synced };
  }

  /** QEMU refusing a state stream closes QMP a moment before it exits: give it that moment, to report its words. */
  private async restoreFailed(): Promise<Exclude<BootResult, { kind: 'ready' }>> {
    await Promise.race([this.exitPromise, new Promise((r) => setTimeout(r, 2000))]);
    return this.failed(this.exited ? 'exited' : 'timeout');
  }

  private async failed(kind: 'exited' | 'timeout'): Promise<Exclude<BootResult, { kind: 'ready' }>> {
    await this.kill();
    if (kind === 'exited') return { kind: 'exited', ...this.exitInfo, stderr: this.stderrText, console: this.console };
    return { kind: 'timeout', console: this.console };
  }

  /** Give the guest the host's time and fresh randomness; its answer, or undefined if none came in time. */
  async sync(timeoutMs: number): Promise<Extract<GuestRecord, { t: 'synced' }> | undefined> {
    // QEMU connects the channel as it starts; make sure this side has seen it.
    const connected = await this.waitFor(() => this.socket, timeoutMs);
    if (connected.kind !== 'found') return undefined;
    const from = this.records.length;
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    connected.value.write(syncHeader(nowNs, randomBytes(32).toString('hex')));
    const r = await this.waitFor(() => this.records.slice(from).find((x): x is Extract<GuestRecord, { t: 'synced' }> => x.t === 'synced'), timeoutMs);
    return r.kind === 'found' ? r.value : undefined;
  }

  /** Run once what a job runs (the guest's shell, awk, the test program), so the first job finds it translated; whether the guest answered in time. */
  async warm(timeoutMs: number): Promise<boolean> {
    if (!this.socket || this.exited) return false;
    const from = this.records.length;
    this.socket.write(WARM);
    const r = await this.waitFor(() => (this.records.slice(from).some((x) => x.t === 'warmed') ? true : undefined), timeoutMs);
    return r.kind === 'found';
  }

  /**
   * Save the waiting guest as a snapshot: its RAM is already the file it was
   * started with (share=on); the device state goes to `statePath`. QEMU is
   * told to quit afterwards, since a guest that ran on would change the RAM file.
   */
  async saveSnapshot(statePath: string, timeoutMs: number): Promise<void> {
    if (!this.qmpSocket) throw new QmpError('this guest was started without QMP');
    const qmp = (this.qmp ??= await Qmp.connect(this.qmpSocket, timeoutMs));
    try {
      await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
      await qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(statePath)}` });
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const info = (await qmp.execute('query-migrate')) as { status?: string; 'error-desc'?: string };
        if (info.status === 'completed') break;
        if (info.status === 'failed' || info.status === 'cancelled') throw new QmpError(`migration ${info.status}${info['error-desc'] ? `: ${info['error-desc']}` : ''}`);
        if (performance.now() > deadline) throw new QmpError('migration did not complete in time');
        await new Promise((r) => setTimeout(r, 5));
      }
      await qmp.execute('quit').catch(() => {});
    } finally {
      await this.kill();
    }
  }

  /**
   * Whether the guest may take another job: still running, and its console has
   * shown no oops, BUG, panic or lockup since its last job began (after that
   * job's own kernel log was read, say: a timer the driver left behind firing).
   */
  get fitForNextJob(): boolean {
    return !this.exited && !this.watch.fatal && !this.watch.lockup;
  }

  /** The console as kept: all of it, or its head and tail with a line saying what was dropped between. */
  get console(): string {
    return this.kept.text();
  }

  get stderr(): string {
    return this.stderrText;
  }

  /** Send one job and collect its records until the agent says it ended (timeoutMs Infinity: no deadline). */
  async runJob(id: number, payload: Buffer, timeoutMs: number): Promise<JobResult> {
    if (!this.socket || this.exited) return { kind: 'guest-died', records: [], console: this.console, phases: { startMs: 0, totalMs: 0 } };
    // Each job's records only: a guest serving several jobs keeps no more than one job's in memory.
    this.records = [];
    this.arrivals = [];
    const from = 0;
    this.lastJobEnd = undefined;
    this.fatalSeenAt = undefined;
    this.watch.reset();
    this.recordsThisJob = 0;
    this.recordBytesThisJob = 0;
    const began = performance.now();
    this.socket.write(jobHeader(id, payload.length));
    this.socket.write(payload);
    // Re-check four times a second for a guest that oopsed and then stopped making progress.
    const ticker = setInterval(() => this.wake(), 250);
    // An oops followed by silence, or the kernel reporting a lockup (it has been stuck for seconds already).
    const quiet = () => performance.now() - this.lastActivity;
    const stalled = () => (this.watch.lockup && quiet() > LOCKUP_REPORT_MS) || (this.fatalSeenAt !== undefined && quiet() > STALL_AFTER_OOPS_MS);
    // A guest printing without end is stopped at once: its console would hold the job up for minutes, and it is the finding.
    const flooded = () => this.watch.lines > FLOOD_LINES;
    const end = await this.waitFor(() => (this.lastJobEnd?.id === id ? this.lastJobEnd : undefined) ?? (flooded() ? 'flooded' : stalled() ? 'stalled' : undefined), timeoutMs);
    clearInterval(ticker);
    const records = this.records.slice(from);
    const phases = jobPhases(records, this.arrivals, began, performance.now());
    switch (end.kind) {
      case 'found':
        if (end.value === 'flooded') return { kind: 'flooded', records, console: this.console, flood: { lines: this.watch.lines, seconds: Math.round((performance.now() - began) / 100) / 10 }, phases };
        if (end.value === 'stalled') return { kind: 'stalled', records, console: this.console, phases };
        return { kind: 'done', records, status: end.value.t === 'job-end' ? end.value.status : -1, phases };
      case 'exited':
        return { kind: 'guest-died', records, console: this.console, phases };
      case 'timeout':
        return { kind: 'timeout', records, console: this.console, phases };
    }
  }

  /**
   * Hand the console to a user: the agent starts a shell on it, keystrokes go
   * to the guest and its output comes back, until the shell exits and the guest
   * powers off (or `detach` fires). Resolves when QEMU has exited.
   */
  async interact(input: NodeJS.ReadableStream, output: (text: string) => void, detach?: Promise<void>): Promise<void> {
    this.consoleSink = output;
    const forward = (d: Buffer | string) => this.proc.stdin?.write(d);
    input.on('data', forward);
    this.socket?.write(SHELL);
    try {
      await Promise.race([this.exitPromise, detach?.then(() => this.kill())]);
      await this.exitPromise;
    } finally {
      input.off('data', forward);
      this.consoleSink = undefined;
      await this.close();
    }
  }

  /**
   * Ask the guest to power off; kill QEMU once the kernel says its last word
   * (a reboot without ACPI, on microvm, takes seconds to reach QEMU), or if it
   * has not gone within the deadline.
   */
  async powerOff(timeoutMs: number): Promise<void> {
    this.poweredOff = false;
    if (!this.exited && this.socket) this.socket.write(POWEROFF);
    await this.waitFor(() => (this.poweredOff ? true : undefined), timeoutMs);
    await this.kill();
  }

  /** Kill QEMU now (idempotent) and release everything. */
  async kill(): Promise<void> {
    if (!this.exited) this.proc.kill('SIGKILL');
    await this.close();
  }

  private closed = false;
  private async close(): Promise<void> {
    if (this.closed) {
      await this.exitPromise;
      return;
    }
    this.closed = true;
    await this.exitPromise;
    GuestVm.live.delete(this);
    this.qmp?.close();
    this.socket?.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await new Promise<void>((resolve) => this.log.end(this.kept.rest(), () => resolve()));
    await rm(this.tmp, { recursive: true, force: true });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private waitFor<T>(pick: () => T | undefined, timeoutMs: number): Promise<{ kind: 'found'; value: T } | { kind: 'exited' } | { kind: 'timeout' }> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const check = () => {
        const v = pick();
        if (v !== undefined) finish({ kind: 'found', value: v });
        else if (this.exited) finish({ kind: 'exited' });
      };
      const finish = (r: { kind: 'found'; value: T } | { kind: 'exited' } | { kind: 'timeout' }) => {
        this.waiters.delete(check);
        if (timer) clearTimeout(timer);
        resolve(r);
      };
      this.waiters.add(check);
      // No deadline (Infinity): a job that may sit at a debugger's breakpoint for as long as its user likes.
      if (Number.isFinite(timeoutMs)) timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
      check();
    });
  }
}
