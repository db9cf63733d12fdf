/**
 * Jobs served from a snapshot: guests restored from the kernel's cached
 * snapshot (made by one cold boot the first time). A restored guest serves
 * jobs one after another for as long as each leaves it as it was (the driver
 * unloaded, nothing left behind, nothing reported: parse/guest-after-job.ts);
 * one that does not is killed, and the next job gets a guest restored afresh,
 * so a crash never reaches another job. A guest serves one driver only: a job
 * of another driver never gets it. Guests run side by side in lanes, as many
 * as the cores, the guest slots and the work allow. A snapshot that is stale
 * is made anew; one that is damaged or does not restore is removed, and the
 * run carries on in booted guests.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { jobPayload, type LabJob } from '../guest/job.js';
import type { GuestRecord } from '../guest/protocol.js';
import type { GuestMachine, SnapshotUse } from '../model/report.js';
import { guestAfterJob } from '../parse/guest-after-job.js';
import { jobConsoleLabel } from '../rundir/run-dir.js';
import { isMmaplabError, MmaplabError } from '../util/errors.js';
import { Limiter } from '../util/limiter.js';
import { bootGuest, bootRecipes, guestSpec } from '../vm/boot.js';
import { GuestVm, type BootResult } from '../vm/guest-vm.js';
import type { MachineType } from '../vm/qemu-args.js';
import { discardSnapshot, lookupSnapshot, makeSnapshot, slotDir, snapshotKey, type BootSpec, type SnapshotLookup } from '../vm/snapshot.js';
import type { BootedGuests } from './booted.js';
import { DriverIds } from './driver-id.js';
import type { GuestContext } from './guest-context.js';
import { track, untrack } from './live.js';
import type { HostedJob, Machine, ShellSession } from './machine.js';

/**
 * A restore that takes longer than this is a broken snapshot, not a slow one
 * (restores take well under a second). Not --timeout: a short job deadline
 * must not condemn a good snapshot.
 */
const RESTORE_DEADLINE_MS = 20_000;
/** The warm-up while the driver builds takes a fraction of a second; a guest slower than this goes on to its job anyway. */
const WARM_DEADLINE_MS = 5_000;

interface ConsolePart {
  label: string;
  path: string;
}

interface Usable {
  dir: string;
  spec: BootSpec;
  hash: string;
}

/** A restored guest and what it has served. */
interface Guest {
  vm: GuestVm;
  log: ConsolePart & { guest: number; jobs: Array<{ id: number; strategy: string }> };
  synced: Extract<GuestRecord, { t: 'synced' }> | undefined;
  /** The driver it has served (the module file's hash): it serves no other. */
  driver: string | undefined;
  served: number;
  restoreMs: number;
  /** The kernel's taint before this guest's first job. */
  baseTaint?: number | undefined;
}

interface Queued {
  job: LabJob;
  done: (r: Promise<HostedJob>) => void;
}

/** What a lane holds between its jobs: its guest slot and its guest. */
interface LaneState {
  release: (() => void) | undefined;
  guest: Guest | undefined;
}

export class RestoredGuests implements Machine {
  /** Jobs are queued here and taken by the lanes: send them all at once. */
  readonly parallel = Infinity;
  private prepared: Promise<Usable | undefined> | undefined;
  private broken: string | undefined;
  private made: { bootMs: number; attempts: number; why: 'missing' | 'stale' | 'corrupt' } | undefined;
  private hash = '';
  private readonly restoreMs: number[] = [];
  private jobsServed = 0;
  /** Console files in the order they go into console.log. */
  private readonly logs: ConsolePart[] = [];
  /** The first job's guest, restored while the driver builds (warmUp). */
  private spare: Promise<{ r: BootResult; log: Guest['log'] } | undefined> | undefined;
  private spareSlot: (() => void) | undefined;
  private readonly fallbackOne = new Limiter(1);
  private usedFallback = false;
  private folded: Promise<void> | undefined;
  private guests = 0;
  private spec: BootSpec | undefined;
  private readonly queue: Queued[] = [];
  private lanes = 0;
  /** Lanes started that have not yet taken a job (waiting for the snapshot). */
  private idleLanes = 0;
  /** The snapshot is there to restore: only then may a lane beyond the first take a slot. */
  private snapReady = false;
  /** Lanes still running (close waits for their guests to go). */
  private readonly laneRuns = new Set<Promise<void>>();
  private readonly maxLanes: number;
  private readonly drivers = new DriverIds();

