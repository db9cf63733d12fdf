/**
 * A real machine over SSH: one session serves every job. Once the machine is
 * lost, or a job hung it, the jobs after it are not run; closing cleans the
 * target up and reports what could not be undone.
 */
import type { LabJob } from '../guest/job.js';
import type { TargetMachine } from '../model/report.js';
import { ConnectionLost } from '../ssh/connection.js';
import { fingerprint } from '../ssh/known-hosts.js';
import type { RemoteLab } from '../ssh/remote-lab.js';
import { hopAddress } from '../ssh/url.js';
import { MmaplabError } from '../util/errors.js';
import { shellQuote } from '../util/shell-quote.js';
import { track, untrack } from './live.js';
import type { HostedJob, Machine, ShellSession } from './machine.js';

export class SshMachine implements Machine {
  readonly parallel = 1;
  /** A job that hung leaves its processes and module behind: no further job on this machine. */
  private stuck = false;
  private leftBehind: string[] = [];

  constructor(
    private readonly lab: RemoteLab,
    private readonly timeoutMs: number,
    /** The target's kernel log, followed into the run directory. */
    private readonly consoleLog: string,
  ) {
    track(this);
  }

  prepare(): void {}

  private served = 0;

  async runJob(job: LabJob): Promise<HostedJob> {
    if (this.lab.lost || this.stuck) return { end: this.lab.lost ? 'connection-lost' : 'timeout', records: [], console: '', boot: 1 };
    const began = performance.now();
    const r = await this.lab.runJob(job, this.timeoutMs);
    if (r.end === 'timeout') this.stuck = true;
    // The target's records come in bulk over SSH: only the job's whole time is known.
    const timing = { guest: 1, servedBefore: this.served++, restoreMs: 0, phases: { startMs: 0, totalMs: Math.round(performance.now() - began) } };
    return { end: r.end, records: r.records, console: this.lab.kernelLog, boot: 1, timing };
  }

  /** The user's own shell there, in the session's directory, with mmap-test on its PATH; sudo for what needs root. */
  async interact(s: ShellSession): Promise<void> {
    const remote = this.lab;
    const dir = remote.dir;
    const cmd = `cd ${shellQuote(dir)} && PATH=${shellQuote(`${dir}/files/test`)}:"$PATH" exec "\${SHELL:-/bin/sh}" -i`;
    const banner = () =>
      s.output(`mmaplab: a shell on ${remote.where} (${remote.facts.release}); ${s.moduleName} is loaded; mmap-test is on the PATH (as root: sudo "$(command -v mmap-test)" ...); exit to unload it and clean up\r\n`);
    await Promise.race([remote.conn.interactive(cmd, s.input, s.output, s.terminal ?? { rows: 24, cols: 80 }, banner), ...(s.detach ? [s.detach] : [])]).catch((e: unknown) => {
      if (e instanceof ConnectionLost) {
        throw new MmaplabError('target', `lost the connection to ${remote.where} during the shell (${e.reason})`, { hint: `its kernel log until then: ${this.consoleLog}`, artifacts: { consoleLog: this.consoleLog } });
      }
      throw e;
    });
  }

  describe(): TargetMachine {
    const f = this.lab.facts;
    const t = this.lab.conn.target;
    const resolved = { ...(t.address !== t.url ? { address: t.address } : {}), ...(t.via.length ? { via: t.via.map(hopAddress) } : {}) };
    return { kind: 'ssh', target: t.url, ...resolved, hostKey: fingerprint(this.lab.conn.hostKey.blob), os: f.os.prettyName, arch: f.arch, bootId: f.bootId, leftBehind: this.leftBehind };
  }

  consoleLogs(): string[] {
    return [this.consoleLog];
  }

  gdbStub(): number | undefined {
    return undefined;
  }

  firstReady(): { bootMs: number; guestReadyMs: number } {
    return { bootMs: 0, guestReadyMs: 0 };
  }

  async close(): Promise<string[]> {
    this.leftBehind = await this.lab.cleanup();
    untrack(this);
    return this.leftBehind;
  }

  async abort(): Promise<void> {
    await this.lab.cleanup();
  }
}
