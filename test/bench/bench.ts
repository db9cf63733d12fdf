/**
 * npm run bench: how long `mmaplab run` takes, against a raw QEMU boot of the
 * same kernel and initramfs measured in the same session.
 *
 *   cold      mmaplab run with an empty cache (download, extract, build, KVM probe, boot,
 *             making the snapshot)
 *   warm      mmaplab run with everything cached: restored guests, each serving jobs while they
 *             leave it as it was (N runs)
 *   per-job   mmaplab run --guest-per-job, warm: every job in a guest restored afresh (what
 *             sharing guests saves)
 *   booted    mmaplab run --no-snapshot, warm: one cold boot serves every job
 *   check     mmaplab check on a small driver (misc-device), warm, the driver edited before
 *             each run so the module build is included
 *   raw-job   QEMU alone, same argv, the same jobs appended to the initramfs and run by
 *             init with no host in the loop (the work mmaplab does, minus mmaplab)
 *   raw-boot  QEMU alone, booting to init (the floor)
 * (Raw boots are timed from QEMU's start to the line that says their work is done.)
 *   pvh       raw boots to init of the bzImage and the unpacked vmlinux (PVH) on pc, and of the
 *             vmlinux on microvm, on the five kernels
 *   matrix    mmaplab run --kernel all --jobs 2 (five kernels, warm), interleaved with
 *             the single-kernel warm run it is compared with
 *   sandbox   the build sandbox's cost: the same module built in bubblewrap and unconfined
 *             (in process, the source edited before each build), and mmaplab check with a
 *             rebuild against the same check with --trust-driver, interleaved
 *             (`npm run bench -- --only sandbox` runs this phase alone: sandbox.json, sandbox.md)
 *   grade     mmaplab grade of a class of 50 (twenty correct drivers, the rest each kind of
 *             mistake: SIGBUS under MAP_PRIVATE, byte order, aliasing, compile errors, two
 *             oopses, two hangs, a leak, no driver, a bad archive), warm, --jobs 2, each
 *             submission made unique by a comment; against one warm `check` of a correct
 *             driver measured in the same run (`npm run bench -- --only grade`: grade.json,
 *             grade.md)
 *
 *   watch     check --watch: from the save of a one-file driver to its new verdict, warm, against
 *             a plain warm check of the same edit (`npm run bench -- --only watch`: watch.json,
 *             watch.md)
 *   debug     mmaplab debug, warm (kernel, driver build and, for the first row, the kernel's
 *             symbols and gdb's index of them cached): from the command to gdb's prompt with
 *             the breakpoint at the driver's mmap set (the first command of --gdb-batch), with
 *             and without the kernel's symbols, interleaved (`npm run bench -- --only debug`:
 *             debug.json, debug.md)
 *
 * Figures go to test/bench/results.json and results.md (or --out DIR).
 */
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInitramfs } from '../../dist/guest/initramfs.js';
import { jobPayload, labJob } from '../../dist/guest/job.js';
import { acquireKernel, parseKernelSpec } from '../../dist/kernel/index.js';
import { GUEST_ARCHES } from '../../dist/kernel/arch.js';
import { pvhImage } from '../../dist/kernel/vmlinux.js';
import type { MatrixReport } from '../../dist/model/report.js';
import type { GuestMachine, RunReport } from '../../dist/model/report.js';
import type { JobTiming } from '../../dist/model/timing.js';
import { cacheRoot, PACKAGE_ROOT } from '../../dist/util/paths.js';
import { baseAppend, qemuArgs } from '../../dist/vm/qemu-args.js';
import { bootRecipes, guestSpec } from '../../dist/vm/boot.js';
import { cpioArchive, withParents } from '../../dist/guest/cpio.js';
import { GuestVm } from '../../dist/vm/guest-vm.js';
import { lookupSnapshot, slotDir, snapshotKey } from '../../dist/vm/snapshot.js';
import { qemuInfo } from '../../dist/vm/qemu.js';
import { buildModule } from '../../dist/kbuild/kbuild.js';
import { probeSandbox } from '../../dist/sandbox/policy.js';
import { BwrapSandbox } from '../../dist/sandbox/bwrap.js';
import { run } from '../../dist/util/exec.js';
import { median } from './stats.js';
import { watchMarkdown, watchPhase } from './watch-phase.js';

const BIN = join(PACKAGE_ROOT, 'bin', 'mmaplab.js');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}


async function timed<T>(f: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await f();
  return [(performance.now() - t0) / 1000, v];
}

async function mmaplabRun(env: Record<string, string>, extra: string[] = [], command: 'run' | 'check' = 'run'): Promise<[number, RunReport]> {
  const [s, r] = await timed(() => execa(process.execPath, [BIN, command, '--json', ...extra], { env, reject: false }));
  if (r.exitCode !== 0) throw new Error(`mmaplab ${command} failed (${r.exitCode}): ${r.stderr}`);
  return [s, JSON.parse(r.stdout) as RunReport];
}

/** The issue's targets, as (measured, limit) pairs the report marks met or missed. */
function verdict(measured: number, limit: number): string {
  return measured <= limit ? 'met' : 'missed';
}

/** An aim, met or missed, and by how much. */
function target(measured: number, limit: number, unit: 's' | '×') {
  const by = measured - limit;
  const say = unit === 's' ? `${by.toFixed(2)} s` : `${by.toFixed(2)}×`;
  return { limit, measured, verdict: verdict(measured, limit), missedBy: by > 0 ? by : 0, text: by > 0 ? `missed by ${say} (${(measured / limit).toFixed(1)}× the aim)` : 'met' };
}

/** QEMU alone: the time from its start to the line that says its work is done (it is killed then, as mmaplab kills its guests). */
async function rawQemu(args: string[], socket: string, expect: RegExp, binary = 'qemu-system-x86_64'): Promise<number> {
  // The same device set as mmaplab's guest, so the channel's socket needs a listener.
  const server = createServer((c) => c.on('error', () => {}));
  await new Promise<void>((r) => server.listen(socket, r));
  try {
    const t0 = performance.now();
    const p = execa(binary, args, { reject: false, timeout: 120_000 });
    let out = '';
    let doneAt: number | undefined;
    p.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (doneAt === undefined && expect.test(out)) {
        doneAt = performance.now();
        p.kill('SIGKILL');
      }
    });
    await p;
    if (doneAt === undefined) throw new Error(`raw boot did not do its work:\n${out.slice(-2000)}`);
    return (doneAt - t0) / 1000;
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/** What the timed phases share: the kernel, its initramfs, the raw baseline's initramfs and QEMU spec, check's driver. */
interface Setup {
  base: Record<string, string>;
  runs: number;
  qemu: Awaited<ReturnType<typeof qemuInfo>>;
  kernel: Awaited<ReturnType<typeof acquireKernel>>;
  initramfs: Awaited<ReturnType<typeof buildInitramfs>>;
  first: RunReport;
  tmp: string;
  rawInitrd: string;
  spec: { accel: 'kvm' | 'tcg'; memoryMb: number; kernelImage: string; firmware: string | undefined; channelSocket: string };
  checkDir: string;
  checkSource: string;
}