  constructor(
    private readonly ctx: GuestContext,
    /** Booted guests, for when the snapshot cannot serve. */
    private readonly fallback: BootedGuests,
    private readonly cacheDir: string,
    /** false: every job in a guest restored afresh (--guest-per-job). */
    private readonly share = true,
  ) {
    // TCG runs a guest's CPU on one host thread: more guests than cores only take turns.
    this.maxLanes = Math.max(1, Math.min(ctx.slots.size, availableParallelism()));
    track(this);
  }

  /**
   * While the driver builds: restore the first job's guest ahead of time, if
   * the kernel's snapshot is already cached (making one is left to the first
   * job, so a driver that does not compile is not kept waiting for a boot).
   */
  prepare(): void {
    // Once a job ran, only a machine kept for more (check --watch) asks again: a guest is restored to wait for the next.
    if (this.spare || this.broken || (this.prepared && this.jobsServed === 0)) return;
    // Only in a free guest slot (a matrix's kernels would otherwise all restore at once): the first lane takes it over.
    const slot = this.ctx.slots.tryAcquire();
    if (!slot) return;
    this.spareSlot = slot;
    const prepared = this.prepared;
    this.spare = (async () => {
      const found: SnapshotLookup | { kind: 'ok'; usable: Usable | undefined } = prepared ? { kind: 'ok', usable: await prepared } : await this.lookup();
      // No snapshot to restore: the slot goes back at once (making one takes a slot of its own).
      if (found.kind !== 'ok' || !found.usable) return void this.takeSpareSlot()?.();
      this.prepared ??= Promise.resolve(found.usable);
      this.ctx.progress('restore', `restoring ${this.ctx.kernel.release} from its snapshot ${prepared ? 'for the next job' : 'while the driver builds'}`);
      const restored = await this.restore(found.usable);
      // The guest would wait idle for the build: it runs what a job runs once, so QEMU has translated it before the job.
      if (restored.r.kind === 'ready') await restored.r.vm.warm(WARM_DEADLINE_MS);
      return restored;
    })().catch(() => void this.takeSpareSlot()?.());
  }

  runJob(job: LabJob): Promise<HostedJob> {
    return new Promise<HostedJob>((resolve, reject) => {
      this.queue.push({ job, done: (r) => void r.then(resolve, reject) });
      this.startLane();
    });
  }

  /**
   * A lane for waiting jobs. The first waits its turn for a guest slot; one
   * more starts only once the snapshot is ready (making one takes a slot of its
   * own: a lane holding one while it waits for the snapshot could starve that
   * boot) and only while a slot is free that nobody waits for, so a matrix's
   * kernels each get a guest before any gets two (every guest costs a restore
   * and a first job QEMU has not yet translated), and the last kernel's jobs
   * still spread over the slots the others left. A lane ends when the queue is
   * empty; a job queued meanwhile starts the next.
   */
  private startLane(): void {
    if (!this.queue.length || this.lanes >= this.maxLanes) return;
    let slot: (() => void) | undefined;
    if (this.lanes > 0) {
      // The snapshot ready, jobs beyond those the lanes are about to take, and a slot to spare.
      if (!this.snapReady || this.queue.length <= this.idleLanes) return;
      slot = this.ctx.slots.tryAcquire();
      if (!slot) return;
    }
    this.lanes++;
    const run = this.lane(slot).finally(() => {
      this.lanes--;
      this.laneRuns.delete(run);
      this.startLane();
    });
    this.laneRuns.add(run);
  }

