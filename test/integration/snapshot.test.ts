/**
 * Snapshots, for real: the bookworm guest saved once and restored; a restored
 * guest serves the next job while each leaves it as it was. Made, restored,
 * stale (rebuilt), damaged (rebuilt), not restorable (cold boots instead); a
 * job that crashes its guest, or leaks from it, retires it and the next job
 * gets a fresh one; the same grid from shared guests, from a guest per job and
 * from booted guests.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { labJob } from '../../src/guest/job.js';
import { setUpLab } from '../../src/machines/setup.js';
import type { RunReport } from '../../src/model/report.js';
import { RunDir } from '../../src/rundir/run-dir.js';
import { Limiter } from '../../src/util/limiter.js';
import { cacheRoot, projectPaths } from '../../src/util/paths.js';
import { keyHash, type SnapshotMeta } from '../../src/vm/snapshot.js';
import { qemuProcesses, runCli } from './cli.js';
import { parseValidResults } from '../support/schema.js';

const DRIVERS = 'test/fixtures/drivers';
const SNAPSHOTS = join(cacheRoot(), 'snapshots');

afterEach(() => {
  expect(qemuProcesses()).toEqual([]);
});

function report(stdout: string): RunReport {
  return parseValidResults<RunReport>(stdout);
}

/** The bookworm kernel's snapshot slot (there is one per kernel, accelerator and memory size). */
function bookwormSlot(): string {
  const slots = readdirSync(SNAPSHOTS).filter((d) => /^6\.1\.0-\d+-cloud-amd64-(tcg|kvm)-256m$/.test(d));
  expect(slots).toHaveLength(1);
  return join(SNAPSHOTS, slots[0]!);
}

function meta(slot: string): SnapshotMeta {
  return JSON.parse(readFileSync(join(slot, 'meta.json'), 'utf8')) as SnapshotMeta;
}

/** What a cell shows, without what differs from run to run (addresses, timings). */
function cells(r: RunReport) {
  return r.results.map((x) => ({
    cell: `${x.strategy}/${x.check}`,
    outcome: x.outcome.kind,
    exit: x.exitStatus,
    expected: x.matchesExpected,
    traced: x.traced.map((t) => [t.fn, t.calls, t.returns]),
    pages: x.pageReports.map((p) => [p.page, p.word, p.index]),
  }));
}

const SEED = ['run', '--json', '--strategy', 'seed,checked,remap-vmalloc-range'];
/** One guest at a time: which guest serves which job is then certain. */
const ONE = ['--jobs', '1'];