async function prepare(base: Record<string, string>, runs: number): Promise<Setup> {
  await mmaplabRun(base); // fills the user's cache if it was empty
  const qemu = await qemuInfo();
  const first = (await mmaplabRun(base))[1];
  const kernel = await acquireKernel(parseKernelSpec(first.kernel.spec), { cacheDir: cacheRoot() });
  const initramfs = await buildInitramfs(kernel, cacheRoot());
  // The raw baseline runs the same work: one job per strategy, every check, chained in one init.
  const inGuest = new Set<string>();
  // The module as mmaplab sends it: without debug info.
  const guestModule = join(tmpdir(), `mmaplab-bench-${process.pid}.ko`);
  await execa('strip', ['--strip-debug', '-o', guestModule, first.artifacts.module]);
  const jobs: Buffer[] = [];
  for (const [i, s] of first.strategies.entries()) {
    const job = labJob({ id: i + 1, strategy: s.strategy, modulePath: guestModule, moduleName: first.module.name, moduleParams: [`strategy=${s.strategy}`], testProgram: first.artifacts.testProgram, checks: first.checks, pages: 16 });
    jobs.push(await jobPayload(job, { dir: 'rawjob', inGuest }));
  }
  const tmp = mkdtempSync(join(tmpdir(), 'mmaplab-bench-'));
  const rawInitrd = join(tmp, 'raw.cpio');
  await writeFile(rawInitrd, Buffer.concat([await readFile(initramfs.path), ...jobs]));
  // The raw boots boot what mmaplab boots: the unpacked vmlinux (PVH) where it has one.
  const bootImage = guestMachine(first).bootImage === 'pvh' ? ((await pvhImage(kernel, cacheRoot())) ?? kernel.image) : kernel.image;
  const spec = { accel: guestMachine(first).accel, memoryMb: 256, kernelImage: bootImage, firmware: qemu.firmware, channelSocket: join(tmp, 'jobs.sock') };

  // check's driver: a copy of a small correct one, edited before each run so its module is built every time.
  const checkDir = join(tmp, 'miscmap');
  await mkdir(checkDir);
  const checkSource = await readFile(join(PACKAGE_ROOT, 'test', 'fixtures', 'drivers', 'misc-device', 'miscmap.c'), 'utf8');
  await mmaplabRun(base, ['--no-snapshot']);

  return { base, runs, qemu, kernel, initramfs, first, tmp, rawInitrd, spec, checkDir, checkSource };
}

/** Warm runs restored and booted, check with a rebuild, and the raw boots, interleaved. */
async function interleaved(st: Setup) {
  const { base, runs, first, checkDir, checkSource, spec, rawInitrd, initramfs } = st;
  // TCG timings drift with the host's load: interleave them all so drift hits them alike.
  process.stderr.write(`warm runs (snapshot and booted), checks and raw boots, interleaved, x${runs}...\n`);
  const warm: number[] = [];
  const warmTimings: RunReport['timings'][] = [];
  const perJob: number[] = [];
  const booted: number[] = [];
  const check: number[] = [];
  const checkTimings: CheckTimings[] = [];
  const rawJob: number[] = [];
  const rawBoot: number[] = [];
  let last: RunReport = first;
  for (let i = 0; i < runs; i++) {
    const [s, r] = await mmaplabRun(base);
    if (guestMachine(r).snapshot?.use !== 'restored') throw new Error(`a warm run did not restore its snapshot: ${JSON.stringify(guestMachine(r).snapshot)}`);
    warm.push(s);
    warmTimings.push({ ...r.timings, totalMs: s * 1000 });
    last = r;
    perJob.push((await mmaplabRun(base, ['--guest-per-job']))[0]);
    booted.push((await mmaplabRun(base, ['--no-snapshot']))[0]);
    await writeFile(join(checkDir, 'miscmap.c'), `${checkSource}/* bench run ${i} */\n`);
    const [c, cr] = await mmaplabRun(base, [checkDir], 'check');
    const checked = cr as unknown as { machine?: GuestMachine; timings?: CheckTimings };
    if (checked.machine?.snapshot?.use !== 'restored') throw new Error('a warm check did not restore its snapshot');
    check.push(c);
    if (checked.timings) checkTimings.push({ ...checked.timings, totalMs: c * 1000 });
    rawJob.push(await rawQemu(qemuArgs({ ...spec, initrd: rawInitrd, append: [...baseAppend(), 'mmaplab.raw'] }), spec.channelSocket, /"t":"job-done"/));
    rawBoot.push(await rawQemu(qemuArgs({ ...spec, initrd: initramfs.path, append: [...baseAppend(), 'mmaplab.probe'] }), spec.channelSocket, /probe ok/));
  }

  return { warm, warmTimings, perJob, booted, check, checkTimings, rawJob, rawBoot, last };
}

type CheckTimings = { totalMs: number; kernelMs: number; buildMs: number; jobs: JobTiming[] };

/** Medians of the jobs' phases over every warm run: the jobs that restored their guest, and those a guest served after another. */
function jobPhases(runs: ReadonlyArray<RunReport['timings']>) {
  const jobs = runs.flatMap((t) => t.jobs ?? []);
  const phase = (js: JobTiming[], k: 'restoreMs' | 'startMs' | 'insmodMs' | 'checksMs' | 'rmmodMs' | 'endMs' | 'totalMs') => median(js.map((j) => j[k] ?? 0));
  const of = (js: JobTiming[]) => ({ jobs: js.length, restore: phase(js, 'restoreMs'), start: phase(js, 'startMs'), insmod: phase(js, 'insmodMs'), checks: phase(js, 'checksMs'), rmmod: phase(js, 'rmmodMs'), end: phase(js, 'endMs'), total: phase(js, 'totalMs') });
  return {
    firstInGuest: of(jobs.filter((j) => j.servedBefore === 0)),
    served: of(jobs.filter((j) => j.servedBefore > 0)),
    guestsPerRun: median(runs.map((t) => new Set((t.jobs ?? []).map((j) => j.guest)).size)),
    jobsPerRun: median(runs.map((t) => (t.jobs ?? []).length)),
  };
}