  /** One guest slot: guests restored in turn, each serving queued jobs while they leave it as it was. */
  private async lane(slot: (() => void) | undefined): Promise<void> {
    const at: LaneState = { release: slot, guest: undefined };
    let snap: Usable | undefined;
    this.idleLanes++;
    try {
      snap = await (this.prepared ??= this.prepareSnapshot());
    } catch (e) {
      // The kernel does not boot at all: every job waiting fails as a cold boot would.
      this.idleLanes--;
      at.release?.();
      for (const q of this.queue.splice(0)) q.done(Promise.reject(e));
      return;
    }
    this.idleLanes--;
    this.snapReady = !!snap && !this.broken;
    try {
      for (let q = this.queue.shift(); q; q = this.queue.shift()) {
        // More waiting than this lane takes: another lane, if a slot is free.
        this.startLane();
        const job = q;
        // Whatever goes wrong with this job is its result: it is never left waiting.
        await this.take(job, snap, at).catch((e: unknown) => {
          job.done(Promise.reject(e));
          throw e;
        });
      }
    } catch (e) {
      for (const q of this.queue.splice(0)) q.done(Promise.reject(e));
    } finally {
      if (at.guest) await this.retire(at.guest);
      at.release?.();
    }
  }

  /** One job in this lane: in its guest if it is fit and of the same driver, else in one restored now, or in a booted guest. */
  private async take(q: Queued, snap: Usable | undefined, at: LaneState): Promise<void> {
    if (!snap || this.broken) {
      // This lane's guest and slot go first: a booted guest takes a slot of its own.
      if (at.guest) at.guest = await this.retire(at.guest);
      at.release?.();
      at.release = undefined;
      const spare = await this.takeSpare();
      if (spare?.r.kind === 'ready') await spare.r.vm.kill();
      this.takeSpareSlot()?.();
      q.done(this.viaFallback(q.job));
      return;
    }
    const driver = await this.drivers.of(q.job.modulePath);
    // Another driver never gets this guest; nor does any job once its console showed a crash after the last job.
    if (at.guest && (at.guest.driver !== driver || !at.guest.vm.fitForNextJob)) at.guest = await this.retire(at.guest);
    if (!at.guest) {
      at.release ??= this.takeSpareSlot() ?? (await this.ctx.slots.acquire());
      const up = await this.bringUp(snap, q.job);
      if (up.kind !== 'guest') {
        // The booted guest takes a slot of its own: give this one back first (a matrix with --jobs 1 has one).
        at.release();
        at.release = undefined;
        q.done(up.kind === 'fallback' ? this.viaFallback(q.job) : Promise.resolve(up.job));
        return;
      }
      at.guest = up.guest;
    }
    // The guest is up: what the job's line says from here on is its checks.
    this.ctx.progress('job', q.job.checks.join(', '), { lane: q.job.strategy });
    const served = await this.serve(at.guest, q.job, driver);
    q.done(Promise.resolve(served.job));
    if (!served.keep) at.guest = await this.retire(at.guest);
  }

  /** The kernel's snapshot, made now if none matches (kernels fetch): what the report would say of it. */
  async ensureSnapshot(): Promise<SnapshotUse> {
    await (this.prepared ??= this.prepareSnapshot());
    return this.use();
  }

  /** The guest restored ahead, if any (once). */
  private async takeSpare(): Promise<{ r: BootResult; log: Guest['log'] } | undefined> {
    const spare = this.spare;
    this.spare = undefined;
    return spare ? await spare : undefined;
  }

  /** The slot the guest restored ahead was restored in, for the first lane that needs one (once). */
  private takeSpareSlot(): (() => void) | undefined {
    const slot = this.spareSlot;
    this.spareSlot = undefined;
    return slot;
  }

