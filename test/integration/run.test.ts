/**
 * The real thing: the CLI fetches a Debian kernel, builds the driver and the
 * test program, boots QEMU and reports. Nothing here is mocked.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../src/report/model.js';
import { qemuProcesses, runCli, startCli } from './cli.js';

const DRIVERS = 'test/fixtures/drivers';

function report(stdout: string): RunReport {
  return JSON.parse(stdout) as RunReport;
}

afterEach(() => {
  expect(qemuProcesses()).toEqual([]);
});

describe('mmaplab run on debian:bookworm', () => {
  let seed: { exitCode: number | undefined; stdout: string; stderr: string };

  beforeAll(async () => {
    // The first run may download the kernel and probe KVM; later runs reuse both.
    seed = await runCli(['run', '--json']);
  });

  it('reproduces the seed: insmod ok, SIGBUS at page 0 under MAP_PRIVATE, 16 good pages under MAP_SHARED, exit 0', () => {
    expect(seed.stderr).toBe('');
    expect(seed.exitCode).toBe(0);
    const r = report(seed.stdout);
    expect(r.schemaVersion).toBe(1);
    expect(r.kernel.release).toMatch(/^6\.1\.0-\d+-cloud-amd64$/);
    expect(r.module.insmod).toEqual({ ok: true, status: 0, output: '' });
    expect(r.module.rmmod?.ok).toBe(true);
    const [priv, shared] = r.results;
    expect(priv).toMatchObject({ strategy: 'seed', mode: 'private', outcome: { kind: 'sigbus', page: 0, code: 'BUS_ADRERR' }, exitStatus: 135, matchesExpected: true });
    expect(shared).toMatchObject({ strategy: 'seed', mode: 'shared', outcome: { kind: 'ok', pagesOk: 16 }, exitStatus: 0, matchesExpected: true });
    expect(shared!.pageReports.map((p) => [p.page, p.word, p.index])).toEqual(Array.from({ length: 16 }, (_, i) => [i, '0xaabbccdd', i]));
    expect(r.kernelLog.problems).toEqual([]);
  });

  it('keeps the console log, the results and the built module where the report says', () => {
    const r = report(seed.stdout);
    expect(readFileSync(r.artifacts.consoleLog, 'utf8')).toMatch(/mmaplab: mmap seed: 16 pages at pgoff 0, MAP_PRIVATE, copy-on-write/);
    expect(JSON.parse(readFileSync(r.artifacts.resultsJson, 'utf8'))).toEqual(r);
    expect(existsSync(r.artifacts.module)).toBe(true);
    expect(readFileSync(join(r.artifacts.dir, 'records.jsonl'), 'utf8')).toMatch(/"t":"fault","signal":"SIGBUS"/);
  });

  it('prints a plain text report with the explanation when not on a terminal', async () => {
    const r = await runCli(['run']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).not.toMatch(/\x1b\[/);
    expect(r.stdout).toMatch(/^MAP_PRIVATE +SIGBUS at page 0 \(BUS_ADRERR, addr 0x[0-9a-f]+\) +as expected$/m);
    expect(r.stdout).toMatch(/remap_pfn_range\(\) returned -EINVAL/);
    expect(r.stdout).toMatch(/^PASS: /m);
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

  it('a driver that oopses: the crash, parsed, against the mode that caused it; exit 1', async () => {
    const r = await runCli(['run', '--json', '--module-dir', `${DRIVERS}/null-deref-mmap`]);
    expect(r.exitCode).toBe(1);
    const rep = report(r.stdout);
    expect(rep.results[0]!.outcome).toMatchObject({ kind: 'crash', title: expect.stringMatching(/NULL pointer dereference/) });
    expect(rep.results[1]!.outcome.kind).toBe('not-run');
    expect(rep.kernelLog.problems[0]!.location).toMatch(/^broken_mmap\+/);
    expect(readFileSync(rep.artifacts.consoleLog, 'utf8')).toMatch(/Oops: /);
  });

  it('a driver that never returns from mmap(): a hang, reported at the deadline, QEMU killed, the console kept', async () => {
    const r = await runCli(['run', '--json', '--timeout', '15', '--module-dir', `${DRIVERS}/endless-loop-mmap`]);
    expect(r.exitCode).toBe(1);
    const rep = report(r.stdout);
    expect(rep.results[0]!.outcome).toMatchObject({ kind: 'hang', step: 'the private test' });
    expect(rep.notes.join(' ')).toMatch(/killed at the deadline/);
    expect(readFileSync(rep.artifacts.consoleLog, 'utf8')).toMatch(/mmaplab: test private begin/);
    expect(r.durationMs).toBeLessThan(40_000);
  });

  it('a guest that cannot boot in time: exit 3 with the console so far', async () => {
    const r = await runCli(['run', '--timeout', '1']);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/^mmaplab: error: the guest did not become ready within 1 s/m);
    const log = /full console: (\S+)/.exec(r.stderr)?.[1];
    expect(log && existsSync(log)).toBe(true);
  });

  it('Ctrl-C during boot: exit 130 and no QEMU left', async () => {
    const p = startCli(['run', '-v']);
    await new Promise<void>((resolve) => {
      p.stderr?.on('data', (d: Buffer) => {
        if (d.toString().includes('[boot]')) resolve();
      });
    });
    await new Promise((r) => setTimeout(r, 500));
    p.kill('SIGINT');
    const r = await p;
    expect(r.exitCode).toBe(130);
    expect(String(r.stderr)).toMatch(/interrupted \(SIGINT\)/);
  });

  it('a missing tool: one line naming the package, exit 3', async () => {
    const r = await runCli(['run'], { PATH: '/nonexistent' });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/^mmaplab: error: qemu-system-x86_64 not found$/m);
    expect(r.stderr).toMatch(/install the Debian\/Ubuntu package qemu-system-x86/);
  });

  it('bad flags: exit 2 with a one-line reason', async () => {
    for (const args of [['run', '--bogus'], ['run', '--timeout', 'soon'], ['run', '--kernel', 'ubuntu:jammy'], ['run', '--strategy', 'nope'], ['run', '--accel', 'hvf']]) {
      const r = await runCli(args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^mmaplab: error: /m);
    }
  });
});