/** The five-kernel matrix against one kernel, interleaved. */
async function matrixPhase(base: Record<string, string>) {
  const matrixRuns = Number(arg('--matrix-runs', '5'));
  process.stderr.write(`matrix (--kernel all --jobs 2) and single-kernel runs, interleaved, x${matrixRuns}...\n`);
  const matrixArgs = ['--kernel', 'all', '--jobs', '2'];
  await mmaplabRun(base, matrixArgs); // fills the cache for every kernel (downloads, build roots)
  const single: number[] = [];
  const matrix: number[] = [];
  let matrixReport: MatrixReport | undefined;
  for (let i = 0; i < matrixRuns; i++) {
    single.push((await mmaplabRun(base))[0]);
    const [s, r] = await mmaplabRun(base, matrixArgs);
    matrix.push(s);
    matrixReport = r as unknown as MatrixReport;
  }
  return { matrixRuns, single, matrix, matrixReport };
}

/** Raw boots to init of every kernel three ways. */
async function bootWays(qemu: Setup['qemu'], accel: Setup['spec']['accel']) {
  const spec = { accel };
  // What booting the unpacked vmlinux (PVH) saves against the bzImage, and what microvm would save
  // against pc (raw boots to init, which need no virtio device), on every kernel, interleaved.
  process.stderr.write('raw boots to init: bzImage, vmlinux (PVH) on pc, vmlinux on microvm, on five kernels...\n');
  const pvh: Array<{ release: string; bzImage: number[]; vmlinux: number[]; microvm: number[] }> = [];
  for (const s of ['debian:bullseye', 'debian:bookworm', 'debian:bookworm-backports', 'debian:trixie', 'debian:sid']) {
    const k = await acquireKernel(parseKernelSpec(s), { cacheDir: cacheRoot() });
    const vmlinux = await pvhImage(k, cacheRoot());
    if (!vmlinux) continue;
    const ir = await buildInitramfs(k, cacheRoot());
    const row = { release: k.release, bzImage: [] as number[], vmlinux: [] as number[], microvm: [] as number[] };
    const socketDir = mkdtempSync(join(tmpdir(), 'mmaplab-bench-pvh-'));
    for (let i = 0; i < 3; i++) {
      for (const [name, image, machine] of [['bzImage', k.image, 'pc'], ['vmlinux', vmlinux, 'pc'], ['microvm', vmlinux, 'microvm']] as const) {
        const sock = join(socketDir, 'jobs.sock');
        const recipe = guestSpec(qemu, spec.accel, { machine, image }, ir.path, 256);
        row[name].push(await rawQemu(qemuArgs({ ...recipe, channelSocket: sock, append: [...recipe.append, 'mmaplab.probe'] }), sock, /probe ok/));
      }
    }
    rmSync(socketDir, { recursive: true, force: true });
    pvh.push(row);
  }

  return pvh;
}

/**
 * Each architecture's guest: warm runs of the whole grid (`run --arch X`,
 * restored from its snapshot) against a raw QEMU boot to init of the same
 * kernel, the same way mmaplab boots it, interleaved in the same run.
 */
async function archPhase(base: Record<string, string>, runs: number) {
  const rows = [];
  for (const arch of GUEST_ARCHES) {
    process.stderr.write(`arch ${arch}: warm runs of the grid against a raw boot of the same kernel, x${runs}...\n`);
    await mmaplabRun(base, ['--arch', arch]); // fills the cache and makes the snapshot
    const first = (await mmaplabRun(base, ['--arch', arch]))[1];
    const kernel = await acquireKernel(parseKernelSpec(first.kernel.spec, first.kernel.flavour, arch), { cacheDir: cacheRoot() });
    const qemu = await qemuInfo(arch);
    const ir = await buildInitramfs(kernel, cacheRoot());
    const m = guestMachine(first);
    const image = m.bootImage === 'pvh' ? ((await pvhImage(kernel, cacheRoot())) ?? kernel.image) : kernel.image;
    const dir = mkdtempSync(join(tmpdir(), 'mmaplab-bench-arch-'));
    const sock = join(dir, 'jobs.sock');
    const warm: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < runs; i++) {
      warm.push((await mmaplabRun(base, ['--arch', arch]))[0]);
      const recipe = guestSpec(qemu, m.accel, { machine: m.machineType ?? 'pc', image }, ir.path, 256);
      raw.push(await rawQemu(qemuArgs({ ...recipe, channelSocket: sock, append: [...recipe.append, 'mmaplab.probe'] }), sock, /probe ok/, qemu.binary));
    }
    rmSync(dir, { recursive: true, force: true });
    rows.push({ arch, release: kernel.release, accel: m.accel, machine: m.machineType ?? 'pc', warmS: median(warm), rawBootS: median(raw), ratio: median(warm) / median(raw), warm, raw });
  }
  return { runs, host: cpus()[0]?.model ?? 'unknown', rows };
}

function archMarkdown(x: Awaited<ReturnType<typeof archPhase>>): string {
  return [
    `Warm \`mmaplab run --arch X --json\` (the whole grid: 8 strategies x 9 checks, restored from the kernel's snapshot) against a raw QEMU boot to init of the same kernel, the same machine and image, interleaved; medians of ${x.runs}; ${x.host}.`,
    '',
    '| arch | kernel | accel, machine | warm run | raw boot to init | ratio |',
    '|---|---|---|---|---|---|',
    ...x.rows.map((r) => `| ${r.arch} | ${r.release} | ${r.accel}, ${r.machine} | ${r.warmS.toFixed(2)} s | ${r.rawBootS.toFixed(2)} s | ${r.ratio.toFixed(2)}× |`),
    '',
  ].join('\n');
}

