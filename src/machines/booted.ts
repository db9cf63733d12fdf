/**
 * Where jobs run: a guest booted as needed (a crash or hang costs that boot,
 * and the next job boots afresh) or an SSH target (one session; once it is
 * lost, the jobs after it are not run). `run`, `check` and `shell` send their
 * work through this one interface.
 */
import { jobPayload, type LabJob } from '../guest/job.js';
import type { GuestRecord } from '../guest/protocol.js';
import type { StrategyRun } from '../model/outcome.js';
import type { RemoteLab } from '../ssh/remote-lab.js';
import type { GuestVm } from '../vm/guest-vm.js';
import { NO_LIMIT, type Slots } from '../util/limiter.js';
import type { GuestBoots } from '../vm/boot.js';

export interface HostedJob {
  end: StrategyRun['end'];
  records: GuestRecord[];
  /** The kernel log the job's machine printed (a guest's console, a target's followed log). */
  console: string;
  /** Which boot served it (a target: always 1). */
  boot: number;
}

export interface JobHost {
  runJob(job: LabJob): Promise<HostedJob>;
  /** How many jobs may be sent at once (a snapshot serves each job its own guest). */
  readonly parallel: number;
  /** The guest after this job is gone (killed after a crash, lost) and the next job needs a fresh one. */
  close(): Promise<void>;
}

export class GuestJobHost implements JobHost {
  readonly parallel = 1;
  private vm: GuestVm | undefined;
  /** The guest slot (a matrix's --jobs) this boot holds until its guest is gone. */
  private release: (() => void) | undefined;

  constructor(
    readonly guests: GuestBoots,
    private readonly timeoutMs: number,
    private readonly slots: Slots = NO_LIMIT,
  ) {}

  async runJob(job: LabJob): Promise<HostedJob> {
    if (!this.vm) {
      this.release = await this.slots.acquire();
      try {
        this.vm = await this.guests.boot();
      } catch (e) {
        this.free();
        throw e;
      }
    }
    const vm = this.vm;
    const end = await vm.runJob(job.id, await jobPayload(job, { inGuest: vm.filesInGuest }), this.timeoutMs);
    const console = vm.console;
    if (end.kind !== 'done') {
      // The guest is unusable: kill it now; the next job gets a fresh boot.
      await vm.kill();
      this.vm = undefined;
      this.free();
    }
    return { end: end.kind, records: end.records, console, boot: this.guests.boots };
  }

  /** The guest in the shell's hands (mmaplab shell), after the job that loaded the driver. */
  get current(): GuestVm | undefined {
    return this.vm;
  }

  async close(): Promise<void> {
    // A guest that finished powers off politely; a stuck one is killed at once.
    if (this.vm) await this.vm.powerOff(10_000);
    this.vm = undefined;
    this.free();
  }

  private free(): void {
    this.release?.();
    this.release = undefined;
  }
}

export class TargetJobHost implements JobHost {
  readonly parallel = 1;
  /** A job that hung leaves its processes and module behind: no further job on this machine. */
  private stuck = false;

  constructor(
    readonly lab: RemoteLab,
    private readonly timeoutMs: number,
  ) {}

  async runJob(job: LabJob): Promise<HostedJob> {
    if (this.lab.lost || this.stuck) return { end: this.lab.lost ? 'connection-lost' : 'timeout', records: [], console: '', boot: 1 };
    const r = await this.lab.runJob(job, this.timeoutMs);
    if (r.end === 'timeout') this.stuck = true;
    return { end: r.end, records: r.records, console: this.lab.kernelLog, boot: 1 };
  }

  async close(): Promise<void> {
    await this.lab.cleanup();
  }
}
