/**
 * mmaplab check on real guests: a student's driver as it is, through every
 * check, and the ways a student's driver goes wrong.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { CheckReport, GuestMachine } from '../../src/model/report.js';

/** A check's report; these checks all run in guests. */
type GuestCheck = CheckReport & { machine: GuestMachine | undefined };
import { qemuProcesses, runCli } from './cli.js';
import { parseValidResults } from '../support/schema.js';

const DRIVERS = 'test/fixtures/drivers';

afterEach(() => {
  expect(qemuProcesses()).toEqual([]);
});

function verdicts(stdout: string): Record<string, string> {
  const r = parseValidResults<CheckReport>(stdout);
  return Object.fromEntries(r.items.map((i) => [i.id, i.verdict]));
}

describe('mmaplab check', () => {
  it('passes a correct driver in the lab layout, unchanged, finding its device by itself', async () => {
    const r = await runCli(['check', `${DRIVERS}/lab-layout/vmmap`, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(verdicts(r.stdout)).toEqual({
      builds: 'pass', loads: 'pass', device: 'pass', shared: 'pass', 'distinct-pages': 'pass', private: 'pass',
      write: 'pass', read: 'skip', oversize: 'pass', readonly: 'pass', unloads: 'pass', kernel: 'pass', reserved: 'pass', leaks: 'pass', taint: 'pass',
    });
    // It has no read(): a second mapping is the witness of the write, and the read check says why it is skipped.
    const rep = parseValidResults<CheckReport>(r.stdout);
    expect(rep.items.find((i) => i.id === 'write')!.reason).toBe('a second mapping of the device sees it');
    expect(rep.items.find((i) => i.id === 'read')!.reason).toBe('the driver has no read(): it fails with EINVAL');
    // The lab layout's test header names no pattern, and the driver stores the u32 0xaabbccdd: that is what it expects, and says so.
    expect(rep.pattern).toMatchObject({ word: '0xaabbccdd', bytes: 'dd cc bb aa', from: 'driver', strict: false });
    // Its mapping, page by page: sixteen different pages, in order.
    const pic = rep.results.find((x) => x.check === 'shared')!.picture!;
    expect(pic.pages.map((p) => [p.shows, p.ok])).toEqual(Array.from({ length: 16 }, (_, i) => [i, true]));
  });

  it('a driver that does not compile fails its first check with the compiler\'s file:line', async () => {
    const r = await runCli(['check', `${DRIVERS}/compile-error`]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^✗ builds /m);
    expect(r.stdout).toContain('test/fixtures/drivers/compile-error/compile_error.c:15:9: error:');
  });

  it('an oops fails the check that caused it, with the source line; the guest is replaced and the rest still run', async () => {
    const r = await runCli(['check', `${DRIVERS}/null-deref-mmap`, '--json']);
    expect(r.exitCode).toBe(1);
    const rep = parseValidResults<GuestCheck>(r.stdout);
    // Each pass in a guest restored afresh from the kernel's snapshot (made by one boot if it was not cached).
    expect(rep.machine?.snapshot).toMatchObject({ use: expect.stringMatching(/^(restored|made)$/), restores: 5 });
    expect(rep.machine?.boots).toBeLessThanOrEqual(1);
    expect(rep.results.map((x) => [x.check, x.outcome.kind])).toEqual([['shared', 'crash'], ['private', 'crash'], ['shared-write', 'crash'], ['oversize', 'crash'], ['readonly', 'crash']]);
    const kernel = rep.items.find((i) => i.id === 'kernel')!;
    expect(kernel.verdict).toBe('fail');
    expect(kernel.details![0]).toMatch(/at broken_mmap\+0x[0-9a-f]+ \(test\/fixtures\/drivers\/null-deref-mmap\/null_deref\.c:19\) \(5×, during the shared, private, shared-write, oversize and readonly checks\)$/);
  }, 120_000);

  it('every page mapped to page 0: the pattern reads fine, but the pages are one page', async () => {
    const r = await runCli(['check', `${DRIVERS}/page-zero`, '--json']);
    expect(r.exitCode).toBe(1);
    const rep = parseValidResults<CheckReport>(r.stdout);
    expect(verdicts(r.stdout)).toMatchObject({ shared: 'pass', 'distinct-pages': 'fail', private: 'pass', leaks: 'pass' });
    expect(rep.items.find((i) => i.id === 'distinct-pages')!.reason).toMatch(/^all 16 pages map one physical page \(the one page 0 maps/);
    // The picture, from the same JSON: every mapped page is the buffer's first, told apart by markers (no frames here).
    const shared = rep.results.find((x) => x.check === 'shared')!.picture!;
    expect(shared.pages.map((p) => p.shows)).toEqual(Array(16).fill(0));
    expect(shared.pages.map((p) => p.ok)).toEqual([true, ...Array(15).fill(false)]);
  });

  it('a vmalloc area left after rmmod fails the leak check', async () => {
    const r = await runCli(['check', `${DRIVERS}/vmalloc-leak`, '--json']);
    expect(r.exitCode).toBe(1);
    const rep = parseValidResults<CheckReport>(r.stdout);
    expect(verdicts(r.stdout)).toMatchObject({ unloads: 'pass', leaks: 'fail', 'distinct-pages': 'pass' });
    expect(rep.items.find((i) => i.id === 'leaks')!.details![0]).toMatch(/^ ?69632 0xffffffffc[0-9a-f]+ pages=16 vmalloc/);
  });

  it('virt_to_phys() on vmalloc memory: other memory is mapped, the kernel objects, the checks say so', async () => {
    const r = await runCli(['check', `${DRIVERS}/virt-to-phys`, '--json']);
    expect(r.exitCode).toBe(1);
    const rep = parseValidResults<CheckReport>(r.stdout);
    expect(verdicts(r.stdout)).toMatchObject({ loads: 'pass', shared: 'fail', kernel: 'fail' });
    expect(rep.items.find((i) => i.id === 'kernel')!.reason).toMatch(/Corrupted page table/);
  });

  it('one page too many: the oversize mapping is not refused', async () => {
    const r = await runCli(['check', `${DRIVERS}/one-page-too-many`, '--json']);
    expect(r.exitCode).toBe(1);
    expect(verdicts(r.stdout)).toMatchObject({ shared: 'pass', 'distinct-pages': 'pass', oversize: 'fail', leaks: 'pass' });
  });

  it('--expect-pattern: the lab\'s byte order (aa bb cc dd) against a driver that writes the seed\'s', async () => {
    const r = await runCli(['check', `${DRIVERS}/lab-layout/vmmap`, '--json', '--expect-pattern', '0xddccbbaa', '--timeout', '60']);
    expect(r.exitCode).toBe(1);
    const rep = parseValidResults<CheckReport>(r.stdout);
    expect(rep.items.find((i) => i.id === 'shared')).toMatchObject({ verdict: 'fail', reason: 'byte order: 16/16 pages start with dd cc bb aa, but --expect-pattern expects aa bb cc dd' });
  });

  it('under GitHub Actions a driver that does not compile is annotated at its file and line', async () => {
    const r = await runCli(['check', `${DRIVERS}/compile-error`], { GITHUB_ACTIONS: 'true' });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^::error file=test\/fixtures\/drivers\/compile-error\/compile_error\.c,line=15,col=9::/m);
  });

  it('a misc device: no new major, but devtmpfs makes its node, and that is the device', async () => {
    const r = await runCli(['check', `${DRIVERS}/misc-device`, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const rep = parseValidResults<CheckReport>(r.stdout);
    expect(rep.items.find((i) => i.id === 'device')!.reason).toBe('/dev/miscmap (made by devtmpfs)');
    const given = await runCli(['check', `${DRIVERS}/misc-device`, '--json', '--device', '/dev/miscmap']);
    expect(given.exitCode).toBe(0);
    expect(parseValidResults<CheckReport>(given.stdout).items.find((i) => i.id === 'device')!.reason).toBe('/dev/miscmap (given)');
  });

  it('init asleep on an event that never comes: named by the hung-task report at the wait, long before the deadline', async () => {
    const r = await runCli(['check', `${DRIVERS}/sleep-in-init`, '--json', '--timeout', '90']);
    expect(r.exitCode).toBe(1);
    const rep = parseValidResults<GuestCheck>(r.stdout);
    expect(rep.items.find((i) => i.id === 'loads')!.reason).toMatch(/^insmod never finished: module init never returns: it sleeps and is never woken \(the kernel reported a hung task in sleep_init\+0x[0-9a-f]+ \(test\/fixtures\/drivers\/sleep-in-init\/sleep_init\.c:14\)\)$/);
    expect(rep.items.find((i) => i.id === 'loads')!.hint).toMatch(/wait_event_timeout/);
    expect(rep.notes.join(' ')).toMatch(/stopped once the kernel reported the guest stuck during insmod \(INFO: task insmod:\d+ blocked/);
  });

  it('a driver that never returns from mmap(): named as a hang at its own line when the kernel reports the lockup, long before the deadline; the rest are not run', async () => {
    const r = await runCli(['check', `${DRIVERS}/endless-loop-mmap`, '--json', '--timeout', '60']);
    expect(r.exitCode).toBe(1);
    const rep = parseValidResults<GuestCheck>(r.stdout);
    expect(rep.machine?.snapshot).toMatchObject({ restores: 1 });
    expect(rep.results.map((x) => x.outcome.kind)).toEqual(['hang', 'not-run', 'not-run', 'not-run', 'not-run']);
    expect(rep.items.find((i) => i.id === 'shared')!.reason).toMatch(/^the driver never returns: the kernel reported a soft lockup in broken_mmap\+0x[0-9a-f]+ \(test\/fixtures\/drivers\/endless-loop-mmap\/endless_loop\.c:\d+\)$/);
    // Stopped by the lockup report, not by the 60 s deadline.
    expect(rep.notes.join(' ')).toMatch(/stopped once the kernel reported the guest stuck during the shared check \(watchdog: BUG: soft lockup/);
    expect(rep.consoleTail.length).toBeGreaterThan(0);
    expect(readFileSync(rep.artifacts.consoleLog!, 'utf8')).toMatch(/mmaplab: check shared begin[\s\S]*watchdog: BUG: soft lockup/);
  }, 120_000);

  it('pages freed while still reserved: no "Bad page state" on this kernel, but the freeing is watched and reported', async () => {
    const r = await runCli(['check', `${DRIVERS}/reserved-pages-freed`, '--json']);
    expect(r.exitCode).toBe(1);
    const rep = parseValidResults<CheckReport>(r.stdout);
    expect(verdicts(r.stdout)).toMatchObject({ unloads: 'pass', kernel: 'pass', reserved: 'fail', leaks: 'pass' });
    expect(rep.items.find((i) => i.id === 'reserved')!.reason).toMatch(/^rmmod freed 16 pages still marked PG_reserved/);
  });

  it("a driver whose name and messages are made to trip a parser: its verdicts are its mapping's", async () => {
    const r = await runCli(['check', `${DRIVERS}/hostile-names`, '--json', '--expect-pattern', '0xddccbbaa']);
    expect(r.exitCode, r.stdout).toBe(0);
    const rep = parseValidResults<CheckReport>(r.stdout);
    expect(rep.items.find((i) => i.id === 'device')!.reason).toMatch(/^\/dev\/mmaplab-evil "dev" \\x \d+:0 \(evil "dev" \\x\)$/);
    expect(verdicts(r.stdout)).toMatchObject({ shared: 'pass', 'distinct-pages': 'pass', private: 'pass', write: 'pass', oversize: 'pass', kernel: 'pass' });
    expect(rep.notes.join('\n')).not.toMatch(/outside the protocol/);
  });

  it('a driver with no character device: the device check fails, and no mapping check claims anything', async () => {
    const r = await runCli(['check', `${DRIVERS}/proc-only`, '--json']);
    expect(r.exitCode).toBe(1);
    expect(verdicts(r.stdout)).toMatchObject({ loads: 'pass', device: 'fail', shared: 'skip', private: 'skip', write: 'skip', oversize: 'skip', unloads: 'pass' });
  });

  it('bad usage: exit 2', async () => {
    const r = await runCli(['check', `${DRIVERS}/lab-layout/vmmap`, '--expect-pattern', 'aabbccdd']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/--expect-pattern must be a 32-bit hex word/);
  });
});