/** Where a restored guest's time goes: the restore with its SYNC, then a job that does nothing. */
async function restoreAnatomy(st: Setup) {
  const { qemu, kernel, initramfs, first, runs, tmp } = st;
  process.stderr.write('restores of the snapshot with an empty job, x9...\n');
  const anatomy = { restore: [] as number[], emptyJob: [] as number[] };
  {
    const withVmlinux = { ...kernel, vmlinux: await pvhImage(kernel, cacheRoot()) };
    const recipe = (await bootRecipes(withVmlinux, qemu))[0]!;
    const bootSpec = guestSpec(qemu, guestMachine(first).accel, recipe, initramfs.path, 256);
    const slot = slotDir(cacheRoot(), kernel.release, bootSpec);
    const found = await lookupSnapshot(slot, await snapshotKey(bootSpec, qemu));
    if (found.kind !== 'ok') throw new Error(`no usable snapshot for the anatomy (${found.kind})`);
    const empty = cpioArchive(withParents([{ type: 'file', path: 'job-1/run.sh', data: Buffer.from('true\n'), mode: 0o755 }]));
    for (let i = 0; i < runs; i++) {
      const [rs, r] = await timed(() => GuestVm.restore({ ...bootSpec, ram: { path: join(slot, 'ram'), share: false } }, join(slot, 'state'), { consoleLog: join(tmp, 'anatomy.log'), bootTimeoutMs: 20_000 }));
      if (r.kind !== 'ready') throw new Error(`a restore failed: ${r.kind}`);
      const [js, j] = await timed(() => r.vm.runJob(1, empty, 20_000));
      await r.vm.kill();
      if (j.kind !== 'done') throw new Error(`the empty job ended ${j.kind}`);
      anatomy.restore.push(rs);
      anatomy.emptyJob.push(js);
    }
  }
  return anatomy;
}

type Phases = Awaited<ReturnType<typeof interleaved>> & Awaited<ReturnType<typeof matrixPhase>> & { cold: number; coldReport: RunReport; runs: number; qemu: Setup['qemu']; pvh: Awaited<ReturnType<typeof bootWays>>; anatomy: Awaited<ReturnType<typeof restoreAnatomy>> };

function summarise(p: Phases) {
  const { warm, warmTimings, perJob, booted, check, checkTimings, rawJob, rawBoot, last, cold, coldReport, runs, qemu, pvh, anatomy, matrixRuns, single, matrix, matrixReport } = p;
  const m = { warm: median(warm), perJob: median(perJob), booted: median(booted), check: median(check), rawJob: median(rawJob), rawBoot: median(rawBoot) };
  const cm = (f: (t: CheckTimings) => number) => median(checkTimings.map(f));
  return {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', accel: guestMachine(last).accel, qemu: qemu.version, kernel: last.kernel.release, bootImage: guestMachine(last).bootImage ?? 'bzimage' },
    runs,
    seconds: { cold, warm, perJob, booted, check, rawJob, rawBoot },
    medians: m,
    ratios: { warmOverRawJob: m.warm / m.rawJob, warmOverRawBoot: m.warm / m.rawBoot, perJobOverWarm: m.perJob / m.warm, bootedOverRawJob: m.booted / m.rawJob, coldOverWarm: cold / m.warm },
    // The aims (issue 16): warm run <= 0.6 s and <= 0.35x the raw boot to init; check with a rebuild <= 1.5 s; matrix <= 3 s; cold <= 30 s.
    targets: {
      warm: target(m.warm, 0.6, 's'),
      warmOverRawBoot: target(m.warm / m.rawBoot, 0.35, '×'),
      check: target(m.check, 1.5, 's'),
      matrix: target(median(matrix), 3, 's'),
      cold: target(cold, 30, 's'),
    },
    jobPhasesMs: jobPhases(warmTimings),
    // check's time (medians, ms): the build (with the restore of its guest beside it), the job, the rest (node, kernel lookup, report).
    checkSplitMs: { wall: cm((t) => t.totalMs), kernel: cm((t) => t.kernelMs), build: cm((t) => t.buildMs), restore: cm((t) => t.jobs[0]?.restoreMs ?? 0), job: cm((t) => t.jobs[0]?.totalMs ?? 0), rest: cm((t) => t.totalMs - t.kernelMs - t.buildMs - (t.jobs[0]?.totalMs ?? 0)) },
    coldBreakdownMs: coldReport.timings,
    // Where a warm run's wall time goes (medians, ms): the process (node start, cache
    // checks, exit), QEMU and firmware before the guest's clock, the guest to ready, the job.
    warmBreakdownMs: {
      wall: median(warmTimings.map((t) => t.totalMs)),
      firstRestore: median(warmTimings.map((t) => t.bootMs)),
      job: median(warmTimings.map((t) => t.jobMs)),
      outsideBootAndJob: median(warmTimings.map((t) => t.totalMs - t.bootMs - t.jobMs)),
    },
    anatomy: { seconds: anatomy, medians: { restore: median(anatomy.restore), emptyJob: median(anatomy.emptyJob) } },
    best: { warm: Math.min(...warm), perJob: Math.min(...perJob), booted: Math.min(...booted), check: Math.min(...check), rawJob: Math.min(...rawJob), rawBoot: Math.min(...rawBoot) },
    pvh: pvh.map((p) => ({ ...p, medians: { bzImage: median(p.bzImage), vmlinux: median(p.vmlinux), microvm: median(p.microvm) } })),
    matrix: {
      runs: matrixRuns,
      jobs: 2,
      kernels: (matrixReport?.kernels ?? []).map((k) => ({ spec: k.spec, release: k.kind === 'run' ? k.report.kernel.release : k.kind, status: k.kind === 'run' ? k.report.status : 'error' })),
      seconds: { single, matrix },
      medians: { single: median(single), matrix: median(matrix) },
      ratio: median(matrix) / median(single),
    },
  };
}

