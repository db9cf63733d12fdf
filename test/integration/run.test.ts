/**
 * The real thing: the CLI fetches a Debian kernel, builds the driver and the
 * test program, boots QEMU and reports. Nothing here is mocked.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STRATEGIES } from '../../src/diagnose/expectations.js';
import { CHECK_NAMES } from '../../src/model/checks.js';
import type { GuestMachine, RunReport } from '../../src/model/report.js';
import { cacheRoot } from '../../src/util/paths.js';
import { execa } from 'execa';
import { BIN, qemuProcesses, runCli, startCli } from './cli.js';
import { parseValidResults } from '../support/schema.js';
import { expectedGrid, gridOf } from '../support/grid.js';

const DRIVERS = 'test/fixtures/drivers';

/** A run's report; these runs are all in guests. */
function report(stdout: string): RunReport & { machine: GuestMachine } {
  return parseValidResults<RunReport & { machine: GuestMachine }>(stdout);
}

afterEach(() => {
  expect(qemuProcesses()).toEqual([]);
});

describe('mmaplab run on debian:bookworm: every strategy x every check', () => {
  let grid: { exitCode: number | undefined; stdout: string; stderr: string };

  beforeAll(async () => {
    // The first run may download the kernel and probe KVM; later runs reuse both.
    grid = await runCli(['run', '--json']);
  });

  it('the real grid equals the expectations table, and the run exits 0', () => {
    expect(grid.stderr).toBe('');
    const r = report(grid.stdout);
    expect(r.schemaVersion).toBe(2);
    expect(r.kernel.release).toMatch(/^6\.1\.0-\d+-cloud-amd64$/);
    // The kernel was unpacked from its bzImage and booted through PVH.
    expect(r.machine.bootImage).toBe('pvh');
    expect(r.strategies.map((s) => s.strategy)).toEqual(STRATEGIES);
    expect(r.checks).toEqual(CHECK_NAMES);
    expect(gridOf(r)).toEqual(expectedGrid());
    expect(r.results.filter((x) => !x.matchesExpected)).toEqual([]);
    expect(r.kernelLog.problems).toEqual([]);
    expect(grid.exitCode).toBe(0);
  });

  it('reproduces the seed: insmod ok, SIGBUS at page 0 under MAP_PRIVATE after 16 traced -EINVALs, 16 good pages under MAP_SHARED', () => {
    const r = report(grid.stdout);
    expect(r.strategies.every((s) => s.insmod?.ok && s.rmmod?.ok && s.tracing)).toBe(true);
    const cell = (check: string) => r.results.find((x) => x.strategy === 'seed' && x.check === check)!;
    expect(cell('private')).toMatchObject({ mode: 'private', outcome: { kind: 'sigbus', page: 0, code: 'BUS_ADRERR' }, exitStatus: 135, matchesExpected: true });
    expect(cell('private').traced).toEqual([expect.objectContaining({ fn: 'remap_pfn_range', calls: 16, returns: { '-22': 16 } })]);
    expect(cell('shared')).toMatchObject({ mode: 'shared', outcome: { kind: 'ok', pagesOk: 16 }, exitStatus: 0, matchesExpected: true });
    expect(cell('shared').pageReports.map((p) => [p.page, p.word, p.index])).toEqual(Array.from({ length: 16 }, (_, i) => [i, '0xaabbccdd', i]));
  });

  it('the picture of each mapping in the JSON: right, an ignored vm_pgoff, and a SIGBUS at the first page', () => {
    const r = report(grid.stdout);
    const picture = (strategy: string, check: string) => r.results.find((x) => x.strategy === strategy && x.check === check)!.picture;
    const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
    // remap_vmalloc_range() honours vm_pgoff: at offset 3 the first mapped page is the buffer's page 3.
    expect(picture('remap-vmalloc-range', 'shared')).toEqual({ by: 'index', pages: range(0, 16).map((i) => ({ page: i, shows: i, expect: i, ok: true })) });
    expect(picture('remap-vmalloc-range', 'offset')!.pages.map((p) => [p.shows, p.expect, p.ok])).toEqual(range(3, 13).map((i) => [i, i, true]));
    // checked maps the buffer from its start whatever vm_pgoff says: page 0 where page 3 belongs.
    expect(picture('checked', 'offset')!.pages.map((p) => [p.shows, p.expect, p.ok])).toEqual(range(0, 13).map((i) => [i, i + 3, false]));
    expect(picture('seed', 'private')).toEqual({ by: expect.any(String), pages: [{ page: 0, shows: 'fault', expect: null, ok: false }], stoppedAt: { page: 0, signal: 'SIGBUS' } });
  });

  it('keeps the console log, the records, the results and the built module where the report says', () => {
    const r = report(grid.stdout);
    expect(readFileSync(r.artifacts.consoleLog, 'utf8')).toMatch(/mmaplab: mmap seed: 16 pages at pgoff 0, MAP_PRIVATE, copy-on-write/);
    expect(parseValidResults(readFileSync(r.artifacts.resultsJson, 'utf8'))).toEqual(r);
    expect(existsSync(r.artifacts.module)).toBe(true);
    expect(readFileSync(join(r.artifacts.dir, 'records.jsonl'), 'utf8')).toMatch(/"strategy":"seed","t":"fault","signal":"SIGBUS"/);
  });

  it('mmaplab parse re-reads the run directory into the same report', async () => {
    const r = report(grid.stdout);
    const again = await runCli(['parse', r.artifacts.dir, '--json']);
    expect(again.exitCode).toBe(0);
    expect(report(again.stdout).results).toEqual(r.results);
  });

  it('prints a plain text report for one strategy, with the explanation, when not on a terminal', async () => {
    const r = await runCli(['run', '--strategy', 'seed', '--check', 'shared,private']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).not.toMatch(/\x1b\[/);
    expect(r.stdout).toMatch(/^private +SIGBUS at page 0 \(BUS_ADRERR, addr 0x[0-9a-f]+\) +as expected$/m);
    expect(r.stdout).toMatch(/traced: remap_pfn_range\(\) returned -EINVAL 16×/);
    expect(r.stdout).toMatch(/^PASS: all 2 outcomes are what the lab expects$/m);
  });

  it('without snapshots, a strategy that crashes its guest is charged with it; the next one runs in a fresh boot', async () => {
    const r = await runCli(['run', '--json', '--no-snapshot', '--module-dir', `${DRIVERS}/crashing-strategy`, '--strategy', 'crash,good', '--check', 'private,shared,oversize']);
    expect(r.exitCode).toBe(1);
    const rep = report(r.stdout);
    expect(rep.machine.boots).toBe(2);
    expect(rep.machine.snapshot).toEqual({ use: 'off', reason: '--no-snapshot' });
    expect(rep.strategies.map((s) => [s.strategy, s.end, s.boot])).toEqual([['crash', 'stalled', 1], ['good', 'done', 2]]);
    expect(rep.results.map((x) => `${x.strategy}/${x.check}:${x.outcome.kind}`)).toEqual([
      'crash/private:crash', 'crash/shared:not-run', 'crash/oversize:not-run',
      'good/private:ok', 'good/shared:ok', 'good/oversize:mmap-failed',
    ]);
    expect(existsSync(join(rep.artifacts.dir, 'console-boot2.log'))).toBe(true);
  });
});

describe('a driver of the student\'s own', () => {
  it('in the lab layout (no Kbuild, "../test/mmap-test.h") builds unchanged and passes; the tree stays as it was', async () => {
    const before = readdirSync(join(DRIVERS, 'lab-layout'), { recursive: true }).sort();
    const r = await runCli(['run', '--json', '--module-dir', `${DRIVERS}/lab-layout/vmmap`]);
    expect(r.exitCode, r.stderr).toBe(0);
    const rep = report(r.stdout);
    expect(rep.module.name).toBe('vmmap');
    // It has no read(): a second mapping shows the write reached the driver's pages.
    expect(rep.results.find((x) => x.check === 'shared-write')!.outcome.kind).toBe('ok');
    expect(rep.results.every((x) => x.outcome.kind === (x.check === 'oversize' ? 'mmap-failed' : 'ok'))).toBe(true);
    expect(readdirSync(join(DRIVERS, 'lab-layout'), { recursive: true }).sort()).toEqual(before);
  });
});

describe('failures a user can cause', () => {
  it('a driver that does not compile: gcc diagnostics with file:line:col, exit 3, the build log kept', async () => {
    const r = await runCli(['run', '--module-dir', `${DRIVERS}/compile-error`]);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/^mmaplab: error: the driver in test\/fixtures\/drivers\/compile-error does not compile/m);
    expect(r.stderr).toContain('test/fixtures/drivers/compile-error/compile_error.c:15:9: error:');
    const log = /full build log: (\S+)/.exec(r.stderr)?.[1];
    expect(log && readFileSync(log, 'utf8')).toMatch(/compile_error\.c:15:9: error/);
  });

  it('under GitHub Actions, compile errors are also annotations at the file and line', async () => {
    const r = await runCli(['run', '--module-dir', `${DRIVERS}/compile-error`], { GITHUB_ACTIONS: 'true' });
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toMatch(/^::error file=test\/fixtures\/drivers\/compile-error\/compile_error\.c,line=15,col=9::expected ‘,’ or ‘;’ before ‘return’$/m);
    expect(r.stdout).toMatch(/^::warning file=.*compile_error\.c,line=14,col=23::unused variable/m);
  });

  it('a driver that oopses: the crash, parsed, against the check that caused it; exit 1', async () => {
    const r = await runCli(['run', '--json', '--module-dir', `${DRIVERS}/null-deref-mmap`]);
    expect(r.exitCode).toBe(1);
    const rep = report(r.stdout);
    expect(rep.results[0]!.outcome).toMatchObject({ kind: 'crash', title: expect.stringMatching(/NULL pointer dereference/) });
    expect(rep.results.slice(1).every((x) => x.outcome.kind === 'not-run')).toBe(true);
    expect(rep.kernelLog.problems[0]!.location).toMatch(/^broken_mmap\+/);
    // Resolved against the built module's debug info, to the line of the driver that faulted.
    expect(rep.kernelLog.problems[0]!.locationSource).toBe('test/fixtures/drivers/null-deref-mmap/null_deref.c:19');
    expect(readFileSync(rep.artifacts.consoleLog, 'utf8')).toMatch(/Oops: /);
  });

  it('a driver that never returns from mmap(): a hang, named when the kernel reports the lockup, QEMU killed, the console kept', async () => {
    const r = await runCli(['run', '--json', '--timeout', '60', '--module-dir', `${DRIVERS}/endless-loop-mmap`]);
    expect(r.exitCode).toBe(1);
    const rep = report(r.stdout);
    expect(rep.results[0]!.outcome).toMatchObject({ kind: 'hang', step: 'the private check', evidence: expect.stringMatching(/^watchdog: BUG: soft lockup/) });
    expect(rep.notes.join(' ')).toMatch(/stopped once the kernel reported the guest stuck during the private check \(watchdog: BUG: soft lockup/);
    expect(readFileSync(rep.artifacts.consoleLog, 'utf8')).toMatch(/mmaplab: check private begin/);
  });

  it('a guest that cannot boot in time: exit 3 with the console so far', async () => {
    const r = await runCli(['run', '--timeout', '1', '--no-snapshot']);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/^mmaplab: error: the guest did not become ready within 1 s/m);
    const log = /full console: (\S+)/.exec(r.stderr)?.[1];
    expect(log && existsSync(log)).toBe(true);
    // The deadline was the user's: the kernel's unpacked image is still booted next time.
    expect(condemnedPvhImages()).toEqual([]);
  });

  it('a boot that makes a snapshot and cannot finish in time: exit 3, the console it names is there', async () => {
    // Another memory size is another snapshot slot: none is cached, so this run boots to make one.
    const r = await runCli(['run', '--timeout', '1', '--memory', '272']);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/^mmaplab: error: the guest did not become ready within 1 s/m);
    const log = /full console: (\S+)/.exec(r.stderr)?.[1];
    expect(log && existsSync(log) && readFileSync(log, 'utf8')).toMatch(/===== mmaplab: the boot that made the snapshot/);
  });

  /** Kernels whose unpacked vmlinux mmaplab stopped booting (after a PVH boot failed). */
  function condemnedPvhImages(): string[] {
    const kernels = join(cacheRoot(), 'kernels', 'debian');
    return readdirSync(kernels).filter((d) => existsSync(join(kernels, d, 'vmlinux.none')));
  }

  it('Ctrl-C during boot: exit 130 and no QEMU left', async () => {
    const p = startCli(['run', '-v', '--no-snapshot']);
    await new Promise<void>((resolve) => {
      p.stderr?.on('data', (d: Buffer) => {
        if (/ boot\] /.test(d.toString())) resolve();
      });
    });
    await new Promise((r) => setTimeout(r, 500));
    p.kill('SIGINT');
    const r = await p;
    expect(r.exitCode).toBe(130);
    expect(String(r.stderr)).toMatch(/interrupted \(SIGINT\)/);
    // QEMU killed on the way out is not the unpacked kernel's fault.
    expect(condemnedPvhImages()).toEqual([]);
  });

  it('Ctrl-C while jobs run in restored guests: exit 130, no QEMU left, every console in console.log, and the directory reads back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmaplab-killed-'));
    const p = startCli(['run', '-v', '--output-dir', dir]);
    await new Promise<void>((resolve) => {
      p.stderr?.on('data', (d: Buffer) => {
        if (/ job\] /.test(d.toString())) resolve();
      });
    });
    await new Promise((r) => setTimeout(r, 300));
    p.kill('SIGINT');
    const r = await p;
    expect(r.exitCode).toBe(130);
    expect(String(r.stderr)).toMatch(/ restore\] (job \d: )?restoring 6\.1\.0-\d+-cloud-amd64 from its snapshot/);
    // The killed guests' consoles were folded into console.log, each under its heading; none is left on its own.
    const kept = readdirSync(dir);
    expect(kept.filter((n) => /^console-guest\d+\.log$/.test(n))).toEqual([]);
    expect(readFileSync(join(dir, 'console.log'), 'utf8')).toMatch(/^===== mmaplab: (job \d+ \(\w[\w-]*\)|a restored guest that ran no job)/m);
    // A killed run has no results.json; parse reads what it kept instead of failing.
    const parsed = await runCli(['parse', dir]);
    expect(parsed.stderr).not.toMatch(/internal error/);
    expect([0, 1]).toContain(parsed.exitCode);
    rmSync(dir, { recursive: true, force: true });
    // Reaping the guests is not taken for a broken snapshot: the next run restores it.
    const next = report((await runCli(['run', '--json', '--strategy', 'seed', '--check', 'shared'])).stdout);
    expect(next.machine).toMatchObject({ snapshot: { use: 'restored' } });
  });

  it('microvm where it cannot work (forced): the boot falls back to pc, and microvm is not tried again for this kernel and QEMU', async () => {
    const kdir = join(cacheRoot(), 'kernels', 'debian', readdirSync(join(cacheRoot(), 'kernels', 'debian')).find((d) => /^6\.1\.0-\d+-cloud-amd64$/.test(d))!);
    const markers = () => readdirSync(kdir).filter((n) => n.startsWith('vmlinux.no-microvm-'));
    for (const m of markers()) rmSync(join(kdir, m));
    try {
      // Debian's kernels cannot find microvm's devices without ACPI (no VIRTIO_MMIO_CMDLINE_DEVICES): the agent finds no job channel.
      const first = report((await runCli(['run', '--json', '--no-snapshot', '--strategy', 'seed', '--check', 'shared'], { MMAPLAB_MICROVM: 'try' })).stdout);
      expect(first.status).toBe('pass');
      expect(first.machine).toMatchObject({ machineType: 'pc', bootImage: 'pvh', bootAttempts: 2 });
      expect(first.notes.join('\n')).toMatch(/the microvm machine did not boot 6\.1\.0-\d+-cloud-amd64 \(boot attempt 1: no virtio device for the job channel\); booted the pc machine instead/);
      expect(markers()).toHaveLength(1);
      const again = report((await runCli(['run', '--json', '--no-snapshot', '--strategy', 'seed', '--check', 'shared'], { MMAPLAB_MICROVM: 'try' })).stdout);
      expect(again.machine).toMatchObject({ machineType: 'pc', bootAttempts: 1 });
    } finally {
      for (const m of markers()) rmSync(join(kdir, m));
    }
  });

  it('a missing tool: one line naming the package, exit 3', async () => {
    const r = await runCli(['run'], { PATH: '/nonexistent' });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/^mmaplab: error: qemu-system-x86_64 not found$/m);
    expect(r.stderr).toMatch(/install the Debian\/Ubuntu package qemu-system-x86/);
  });

  it('bad flags: exit 2 with a one-line reason', async () => {
    for (const args of [['run', '--bogus'], ['run', '--timeout', 'soon'], ['run', '--kernel', 'ubuntu:jammy'], ['run', '--strategy', 'nope'], ['run', '--strategy', 'seed,nope'], ['run', '--check', 'private,sideways'], ['run', '--accel', 'hvf'],
      ['run', '--jobs', '0'], ['run', '--kernel', 'debian:bookworm', '--kernel', 'local:'], ['check', 'x.c', '--kernel', 'ubuntu:noble'], ['shell', '--kernel', 'all'], ['merge'], ['kernels', 'fetch', 'debian:'], ['run', '--kernel', 'debian:potato'], ['run', '--memory', '1'], ['check', 'x.c', '--memory', '64']]) {
      const r = await runCli(args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^mmaplab: error: /m);
    }
    // The reason names what would be right: the suites, the least memory that boots.
    expect((await runCli(['run', '--kernel', 'debian:potato'])).stderr).toMatch(/unknown Debian suite 'potato'.*bullseye, bookworm, trixie/);
    expect((await runCli(['run', '--memory', '1'])).stderr).toMatch(/--memory must be a whole number from 96 to 16384 \(the lab's kernels do not boot in less than 96 MiB\)/);
  });

  it('a reader that stops reading (| head): no stack trace, and the command\'s own exit status', async () => {
    // The reader closes the pipe before mmaplab writes: every write meets EPIPE.
    const closed = async (args: string) => execa('bash', ['-c', `'${process.execPath}' '${BIN}' ${args} 2>&1 | sh -c 'exec <&-; sleep 2'; echo "status \${PIPESTATUS[0]}"`], { reject: false });
    const ok = await closed('config run');
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toBe('status 0');
    // A usage error stays one: its status is not turned into success.
    const bad = await closed('run --kernel debian:potato');
    expect(bad.stderr).toBe('');
    expect(bad.stdout).toBe('status 2');
  });
});