describe('snapshots of the bookworm guest', () => {
  let made: RunReport;
  let restored: RunReport;

  beforeAll(async () => {
    // Start from no snapshot at all; the first run boots once and makes it.
    await runCli(['run', '--strategy', 'seed', '--check', 'shared']);
    const { rmSync } = await import('node:fs');
    rmSync(bookwormSlot(), { recursive: true, force: true });
    const first = await runCli([...SEED, ...ONE]);
    expect(first.exitCode, first.stderr).toBe(0);
    made = report(first.stdout);
    const second = await runCli([...SEED, ...ONE]);
    expect(second.exitCode, second.stderr).toBe(0);
    restored = report(second.stdout);
  });

  it('the first run boots once and saves the waiting guest; the next run only restores, and one restored guest serves every job that leaves it as it was', () => {
    expect(made.machine.kind).not.toBe('ssh');
    if (made.machine.kind === 'ssh' || restored.machine.kind === 'ssh') return;
    expect(made.machine.snapshot).toMatchObject({ use: 'made', why: 'missing', restores: 1, jobs: 3 });
    expect(made.machine.boots).toBe(1);
    expect(restored.machine.snapshot).toMatchObject({ use: 'restored', restores: 1, jobs: 3 });
    expect(restored.machine.boots).toBe(0);
    // Per job: which guest, how many it served before, and where the time went.
    expect(restored.timings.jobs?.map((j) => [j.job, j.label, j.guest, j.servedBefore])).toEqual([[1, 'seed', 1, 0], [2, 'checked', 1, 1], [3, 'remap-vmalloc-range', 1, 2]]);
    for (const j of restored.timings.jobs ?? []) {
      expect(j.restoreMs > 0).toBe(j.servedBefore === 0);
      for (const phase of [j.startMs, j.insmodMs, j.checksMs, j.rmmodMs, j.endMs]) expect(phase).toBeGreaterThan(0);
      expect(j.totalMs).toBeGreaterThanOrEqual(j.startMs + j.insmodMs! + j.checksMs! + j.rmmodMs! + j.endMs! - 5);
    }
    const m = meta(bookwormSlot());
    expect(m.hash).toBe(keyHash(m.key));
    expect(restored.machine.snapshot).toMatchObject({ key: m.hash });
    // The key names QEMU, the kernel and initramfs files and the whole command line.
    expect(m.key.qemu.version).toBe(restored.machine.qemu);
    expect(m.key.kernel.path).toMatch(/6\.1\.0-\d+-cloud-amd64\/vmlinux$/);
    expect(m.key.args).toEqual(expect.arrayContaining(['-machine', 'pc,memory-backend=mem']));
    // console.log holds every guest's console under a heading naming the jobs it served.
    const log = readFileSync(restored.artifacts.consoleLog, 'utf8');
    expect(log.match(/^===== mmaplab: jobs? .*, in a guest restored from snapshot [0-9a-f]{16} =====$/gm)).toEqual([
      `===== mmaplab: jobs 1 (seed), 2 (checked), 3 (remap-vmalloc-range), in a guest restored from snapshot ${m.hash} =====`,
    ]);
    expect(log).toMatch(/mmaplab: job 1 begin[\s\S]*mmaplab: job 3 end/);
  });

  it('shared guests give the same grid as a guest per job (--guest-per-job) and as booted ones (--no-snapshot)', async () => {
    const cold = await runCli([...SEED, '--no-snapshot']);
    expect(cold.exitCode, cold.stderr).toBe(0);
    const c = report(cold.stdout);
    expect(c.machine.kind !== 'ssh' && c.machine.snapshot).toEqual({ use: 'off', reason: '--no-snapshot' });
    const each = await runCli([...SEED, '--guest-per-job']);
    expect(each.exitCode, each.stderr).toBe(0);
    const e = report(each.stdout);
    expect(e.machine.kind !== 'ssh' && e.machine.snapshot).toMatchObject({ use: 'restored', restores: 3, jobs: 3 });
    expect(cells(restored)).toEqual(cells(c));
    expect(cells(e)).toEqual(cells(c));
    expect(cells(made)).toEqual(cells(c));
    expect(restored.kernelLog.problems).toEqual([]);
  });

  it('each restored guest gets the host clock and fresh randomness before its first job', async () => {
    const records = (r: RunReport) =>
      readFileSync(join(r.artifacts.dir, 'records.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { t: string; job: number; clock?: boolean; rng?: boolean; time?: number; random?: string });
    // One guest served the three jobs: its answer goes with the first.
    expect(records(restored).filter((r) => r.t === 'synced').map((r) => r.job)).toEqual([1]);
    const from = Date.now();
    const each = report((await runCli([...SEED, '--guest-per-job'])).stdout);
    const to = Date.now();
    const synced = records(each).filter((r) => r.t === 'synced');
    // Each job's records are appended as it ends: jobs side by side end in any order.
    expect(synced.map((r) => r.job).sort()).toEqual([1, 2, 3]);
    for (const s of synced) {
      expect(s).toMatchObject({ clock: true, rng: true });
      // Set from this machine's clock during that run (the snapshot itself was taken in an earlier run).
      expect(s.time).toBeGreaterThanOrEqual(from - 1000);
      expect(s.time).toBeLessThanOrEqual(to + 1000);
    }
    // The same snapshot, three different random streams.
    expect(new Set(synced.map((s) => s.random)).size).toBe(3);
  });

  it('a snapshot made from another QEMU command line is not used: it is made anew, and the note says why', async () => {
    const slot = bookwormSlot();
    const m = meta(slot);
    const key = { ...m.key, args: [...m.key.args, '-no-hpet'] };
    writeFileSync(join(slot, 'meta.json'), JSON.stringify({ ...m, key, hash: keyHash(key) }));
    const r = await runCli([...SEED.slice(0, 2), '--strategy', 'seed']);
    expect(r.exitCode, r.stderr).toBe(0);
    const rep = report(r.stdout);
    expect(rep.machine.kind !== 'ssh' && rep.machine.snapshot).toMatchObject({ use: 'made', why: 'stale' });
    expect(rep.notes).toContain(`the snapshot of ${rep.kernel.release} was made anew: the QEMU command line changed`);
    expect(meta(slot).hash).toBe(m.hash);
  });

  it('a damaged device state is caught by its checksum: the snapshot is made anew', async () => {
    const slot = bookwormSlot();
    const state = readFileSync(join(slot, 'state'));
    state[state.length >> 1]! ^= 0xff;
    writeFileSync(join(slot, 'state'), state);
    const r = await runCli([...SEED.slice(0, 2), '--strategy', 'seed']);
    expect(r.exitCode, r.stderr).toBe(0);
    const rep = report(r.stdout);
    expect(rep.machine.kind !== 'ssh' && rep.machine.snapshot).toMatchObject({ use: 'made', why: 'corrupt' });
    expect(rep.notes.join('\n')).toMatch(/snapshot of 6\.1\.0-\d+-cloud-amd64 was damaged \(the device state file does not match its checksum\)/);
  });

  it('a snapshot that QEMU cannot restore falls back to booting: same results, the snapshot removed, made again next time', async () => {
    const slot = bookwormSlot();
    // A state QEMU refuses, with a checksum that matches, so only the restore itself can tell.
    const junk = Buffer.from('not a QEMU migration stream\n');
    writeFileSync(join(slot, 'state'), junk);
    const m = meta(slot);
    writeFileSync(join(slot, 'meta.json'), JSON.stringify({ ...m, state: { size: junk.length, sha256: createHash('sha256').update(junk).digest('hex') } }));
    const r = await runCli(SEED);
    expect(r.exitCode, r.stderr).toBe(0);
    const rep = report(r.stdout);
    expect(rep.machine.kind !== 'ssh' && rep.machine.snapshot).toMatchObject({ use: 'failed', restores: 0 });
    expect(rep.machine.kind !== 'ssh' && rep.machine.boots).toBe(1);
    expect(rep.notes.join('\n')).toMatch(/the snapshot of 6\.1\.0-\d+-cloud-amd64 did not restore \(QEMU exited.*\); it was removed/);
    expect(cells(rep)).toEqual(cells(restored));
    expect(readFileSync(rep.artifacts.consoleLog, 'utf8')).toMatch(/mmaplab: job 3 begin/);
    expect(readdirSync(SNAPSHOTS).filter((d) => d === slot.split('/').pop())).toEqual([]);
    const again = report((await runCli([...SEED.slice(0, 2), '--strategy', 'seed'])).stdout);
    expect(again.machine.kind !== 'ssh' && again.machine.snapshot).toMatchObject({ use: 'made', why: 'missing' });
  });

  it('a job that crashes its guest retires it: the jobs before it shared the guest, the job after it gets a fresh one, and no result is touched', async () => {
    const r = await runCli(['run', '--json', ...ONE, '--module-dir', `${DRIVERS}/crashing-strategy`, '--strategy', 'good,crash,other', '--check', 'private,shared,oversize']);
    expect(r.exitCode).toBe(1);
    const rep = report(r.stdout);
    expect(rep.machine.kind !== 'ssh' && rep.machine.snapshot).toMatchObject({ use: 'restored', restores: 2, jobs: 3 });
    expect(rep.machine.kind !== 'ssh' && rep.machine.boots).toBe(0);
    const [good, crash, other] = rep.strategies;
    expect([good!.end, crash!.end, other!.end]).toEqual(['done', 'stalled', 'done']);
    expect(crash!.boot).toBe(good!.boot);
    expect(other!.boot).not.toBe(crash!.boot);
    expect(rep.results.map((x) => `${x.strategy}/${x.check}:${x.outcome.kind}`)).toEqual([
      'good/private:ok', 'good/shared:ok', 'good/oversize:mmap-failed',
      'crash/private:crash', 'crash/shared:not-run', 'crash/oversize:not-run',
      'other/private:ok', 'other/shared:ok', 'other/oversize:mmap-failed',
    ]);
    // The fresh guest never saw the oops: its part of the console has none.
    const log = readFileSync(rep.artifacts.consoleLog, 'utf8');
    const parts = log.split(/^===== mmaplab: /m);
    expect(parts.find((p) => p.startsWith('jobs 1 (good), 2 (crash),'))).toMatch(/BUG:|Oops/);
    const fresh = parts.find((p) => p.startsWith('job 3 (other)'))!;
    expect(fresh).toMatch(/mmaplab: job 3 end/);
    expect(fresh).not.toMatch(/BUG:|Oops/);
  });

  it('a job that leaks (a vmalloc area, reserved pages, a WARNING) retires its guest; a clean driver keeps it', async () => {
    const guests = async (driver: string) => {
      const r = await runCli(['run', '--json', ...ONE, '--module-dir', `${DRIVERS}/${driver}`, '--strategy', 'first,second', '--check', 'shared']);
      const rep = report(r.stdout);
      expect(rep.strategies.map((s) => s.end), `${driver}: ${r.stderr}`).toEqual(['done', 'done']);
      return rep.machine.kind !== 'ssh' && rep.machine.snapshot?.use !== 'off' ? [rep.machine.snapshot!.restores, rep.strategies[0]!.boot === rep.strategies[1]!.boot] : [];
    };
    expect(await guests('vmalloc-leak')).toEqual([2, false]);
    expect(await guests('reserved-pages-freed')).toEqual([2, false]);
    expect(await guests('warn-mmap')).toEqual([2, false]);
    // Any strategy but "crash" is the good one: a driver that cleans up after itself.
    expect(await guests('crashing-strategy')).toEqual([1, true]);
    // A booted guest is judged the same way: the leak costs that boot.
    const booted = report((await runCli(['run', '--json', '--no-snapshot', '--module-dir', `${DRIVERS}/vmalloc-leak`, '--strategy', 'first,second', '--check', 'shared'])).stdout);
    expect(booted.machine.kind !== 'ssh' && booted.machine.boots).toBe(2);
    expect(booted.strategies.map((s) => s.boot)).toEqual([1, 2]);
  });

  it('a guest never serves another driver: a job whose module differs gets a guest of its own, and the same driver shares it again', async () => {
    const out = mkdtempSync(join(tmpdir(), 'mmaplab-two-drivers-'));
    try {
      const lab = await setUpLab(
        { kernel: 'debian:bookworm', flavour: 'cloud-amd64', accel: 'auto', timeoutS: 120, memoryMb: 256, outputDir: out, archiveUri: undefined, securityUri: undefined, refreshKernel: false, guestSlots: new Limiter(1) },
        projectPaths.kernelModule,
        await RunDir.create({ outputDir: out }),
        cacheRoot(),
        [],
      );
      if (lab.kind !== 'ready') throw new Error(lab.error.message);
      // Another driver: the same module with a byte more (another file to the guest, loaded as well).
      const other = join(out, 'other.ko');
      writeFileSync(other, Buffer.concat([readFileSync(lab.module.jobKo), Buffer.from([0])]));
      const job = (id: number, modulePath: string) => labJob({ id, strategy: 'seed', modulePath, moduleName: lab.module.name, moduleParams: ['strategy=seed'], testProgram: lab.testProgram, checks: ['shared'], pages: 16 });
      // Sent at once, so one guest slot serves them in turn.
      const [a, b, c] = await Promise.all([lab.machine.runJob(job(1, lab.module.jobKo)), lab.machine.runJob(job(2, other)), lab.machine.runJob(job(3, other))]);
      await lab.machine.close();
      expect([a.end, b.end, c.end]).toEqual(['done', 'done', 'done']);
      expect(b.timing?.guest).not.toBe(a.timing?.guest);
      expect(c.timing).toMatchObject({ guest: b.timing?.guest, servedBefore: 1, restoreMs: 0 });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('--verbose says where each job\'s time went', async () => {
    const r = await runCli(['run', ...ONE, '--strategy', 'seed,checked', '--check', 'shared', '--verbose']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/where the jobs' time went/);
    expect(r.stderr).toMatch(/^\s+1\s+1\s+\d+ ms\s+\d+ ms\s+\d+ ms\s+\d+ ms\s+\d+ ms\s+\d+ ms\s+\d+ ms  seed$/m);
    // The second job in the guest the first left as it was: no restore.
    expect(r.stderr).toMatch(/^\s+2\s+1\+1\s+0 ms .* checked$/m);
  });
});