function markdown(results: ReturnType<typeof summarise>): string {
  const { medians: m, runs } = results;
  const { coldBreakdownMs: coldTimings } = results;
  const cold = results.seconds.cold;
  const matrixRuns = results.matrix.runs;
  const anatomy = results.anatomy.seconds;
  const f = (x: number) => `${x.toFixed(2)} s`;
  const t = results.targets;
  const ph = results.jobPhasesMs;
  const cs = results.checkSplitMs;
  const jobs = ph.jobsPerRun;
  return [
    `# mmaplab benchmark (${results.date.slice(0, 10)})`,
    '',
    `${results.machine.cpus} cores (${results.machine.cpu}), ${results.machine.accel.toUpperCase()}, QEMU ${results.machine.qemu}, kernel ${results.machine.kernel} (${results.machine.bootImage === 'pvh' ? 'vmlinux through PVH' : 'bzImage'}, mmaplab and the raw boots alike); medians of ${runs} runs.`,
    '',
    '| what | wall time | × raw boot | × raw job boot | aim |',
    '|---|---|---|---|---|',
    `| raw QEMU boot to init | ${f(m.rawBoot)} | 1.00 | | |`,
    `| raw QEMU boot running the same jobs in init (baseline) | ${f(m.rawJob)} | ${(m.rawJob / m.rawBoot).toFixed(2)} | 1.00 | |`,
    `| \`mmaplab run\` (the whole grid, ${jobs} jobs), warm: restored guests, each serving jobs while they leave it as it was | **${f(m.warm)}** | **${results.ratios.warmOverRawBoot.toFixed(2)}** | ${results.ratios.warmOverRawJob.toFixed(2)} | ≤ 0.6 s: ${t.warm.text}; ≤ 0.35× the raw boot: ${t.warmOverRawBoot.text} |`,
    `| \`mmaplab run --guest-per-job\`, warm (every job in a guest restored afresh) | ${f(m.perJob)} | ${(m.perJob / m.rawBoot).toFixed(2)} | ${(m.perJob / m.rawJob).toFixed(2)} | |`,
    `| \`mmaplab run --no-snapshot\`, warm (one boot serves the ${jobs} jobs) | ${f(m.booted)} | ${(m.booted / m.rawBoot).toFixed(2)} | ${results.ratios.bootedOverRawJob.toFixed(2)} | |`,
    `| \`mmaplab check\` on a small driver (misc-device), warm, module rebuilt each run | **${f(m.check)}** | ${(m.check / m.rawBoot).toFixed(2)} | | ≤ 1.5 s: ${t.check.text} |`,
    `| \`mmaplab run\`, cold (empty cache: fetch, build, KVM probe, boot, snapshot) | ${f(cold)} | ${(cold / m.rawBoot).toFixed(1)} | ${(cold / m.rawJob).toFixed(1)} | ≤ 30 s: ${t.cold.text} |`,
    '',
    `Best of ${runs} (the least disturbed runs): raw boot ${f(results.best.rawBoot)}, raw job boot ${f(results.best.rawJob)}, warm run ${f(results.best.warm)}, --guest-per-job ${f(results.best.perJob)}, --no-snapshot ${f(results.best.booted)}, check ${f(results.best.check)}.`,
    '',
    `Where a warm run's jobs spend their time (host clock, from the records' arrival; medians over the ${runs} warm runs, ms; ${ph.guestsPerRun} guests served the ${ph.jobsPerRun} jobs of a run):`,
    '',
    '| job | n | restore | start | insmod | checks | rmmod | end | total |',
    '|---|---|---|---|---|---|---|---|---|',
    ...(['firstInGuest', 'served'] as const).map((k) => {
      const x = ph[k];
      return `| ${k === 'firstInGuest' ? 'the first in its guest' : 'served by a guest after another job'} | ${x.jobs} | ${x.restore.toFixed(0)} | ${x.start.toFixed(0)} | ${x.insmod.toFixed(0)} | ${x.checks.toFixed(0)} | ${x.rmmod.toFixed(0)} | ${x.end.toFixed(0)} | ${x.total.toFixed(0)} |`;
    }),
    '',
    `check's time (medians, ms): build ${cs.build.toFixed(0)} (its guest restored beside it in ${cs.restore.toFixed(0)}), the job ${cs.job.toFixed(0)}, kernel lookup ${cs.kernel.toFixed(0)}, the rest (node, the report) ${cs.rest.toFixed(0)}; wall ${cs.wall.toFixed(0)}.`,
    '',
    `A restored guest (medians of ${runs}): the restore with its SYNC (clock and RNG) ${f(median(anatomy.restore))}, then a job that does nothing ${f(median(anatomy.emptyJob))}.`,
    '',
    `Warm run breakdown (medians): the first restore ${(results.warmBreakdownMs.firstRestore / 1000).toFixed(2)} s, restores and jobs ${(results.warmBreakdownMs.job / 1000).toFixed(2)} s, the rest (node, cache checks, exit) ${(results.warmBreakdownMs.outsideBootAndJob / 1000).toFixed(2)} s.`,
    '',
    `Cold run breakdown: kernel ${(coldTimings.kernelMs / 1000).toFixed(1)} s, build ${(coldTimings.buildMs / 1000).toFixed(1)} s, boot ${(coldTimings.bootMs / 1000).toFixed(1)} s, job ${(coldTimings.jobMs / 1000).toFixed(1)} s.`,
    '',
    `## Kernel matrix (medians of ${matrixRuns}, interleaved)`,
    '',
    '| what | wall time | × one kernel | aim |',
    '|---|---|---|---|',
    `| \`mmaplab run\` on ${results.machine.kernel} (the whole grid), warm | ${f(results.matrix.medians.single)} | 1.00 | |`,
    `| \`mmaplab run --kernel all --jobs 2\` (${results.matrix.kernels.length} kernels, the whole grid on each), warm | **${f(results.matrix.medians.matrix)}** | ${results.matrix.ratio.toFixed(2)} | ≤ 3 s: ${t.matrix.text} |`,
    '',
    `Kernels: ${results.matrix.kernels.map((k) => `${k.spec} ${k.release} (${k.status})`).join(', ')}.`,
    '',
    '## Ways to boot: raw boots to init (medians of 3, interleaved)',
    '',
    'pc with the bzImage, pc with the unpacked vmlinux (PVH; what mmaplab boots), and microvm without ACPI with the vmlinux (a boot to init only: Debian\'s kernels find no virtio device on it, see README).',
    '',
    '| kernel | pc, bzImage | pc, vmlinux (PVH) | microvm, vmlinux |',
    '|---|---|---|---|',
    ...results.pvh.map((p) => `| ${p.release} | ${f(p.medians.bzImage)} | ${f(p.medians.vmlinux)} | ${f(p.medians.microvm)} |`),
    '',
  ].join('\n');
}

/**
 * What the sandbox costs a build, and a check with a rebuild: the same work
 * sandboxed and unconfined (--trust-driver), interleaved, the driver edited
 * before every build so nothing comes from the cache.
 */