  /** A guest for a job: the one restored ahead, else restored now; a failed restore sends the job to a booted guest. */
  private async bringUp(snap: Usable, job: LabJob): Promise<{ kind: 'guest'; guest: Guest } | { kind: 'fallback' } | { kind: 'ended'; job: HostedJob }> {
    const ahead = await this.takeSpare();
    if (!ahead) this.ctx.progress('restore', `job ${job.id}: restoring ${this.ctx.kernel.release} from its snapshot`, { lane: job.strategy });
    const { r, log } = ahead ?? (await this.restore(snap));
    // Killed from outside (Ctrl-C reaping every guest, the OOM killer): not the snapshot's fault.
    if (r.kind !== 'ready' && (GuestVm.stopping || (r.kind === 'exited' && r.signal))) {
      log.jobs.push({ id: job.id, strategy: job.strategy });
      return { kind: 'ended', job: { end: 'guest-died', records: [], console: r.console, boot: log.guest } };
    }
    if (r.kind !== 'ready') {
      const why = r.kind === 'timeout' ? 'the restored guest did not answer' : `QEMU exited${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').pop()}` : ''}`;
      if (!this.broken) {
        this.broken = why;
        this.ctx.notes.push(`the snapshot of ${this.ctx.kernel.release} did not restore (${why}); it was removed, and the jobs from job ${job.id} on ran in a booted guest`);
        await discardSnapshot(snap.dir);
      }
      // Not this job's console: the job runs in a booted guest, whose console is its own.
      log.label = `a guest restored for job ${job.id} that did not come up (${why})`;
      return { kind: 'fallback' };
    }
    this.restoreMs.push(r.bootMs);
    return { kind: 'guest', guest: { vm: r.vm, log, synced: r.synced, driver: undefined, served: 0, restoreMs: r.bootMs } };
  }

  /** One job in a guest; keep: the guest is as it was and may serve the next job of the same driver. */
  private async serve(guest: Guest, job: LabJob, driver: string): Promise<{ job: HostedJob; keep: boolean }> {
    const { vm, log } = guest;
    guest.driver = driver;
    log.jobs.push({ id: job.id, strategy: job.strategy });
    log.label = jobConsoleLabel(log.jobs, `in a guest restored from snapshot ${this.hash}`);
    // A guest that may serve on reports what the job left (STATE), for guestAfterJob to judge.
    const sent: LabJob = this.share ? { ...job, reportState: true } : job;
    const end = await vm.runJob(job.id, await jobPayload(sent, { inGuest: vm.filesInGuest, arch: this.ctx.kernel.arch }), this.ctx.boot.timeoutS * 1000);
    this.jobsServed++;
    // The guest's answer to SYNC goes with its first job's records (records.jsonl): the clock and RNG it started from.
    const records = guest.served === 0 && guest.synced ? [guest.synced, ...end.records] : end.records;
    const timing = { guest: log.guest, servedBefore: guest.served, restoreMs: guest.served === 0 ? Math.round(guest.restoreMs) : 0, phases: end.phases };
    guest.served++;
    // The taint before the guest's first job is the baseline: what a later job's "before" shows may have come between jobs.
    guest.baseTaint ??= end.records.find((r): r is Extract<GuestRecord, { t: 'guest-state' }> => r.t === 'guest-state' && r.when === 'before')?.tainted;
    const baseline = guest.baseTaint === undefined ? undefined : { tainted: guest.baseTaint };
    const after = this.share ? guestAfterJob(end.kind, end.records, job.moduleName, job.checks, baseline) : { kind: 'changed' as const, why: 'one job per guest' };
    const hosted: HostedJob = { end: end.kind, records, console: vm.console, boot: log.guest, timing, ...(end.kind === 'flooded' ? { flood: end.flood } : {}) };
    return { job: hosted, keep: after.kind === 'as-it-was' };
  }

  /** The guest goes, with whatever its jobs did to it. */
  private async retire(guest: Guest): Promise<undefined> {
    await guest.vm.kill();
    return undefined;
  }


  /** One guest restored from the snapshot, its console in a file of its own (console.log is put together at the end). */
  private async restore(snap: Usable): Promise<{ r: BootResult; log: Guest['log'] }> {
    const guest = ++this.guests;
    const log = { label: 'a restored guest that ran no job', path: this.ctx.runDir.file(`console-guest${guest}.log`), guest, jobs: [] };
    this.logs.push(log);
    const r = await GuestVm.restore({ ...snap.spec, ram: { path: join(snap.dir, 'ram'), share: false } }, join(snap.dir, 'state'), {
      qemu: this.ctx.qemu.binary,
      consoleLog: log.path,
      preloaded: this.ctx.initramfs.preloaded,
      bootTimeoutMs: RESTORE_DEADLINE_MS,
    });
    return { r, log };
  }

  private viaFallback(job: LabJob): Promise<HostedJob> {
    this.usedFallback = true;
    return this.fallbackOne.run(() => this.fallback.runJob(job));
  }

  /** The snapshot to restore: the cached one if it matches, else one made now; undefined: boot instead. */
  /** The kernel's snapshot slot and what is in it. */
  private async lookup(): Promise<(SnapshotLookup & { kind: Exclude<SnapshotLookup['kind'], 'ok'> }) | { kind: 'ok'; usable: Usable }> {
    const { qemu, kernel, initramfs } = this.ctx;
    const accel = this.ctx.accel.accel;
    const cacheDir = this.cacheDir;
    // The snapshot of the fastest way to boot this kernel (a failed trick is ruled out by the boot that makes it).
    const spec = guestSpec(qemu, accel, (await bootRecipes(kernel, qemu))[0]!, initramfs.path, this.ctx.boot.memoryMb);
    const dir = slotDir(cacheDir, kernel.release, spec);
    const found = await lookupSnapshot(dir, await snapshotKey(spec, qemu));
    if (found.kind !== 'ok') return found;
    this.hash = found.meta.hash;
    this.spec = spec;
    return { kind: 'ok', usable: { dir, spec, hash: found.meta.hash } };
  }

  private async prepareSnapshot(): Promise<Usable | undefined> {
    const { qemu, kernel, initramfs, runDir, notes } = this.ctx;
    const accel = this.ctx.accel.accel;
    const found = await this.lookup();
    if (found.kind === 'ok') return found.usable;
    const { dir } = found;
    if (found.kind === 'stale') notes.push(`the snapshot of ${kernel.release} was made anew: ${found.why}`);
    if (found.kind === 'corrupt') notes.push(`the cached snapshot of ${kernel.release} was damaged (${found.why}); it was removed and made anew`);
    const release = await this.ctx.slots.acquire();
    const consoleLog = runDir.file('console-boot.log');
    this.logs.push({ label: `the boot that made the snapshot of ${kernel.release}`, path: consoleLog });
    try {
      let booted: Awaited<ReturnType<typeof bootGuest>> | undefined;
      const meta = await makeSnapshot(dir, async (files) => {
        this.ctx.progress('boot', `booting ${kernel.release} under ${accel.toUpperCase()} to make its snapshot`);
        booted = await bootGuest(qemu, accel, kernel, initramfs, this.ctx.boot, notes, consoleLog, files.ram);
        this.guests++;
        this.ctx.progress('snapshot', `saving the waiting guest as the snapshot of ${kernel.release}`);
        await booted.vm.saveSnapshot(files.state, 60_000);
        return { bootMs: booted.bootMs, key: await snapshotKey(booted.spec, qemu) };
      });
      this.made = { bootMs: meta.bootMs, attempts: booted!.attempts, why: found.kind };
      this.hash = meta.hash;
      this.spec = booted!.spec;
      return { dir, spec: booted!.spec, hash: meta.hash };
    } catch (e) {
      // A kernel that does not boot at all fails the run as a cold boot would; a snapshot that cannot be saved only costs speed.
      if (isMmaplabError(e) && e.kind === 'boot') {
        // The boot's console goes into console.log when the host closes (before the error is shown): point there.
        throw new MmaplabError('boot', e.message, { details: e.details, hint: `full console: ${this.consoleLog}`, artifacts: { consoleLog: this.consoleLog }, cause: e });
      }
      this.broken = e instanceof Error ? e.message : String(e);
      notes.push(`no snapshot of ${kernel.release} could be made (${this.broken}); the jobs ran in a booted guest`);
      return undefined;
    } finally {
      release();
    }
  }

  /** What the guests booted or were restored from: the uncompressed vmlinux (PVH) or the bzImage, on which machine. */
  private image(): { bootImage: 'pvh' | 'bzimage'; machineType: MachineType } {
    const first = this.fallback.first;
    if (!this.spec || this.broken) return { bootImage: first?.image ?? 'bzimage', machineType: first?.machine ?? 'pc' };
    return { bootImage: this.spec.kernelImage === this.ctx.kernel.vmlinux ? 'pvh' : 'bzimage', machineType: this.spec.machine ?? 'pc' };
  }

  /** What the report says about snapshots. */
  private use(): SnapshotUse {
    const restores = this.restoreMs.length;
    const sorted = [...this.restoreMs].sort((a, b) => a - b);
    const restoreMs = Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0);
    const jobs = this.jobsServed;
    if (this.broken) return { use: 'failed', reason: this.broken, restores, restoreMs, jobs };
    if (this.made) return { use: 'made', key: this.hash, restores, restoreMs, jobs, bootMs: this.made.bootMs, why: this.made.why };
    return { use: 'restored', key: this.hash, restores, restoreMs, jobs };
  }

  async interact(s: ShellSession): Promise<void> {
    void s;
    // Each restored guest goes with its job; mmaplab shell boots the guest it keeps.
    throw new MmaplabError('internal', 'a shell needs a guest that is kept: boot one (--no-snapshot)');
  }

  describe(): GuestMachine {
    return {
      accel: this.ctx.accel.accel,
      accelReason: this.ctx.accel.reason,
      qemu: this.ctx.qemu.version,
      // The boot that made the snapshot, and the fallback's (a flake or a failed trick retried counts as attempts).
      boots: (this.made ? 1 : 0) + this.fallback.boots,
      bootAttempts: (this.made?.attempts ?? 0) + this.fallback.attempts,
      ...this.image(),
      snapshot: this.use(),
    };
  }

  consoleLogs(): string[] {
    return [this.consoleLog, ...this.fallback.consoleLogs()];
  }

  /** Time to the first guest that took a job: the boot that made the snapshot, else the first restore. */
  gdbStub(): number | undefined {
    return undefined;
  }

  firstReady(): { bootMs: number; guestReadyMs: number } {
    return { bootMs: this.made?.bootMs ?? this.restoreMs[0] ?? this.fallback.first?.bootMs ?? 0, guestReadyMs: 0 };
  }

  async close(): Promise<string[]> {
    // A guest restored ahead for a job that never came (the build failed).
    const spare = await this.spare;
    this.spare = undefined;
    if (spare?.r.kind === 'ready') await spare.r.vm.kill();
    this.takeSpareSlot()?.();
    while (this.laneRuns.size) await Promise.all([...this.laneRuns]);
    await this.fallback.close();
    await this.foldConsoles();
    untrack(this);
    return [];
  }

  /** Interrupted: the guests are killed (by the caller, as every guest is); their consoles still become console.log. */
  async abort(): Promise<void> {
    await this.fallback.abort();
    await this.foldConsoles();
  }

  /** console.log, once: an interrupted run's abort and its command's close may both ask for it. */
  private foldConsoles(): Promise<void> {
    return (this.folded ??= this.fold());
  }

  /** console.log: every guest's console of this run, in order, each under a heading; the per-guest files go. */
  private async fold(): Promise<void> {
    const parts = [...this.logs];
    if (this.usedFallback) for (const path of this.fallback.consoleLogs()) parts.push({ label: 'a booted guest (the snapshot could not serve)', path });
    if (!parts.length) return;
    await this.ctx.runDir.foldConsoles(parts, this.logs.map((p) => p.path));
    this.logs.length = 0;
  }

  private get consoleLog(): string {
    return this.ctx.runDir.consoleLog;
  }
}
