/**
 * Guests booted as needed: one boot serves jobs until a job leaves it
 * unusable (a crash, a hang, or anything left behind, as guestAfterJob judges:
 * that boot goes, and the next job boots afresh).
 * The first boot's console is console.log (or the fallback's file when a
 * snapshot was meant to serve), each boot after a crash console-bootN.log.
 * `mmaplab shell` keeps its guest after the job that loaded the driver.
 */
import { jobPayload, type LabJob } from '../guest/job.js';
import type { GuestMachine } from '../model/report.js';
import type { GuestRecord } from '../guest/protocol.js';
import { guestAfterJob } from '../parse/guest-after-job.js';
import { DriverIds } from './driver-id.js';
import { MmaplabError } from '../util/errors.js';
import { bootGuest, type Booted } from '../vm/boot.js';
import type { GuestVm } from '../vm/guest-vm.js';
import type { GuestContext } from './guest-context.js';
import { track, untrack } from './live.js';
import type { HostedJob, Machine, ShellSession } from './machine.js';

export class BootedGuests implements Machine {
  readonly parallel = 1;
  boots = 0;
  attempts = 0;
  first: Booted | undefined;
  private readonly logs: string[] = [];
  private vm: GuestVm | undefined;
  /** Jobs the current boot has served. */
  private served = 0;
  /** The driver the current boot has served. */
  private driver: string | undefined;
  private readonly drivers = new DriverIds();
  /** The taint before the current boot's first job. */
  private baseTaint: number | undefined;
  /** The guest slot (a matrix's --jobs) this boot holds until its guest is gone. */
  private release: (() => void) | undefined;
  /** The current boot's gdb stub (a guest booted for debugging). */
  private gdbPort: number | undefined;

  constructor(
    private readonly ctx: GuestContext,
    private readonly opts: {
      /** Where the first boot's console goes. */
      firstLog: string;
      /** Why no snapshot served, for the report. */
      snapshotOff: string;
    },
  ) {
    track(this);
  }

  prepare(): void {}

  /** lane: the job the boot is for, so its progress shows on that job's line. */
  private async boot(lane: string): Promise<GuestVm> {
    const { ctx } = this;
    this.boots++;
    const consoleLog = this.boots === 1 ? this.opts.firstLog : ctx.runDir.file(`console-boot${this.boots}.log`);
    this.logs.push(consoleLog);
    ctx.progress('boot', `booting ${ctx.kernel.release} under ${ctx.accel.accel.toUpperCase()}${this.boots > 1 ? ` (boot ${this.boots}: the last job crashed or changed its guest, or loaded another driver)` : ''}`, { lane });
    const booted = await bootGuest(ctx.qemu, ctx.accel.accel, ctx.kernel, ctx.initramfs, ctx.boot, ctx.notes, consoleLog);
    this.first ??= booted;
    this.gdbPort = booted.gdbPort;
    this.attempts += booted.attempts;
    return booted.vm;
  }

  async runJob(job: LabJob): Promise<HostedJob> {
    let bootMs = 0;
    const driver = await this.drivers.of(job.modulePath);
    // A boot serves one driver, and no job once its console showed a crash after the last job.
    if (this.vm && (this.driver !== driver || !this.vm.fitForNextJob)) {
      await this.vm.kill();
      this.vm = undefined;
      this.free();
    }
    this.driver = driver;
    if (!this.vm) {
      this.release = await this.ctx.slots.acquire();
      const t = performance.now();
      try {
        this.vm = await this.boot(job.strategy);
      } catch (e) {
        this.free();
        throw e;
      }
      bootMs = Math.round(performance.now() - t);
      this.served = 0;
    }
    const vm = this.vm;
    this.ctx.progress('job', job.checks.join(', '), { lane: job.strategy });
    // A job that unloads its driver reports what it left (STATE), so a guest it changed serves no other job.
    const sent: LabJob = job.keepLoaded ? job : { ...job, reportState: true };
    // An untimed job (mmaplab debug's mapping test) may wait at a breakpoint for as long as its user likes.
    const deadline = job.untimed ? Infinity : this.ctx.boot.timeoutS * 1000;
    const end = await vm.runJob(job.id, await jobPayload(sent, { inGuest: vm.filesInGuest, arch: this.ctx.kernel.arch }), deadline);
    const console = vm.console;
    if (this.served === 0) this.baseTaint = end.records.find((r): r is Extract<GuestRecord, { t: 'guest-state' }> => r.t === 'guest-state' && r.when === 'before')?.tainted;
    const baseline = this.baseTaint === undefined ? undefined : { tainted: this.baseTaint };
    const unusable = end.kind !== 'done' || (!job.keepLoaded && guestAfterJob(end.kind, end.records, job.moduleName, job.checks, baseline).kind !== 'as-it-was');
    if (unusable) {
      // The guest is unusable (crashed, hung, or left something behind): kill it now; the next job gets a fresh boot.
      await vm.kill();
      this.vm = undefined;
      this.free();
    }
    const timing = { guest: this.boots, servedBefore: this.served++, restoreMs: bootMs, phases: end.phases };
    return { end: end.kind, records: end.records, console, boot: this.boots, timing, ...(end.kind === 'flooded' ? { flood: end.flood } : {}) };
  }

  async interact(s: ShellSession): Promise<void> {
    if (!this.vm) throw new MmaplabError('internal', 'the guest went away after loading the driver');
    await this.vm.interact(s.input, s.output, s.detach);
  }

  describe(): GuestMachine {
    return {
      accel: this.ctx.accel.accel,
      accelReason: this.ctx.accel.reason,
      qemu: this.ctx.qemu.version,
      boots: this.boots,
      bootAttempts: this.attempts,
      bootImage: this.first?.image ?? 'bzimage',
      machineType: this.first?.machine ?? 'pc',
      snapshot: { use: 'off', reason: this.opts.snapshotOff },
    };
  }

  consoleLogs(): string[] {
    return [...this.logs];
  }

  gdbStub(): number | undefined {
    return this.vm ? this.gdbPort : undefined;
  }

  firstReady(): { bootMs: number; guestReadyMs: number } {
    return { bootMs: this.first?.bootMs ?? 0, guestReadyMs: (this.first?.guestUptimeS ?? 0) * 1000 };
  }

  async close(): Promise<string[]> {
    // A guest that finished powers off politely; a stuck one is killed at once.
    if (this.vm) await this.vm.powerOff(10_000);
    this.vm = undefined;
    this.free();
    untrack(this);
    return [];
  }

  async abort(): Promise<void> {
    await this.vm?.kill();
  }

  private free(): void {
    this.release?.();
    this.release = undefined;
  }
}