async function sandboxCost(base: Record<string, string>, runs: number) {
  process.stderr.write(`sandbox: builds and checks, sandboxed and trusted, interleaved, x${runs}...\n`);
  const sandbox = await probeSandbox();
  if (!(sandbox instanceof BwrapSandbox)) throw new Error(`no sandbox on this machine: ${sandbox.reason}`);
  const kernel = await acquireKernel(parseKernelSpec('debian:bookworm'), { cacheDir: cacheRoot() });
  const tmp = mkdtempSync(join(tmpdir(), 'mmaplab-bench-sandbox-'));
  const dir = join(tmp, 'miscmap');
  await mkdir(dir);
  const source = await readFile(join(PACKAGE_ROOT, 'test', 'fixtures', 'drivers', 'misc-device', 'miscmap.c'), 'utf8');
  let edit = 0;
  const fresh = () => writeFile(join(dir, 'miscmap.c'), `${source}/* bench edit ${edit++} ${process.pid} */\n`);
  const build = async (sandboxed: boolean) => {
    await fresh();
    const [s, b] = await timed(() => buildModule({ source: dir, kernel, cacheDir: cacheRoot(), logDir: tmp, confinement: sandboxed ? { kind: 'sandbox', sandbox } : { kind: 'unconfined', isolation: { kind: 'trusted', setBy: 'bench' } } }));
    if (b.cached) throw new Error('a bench build came from the cache');
    return s;
  };
  const check = async (extra: string[]) => {
    await fresh();
    return (await mmaplabRun(base, [dir, ...extra], 'check'))[0];
  };
  await build(true); // the kernel's headers into the page cache
  const r = { buildSandboxed: [] as number[], buildTrusted: [] as number[], checkSandboxed: [] as number[], checkTrusted: [] as number[], startSandboxed: [] as number[], startPlain: [] as number[] };
  for (let i = 0; i < runs; i++) {
    // Which goes first alternates, so a warmer page cache favours neither.
    const order = i % 2 === 0 ? [true, false] : [false, true];
    for (const sandboxed of order) (sandboxed ? r.buildSandboxed : r.buildTrusted).push(await build(sandboxed));
    for (const sandboxed of order) (sandboxed ? r.checkSandboxed : r.checkTrusted).push(await check(sandboxed ? [] : ['--trust-driver']));
  }
  // The sandbox's fixed cost, apart from the build's noise: `true` in it against `true` alone.
  for (let i = 0; i < 5 * runs; i++) {
    r.startSandboxed.push((await timed(() => sandbox.run(['true'], { readOnly: [], writable: [], cwd: '/' })))[0]);
    r.startPlain.push((await timed(() => run('true', [])))[0]);
  }
  rmSync(tmp, { recursive: true, force: true });
  const m = { buildSandboxed: median(r.buildSandboxed), buildTrusted: median(r.buildTrusted), checkSandboxed: median(r.checkSandboxed), checkTrusted: median(r.checkTrusted), startSandboxed: median(r.startSandboxed), startPlain: median(r.startPlain) };
  const cost = { build: m.buildSandboxed - m.buildTrusted, check: m.checkSandboxed - m.checkTrusted, start: m.startSandboxed - m.startPlain };
  return { runs, kernel: kernel.release, sandbox: sandbox.isolation(), seconds: r, medians: m, cost, ratios: { build: m.buildSandboxed / m.buildTrusted, check: m.checkSandboxed / m.checkTrusted }, target: { limit: 0.1, measured: cost.check, verdict: verdict(cost.check, 0.1) } };
}

function sandboxMarkdown(x: Awaited<ReturnType<typeof sandboxCost>>): string {
  const f = (s: number) => (s < 0.1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(2)} s`);
  const d = (s: number) => `${s >= 0 ? '+' : ''}${(s * 1000).toFixed(0)} ms`;
  return [
    `## The build sandbox (medians of ${x.runs}, interleaved; ${x.kernel}, ${x.sandbox.kind === 'sandbox' ? x.sandbox.tool : ''})`,
    '',
    '| what | sandboxed | trusted (`--trust-driver`) | cost | × | aim |',
    '|---|---|---|---|---|---|',
    `| a process started in the sandbox (\`true\`), against started alone; ${x.seconds.startSandboxed.length} each | ${f(x.medians.startSandboxed)} | ${f(x.medians.startPlain)} | ${d(x.cost.start)} | | |`,
    `| the module build alone (misc-device, edited before each build; make and strip, each in the sandbox) | ${f(x.medians.buildSandboxed)} | ${f(x.medians.buildTrusted)} | ${d(x.cost.build)} | ${x.ratios.build.toFixed(3)} | |`,
    `| \`mmaplab check\` with a rebuild, warm | ${f(x.medians.checkSandboxed)} | ${f(x.medians.checkTrusted)} | **${d(x.cost.check)}** | ${x.ratios.check.toFixed(3)} | ≤ 0.1 s: ${x.target.verdict} |`,
    '',
    'Which of the two goes first alternates from run to run. The build and the check vary by more than the sandbox costs (one module build on 2 cores: ±0.2 s between runs); the first row is its fixed cost per process started (a build starts two).',
    '',
  ].join('\n');
}

/** One mmaplab debug session, timed from its start to gdb's prompt (a marker echoed by the batch's first command), to the banner, and to its end. */
async function debugSession(base: Record<string, string>, commands: string, extra: string[]): Promise<{ prompt: number; loaded: number; total: number }> {
  const t0 = performance.now();
  const at: { prompt?: number; loaded?: number } = {};
  const p = execa(process.execPath, [BIN, 'debug', '--gdb-batch', commands, ...extra], { env: base, reject: false, buffer: false });
  let out = '';
  let err = '';
  p.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    if (at.prompt === undefined && out.includes('MMAPLAB-GDB-PROMPT')) at.prompt = (performance.now() - t0) / 1000;
  });
  p.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    if (at.loaded === undefined && / is loaded in /.test(err)) at.loaded = (performance.now() - t0) / 1000;
  });
  const r = await p;
  const total = (performance.now() - t0) / 1000;
  if (r.exitCode !== 0 || at.prompt === undefined || at.loaded === undefined || !/^Breakpoint 1 at /m.test(out)) throw new Error(`a debug session failed (exit ${r.exitCode}): ${err.slice(-2000)}${out.slice(-2000)}`);
  return { prompt: at.prompt, loaded: at.loaded, total };
}

/** mmaplab debug, warm: to gdb's prompt with the breakpoint set, with the kernel's symbols (cached) and without, interleaved. */
async function debugPhase(base: Record<string, string>, runs: number) {
  process.stderr.write(`debug: mmaplab debug to gdb's prompt, with and without the kernel's symbols, interleaved, x${runs}...\n`);
  const loadBefore = loadavg()[0]!;
  const tmp = mkdtempSync(join(tmpdir(), 'mmaplab-bench-debug-'));
  const commands = join(tmp, 'prompt.gdb');
  await writeFile(commands, 'echo MMAPLAB-GDB-PROMPT\\n\ninfo breakpoints\ndetach\n');
  // Warm: the kernel's symbols fetched and gdb's index of them made, the driver built.
  await debugSession(base, commands, []);
  await debugSession(base, commands, ['--no-kernel-symbols']);
  const r = { withSymbols: [] as Array<{ prompt: number; loaded: number; total: number }>, moduleOnly: [] as Array<{ prompt: number; loaded: number; total: number }> };
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? [true, false] : [false, true];
    for (const symbols of order) (symbols ? r.withSymbols : r.moduleOnly).push(await debugSession(base, commands, symbols ? [] : ['--no-kernel-symbols']));
  }
  rmSync(tmp, { recursive: true, force: true });
  const med = (xs: Array<{ prompt: number; loaded: number; total: number }>) => ({ prompt: median(xs.map((x) => x.prompt)), loaded: median(xs.map((x) => x.loaded)), total: median(xs.map((x) => x.total)) });
  const m = { withSymbols: med(r.withSymbols), moduleOnly: med(r.moduleOnly) };
  const best = { withSymbols: Math.min(...r.withSymbols.map((x) => x.prompt)), moduleOnly: Math.min(...r.moduleOnly.map((x) => x.prompt)) };
  // What else ran on this machine meanwhile (TCG's boot is CPU-bound: other work on its cores shows in every figure).
  const load = { before: loadBefore, after: loadavg()[0]! };
  return { runs, accel: base.MMAPLAB_ACCEL ?? 'auto', cores: cpus().length, load, seconds: r, medians: m, best, target: { limit: 5, measured: m.withSymbols.prompt, verdict: verdict(m.withSymbols.prompt, 5) } };
}

function debugMarkdown(x: Awaited<ReturnType<typeof debugPhase>>): string {
  const f = (s: number) => `${s.toFixed(2)} s`;
  return [
    `## mmaplab debug, warm (medians of ${x.runs}, interleaved)`,
    '',
    "| what | to the driver loaded (banner) | to gdb's prompt, breakpoint set | whole session (to the guest off) | aim |",
    '|---|---|---|---|---|',
    `| \`mmaplab debug\` (the kernel's symbols cached, gdb's index of them made) | ${f(x.medians.withSymbols.loaded)} | **${f(x.medians.withSymbols.prompt)}** | ${f(x.medians.withSymbols.total)} | ≤ 5 s: ${x.target.verdict} |`,
    `| \`mmaplab debug --no-kernel-symbols\` | ${f(x.medians.moduleOnly.loaded)} | ${f(x.medians.moduleOnly.prompt)} | ${f(x.medians.moduleOnly.total)} | |`,
    '',
    `Fastest to the prompt: ${f(x.best.withSymbols)} with the kernel's symbols, ${f(x.best.moduleOnly)} without. ${x.cores} cores, ${x.accel === 'auto' ? 'the accelerator mmaplab chose' : x.accel}; load average ${x.load.before.toFixed(1)} before, ${x.load.after.toFixed(1)} after (a load above the core count means other work competed with the guest's boot).`,
    '',
    "The driver loaded means the guest booted (KASLR off, so never the snapshot) and the job that loads the driver and reads its sections ended; gdb's prompt is its first --gdb-batch command, run once mmaplab's script has loaded the symbols, added the module at its sections, set the breakpoint and connected.",
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const runs = Number(arg('--runs', '9'));
  const out = arg('--out', join(PACKAGE_ROOT, 'test', 'bench'));
  const base = { ...process.env, NO_COLOR: '1' } as Record<string, string>;
  const state = mkdtempSync(join(tmpdir(), 'mmaplab-bench-state-'));
  base.MMAPLAB_STATE_DIR = state;
  // One phase alone: its own json and md files.
  const only: Record<string, { title: string; run: () => Promise<object>; md: (x: never) => string }> = {
    grade: { title: 'grading a class', run: () => gradePhase(base, Number(arg('--runs', '3'))), md: gradeMarkdown },
    sandbox: { title: 'the build sandbox', run: () => sandboxCost(base, runs), md: sandboxMarkdown },
    watch: { title: 'the watch loop', run: () => watchPhase(base, Number(arg('--runs', '5'))), md: watchMarkdown },
    debug: { title: 'mmaplab debug', run: () => debugPhase(base, Number(arg('--runs', '5'))), md: debugMarkdown },
    arch: { title: 'guests of each architecture', run: () => archPhase(base, Number(arg('--runs', '5'))), md: archMarkdown },
  };
  const phase = only[arg('--only', '')];
  if (phase) {
    const x = await phase.run();
    rmSync(state, { recursive: true, force: true });
    await mkdir(out, { recursive: true });
    const name = arg('--only', '');
    await writeFile(join(out, `${name}.json`), `${JSON.stringify({ date: new Date().toISOString(), ...x }, null, 2)}\n`);
    const md = `# mmaplab benchmark: ${phase.title} (${new Date().toISOString().slice(0, 10)})\n\n${phase.md(x as never)}`;
    await writeFile(join(out, `${name}.md`), md);
    process.stdout.write(md);
    return;
  }
  process.stderr.write('cold run (empty cache)...\n');
  const coldCache = mkdtempSync(join(tmpdir(), 'mmaplab-bench-cache-'));
  const [cold, coldReport] = await mmaplabRun({ ...base, MMAPLAB_CACHE_DIR: coldCache });
  rmSync(coldCache, { recursive: true, force: true });

  const st = await prepare(base, runs);
  const warmPhase = await interleaved(st);
  const matrixResults = await matrixPhase(base);
  const sandbox = await sandboxCost(base, runs);
  const grade = await gradePhase(base, 3);
  const watch = await watchPhase(base, 5);
  const debug = await debugPhase(base, 5);
  rmSync(state, { recursive: true, force: true });
  const pvh = await bootWays(st.qemu, st.spec.accel);
  const anatomy = await restoreAnatomy(st);
  rmSync(st.tmp, { recursive: true, force: true });
  const results = summarise({ ...warmPhase, ...matrixResults, cold, coldReport, runs, qemu: st.qemu, pvh, anatomy });
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'results.json'), `${JSON.stringify({ ...results, sandbox, grade, watch, debug }, null, 2)}
`);
  const md = `${markdown(results)}
${sandboxMarkdown(sandbox)}
${gradeMarkdown(grade)}
${watchMarkdown(watch)}
${debugMarkdown(debug)}`;
  await writeFile(join(out, 'results.md'), md);
  process.stdout.write(md);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});

/** The class of 50: [kind, fixture folder under test/fixtures, how many]. */
const CLASS_OF_50: ReadonlyArray<[string, string, number]> = [
  ['correct', 'students/lab-vmalloc', 5],
  ['correct', 'students/lab-vmmap-layout', 5],
  ['correct', 'drivers/misc-device', 5],
  ['correct', 'students/lab-kmmap-fixed-major', 5],
  ['SIGBUS under MAP_PRIVATE', 'students/vmalloc-per-page', 5],
  ['wrong byte order', 'students/wrong-byte-order', 4],
  ['aliasing', 'students/same-page-2', 2],
  ['aliasing', 'drivers/page-zero', 2],
  ['read() ignores the offset', 'students/read-ignores-offset', 2],
  ['leak', 'drivers/vmalloc-leak', 3],
  ['compile error', 'drivers/compile-error', 3],
  ['compile error', 'students/int-read-write-32bit', 2],
  ['oops', 'students/oops-in-mmap-2', 1],
  ['oops', 'drivers/null-deref-mmap', 1],
  ['hang', 'students/loop-in-init', 1],
  ['hang', 'drivers/endless-loop-mmap', 1],
  ['no driver', '', 2],
  ['bad archive', '', 1],
];

/** The class folder: each submission a copy of its fixture with a comment of its own, so no two share a cache key. */
async function makeClass(dir: string): Promise<Map<string, string>> {
  const kinds = new Map<string, string>();
  let n = 0;
  for (const [kind, fixture, count] of CLASS_OF_50) {
    for (let i = 0; i < count; i++) {
      const slug = `student-${String(++n).padStart(2, '0')}`;
      kinds.set(slug, kind);
      const to = join(dir, slug);
      if (kind === 'bad archive') {
        await writeFile(join(dir, `${slug}.zip`), 'PK\u0003\u0004 cut short');
        continue;
      }
      await mkdir(to);
      if (!fixture) {
        await writeFile(join(to, 'notes.txt'), 'sorry\n');
        continue;
      }
      await execa('cp', ['-r', `${join(PACKAGE_ROOT, 'test', 'fixtures', fixture)}/.`, to]);
      const { stdout } = await execa('find', [to, '-name', '*.c', '-not', '-path', '*/test/*']);
      for (const c of stdout.split('\n').filter(Boolean)) await writeFile(c, `${await readFile(c, 'utf8')}\n/* ${slug} */\n`);
    }
  }
  return kinds;
}

interface GradeDoc {
  submissions: Array<{ slug: string; status: string; score: number; durationMs: number }>;
}

async function gradePhase(base: Record<string, string>, runs: number) {
  process.stderr.write(`grade: a class of 50, warm, --jobs 2, x${runs}, interleaved with a warm check...\n`);
  const tmp = mkdtempSync(join(tmpdir(), 'mmaplab-bench-grade-'));
  const folder = join(tmp, 'class');
  await mkdir(folder);
  const kinds = await makeClass(folder);
  const walls: number[] = [];
  const checks: number[] = [];
  let last: GradeDoc | undefined;
  for (let i = 0; i < runs; i++) {
    // A state of its own each time: nothing of the class is cached.
    const env = { ...base, MMAPLAB_STATE_DIR: mkdtempSync(join(tmpdir(), 'mmaplab-bench-grade-state-')) };
    checks.push((await mmaplabRun(env, [join(PACKAGE_ROOT, 'test', 'fixtures', 'students', 'lab-vmalloc')], 'check'))[0]);
    const [s, r] = await timed(() => execa(process.execPath, [BIN, 'grade', folder, '--jobs', '2', '--json'], { env, reject: false }));
    if (r.exitCode !== 0) throw new Error(`grade failed (${r.exitCode}): ${r.stderr.slice(-400)}`);
    walls.push(s);
    last = JSON.parse(r.stdout) as GradeDoc;
    rmSync(env.MMAPLAB_STATE_DIR, { recursive: true, force: true });
  }
  rmSync(tmp, { recursive: true, force: true });
  const byKind = new Map<string, number[]>();
  for (const sub of last!.submissions) byKind.set(kinds.get(sub.slug)!, [...(byKind.get(kinds.get(sub.slug)!) ?? []), sub.durationMs / 1000]);
  const wall = median(walls);
  const check = median(checks);
  return {
    runs,
    submissions: last!.submissions.length,
    walls,
    checks,
    wall,
    check,
    perSubmission: wall / last!.submissions.length,
    /** The class against checking its 50 one after another at a correct driver's pace. */
    ratioToChecks: wall / (check * last!.submissions.length),
    kinds: [...byKind].map(([kind, secs]) => ({ kind, count: secs.length, median: median(secs), max: Math.max(...secs), total: secs.reduce((a, b) => a + b, 0) })),
    target: target(wall, 60, 's'),
  };
}

function gradeMarkdown(x: Awaited<ReturnType<typeof gradePhase>>): string {
  return [
    `## Grading a class (${x.submissions} submissions, warm, --jobs 2; medians of ${x.runs})`,
    '',
    `| what | seconds | aim |`,
    '|---|---|---|',
    `| \`mmaplab grade\` of the class, wall (runs: ${x.walls.map((w) => w.toFixed(1)).join(', ')}) | **${x.wall.toFixed(1)}** | ≤ 60 s: ${x.target.text} |`,
    `| per submission (wall / ${x.submissions}) | ${x.perSubmission.toFixed(2)} | |`,
    `| one warm \`mmaplab check\` of a correct driver, in the same run (the baseline) | ${x.check.toFixed(2)} | |`,
    `| the class against ${x.submissions} such checks one after another | ${x.ratioToChecks.toFixed(2)}× | |`,
    '',
    '| kind | submissions | median s each | slowest | total s (of both guests) |',
    '|---|---|---|---|---|',
    ...x.kinds.map((k) => `| ${k.kind} | ${k.count} | ${k.median.toFixed(1)} | ${k.max.toFixed(1)} | ${k.total.toFixed(1)} |`),
    '',
    "A submission's seconds run from its staging to its score, in its own guest; two run at once.",
    '',
  ].join('\n');
}

/** The bench runs guests only. */
function guestMachine(r: RunReport): GuestMachine {
  if (r.machine.kind === 'ssh') throw new Error('the bench measures guests, not SSH targets');
  return r.machine;
}
