/**
 * Whether a guest may serve the next job (parse/guest-after-job.ts), on the
 * records of a real job in a shared guest, and on the same records changed the
 * way a driver that leaves something behind would change them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { GuestRecord } from '../../src/guest/protocol.js';
import { CHECK_NAMES as ALL_CHECKS } from '../../src/model/checks.js';
import { guestAfterJob } from '../../src/parse/guest-after-job.js';
import { FIXTURES } from '../helpers.js';

const real = readFileSync(join(FIXTURES, 'records', 'shared-guest-job.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as { t: string })
  .filter((r) => r.t !== 'mmaplab-job-ended') as GuestRecord[];

type Rec = GuestRecord;
const judge = (records: readonly Rec[], end: Parameters<typeof guestAfterJob>[0] = 'done') => guestAfterJob(end, records, 'mmaplab', ALL_CHECKS);
/** The real records with one record replaced (or removed: undefined). */
const edit = (pick: (r: Rec) => boolean, to: (r: Rec) => Rec | undefined): Rec[] => real.flatMap((r) => (pick(r) ? [to(r)].filter((x): x is Rec => !!x) : [r]));
const before = real.findIndex((r) => r.t === 'step' && r.step === 'rmmod');
const insertBeforeEnd = (extra: Rec[]): Rec[] => {
  const i = real.findIndex((r) => r.t === 'job-done');
  return [...real.slice(0, i), ...extra, ...real.slice(i)];
};
const after = (r: Rec): r is Extract<Rec, { t: 'guest-state' }> => r.t === 'guest-state' && r.when === 'after';

describe('a guest after a job', () => {
  it('is as it was after a real clean job (the captured one)', () => {
    expect(before).toBeGreaterThan(0);
    expect(judge(real)).toEqual({ kind: 'as-it-was' });
  });

  it('is retired after a job that did not end (crash, hang, flood), or whose script did not finish', () => {
    for (const end of ['guest-died', 'timeout', 'stalled', 'flooded'] as const) expect(judge(real, end)).toMatchObject({ kind: 'changed', why: `the job ended ${end}` });
    expect(judge(edit((r) => r.t === 'job-done', () => undefined))).toMatchObject({ kind: 'changed', why: /did not reach its end/ });
  });

  it('is retired when the kernel reported anything: a WARNING, an oops, a lockup', () => {
    const warn = insertBeforeEnd([{ t: 'kmsg', line: '[    5.100000] WARNING: CPU: 0 PID: 312 at mm/vmalloc.c:2690 vfree+0x80/0x90' }]);
    expect(judge(warn)).toMatchObject({ kind: 'changed', why: /the kernel reported WARNING/ });
    const oops = insertBeforeEnd([{ t: 'kmsg', line: '[    5.100000] BUG: kernel NULL pointer dereference, address: 0000000000000000' }]);
    expect(judge(oops)).toMatchObject({ kind: 'changed' });
  });

  it('is retired when the driver is still loaded, or left a module or a character device', () => {
    expect(judge(edit((r) => r.t === 'step' && r.step === 'rmmod', (r) => ({ ...r, status: 1, output: 'rmmod: ERROR: Module mmaplab is in use' }) as Rec))).toMatchObject({ why: /still loaded/ });
    expect(judge(edit(after, (r) => ({ ...r, modules: `${(r as { modules: string }).modules} helper` }) as Rec))).toMatchObject({ why: 'modules left loaded: helper' });
    expect(judge(edit(after, (r) => ({ ...r, chrdevs: `${(r as { chrdevs: string }).chrdevs}|240 mmaplab` }) as Rec))).toMatchObject({ why: 'character devices left registered: 240 mmaplab' });
  });

  it('is retired when a device class, a misc device or a /proc entry was left registered', () => {
    const withState = (extra: Record<string, string>) => (r: Rec) => ({ ...r, classes: 'tty|misc', misc: 'cpu_dma_latency', proc: 'cpuinfo|meminfo', ...extra }) as Rec;
    const before = (r: Rec) => r.t === 'guest-state' && r.when === 'before';
    const both = (extra: Record<string, string>) => edit(after, withState(extra)).map((r) => (before(r) ? withState({})(r) : r));
    expect(judge(both({}))).toEqual({ kind: 'as-it-was' });
    expect(judge(both({ misc: 'cpu_dma_latency|vmmap' }))).toMatchObject({ why: 'misc devices left registered: vmmap' });
    expect(judge(both({ classes: 'tty|misc|so2' }))).toMatchObject({ why: 'device classes left registered: so2' });
    expect(judge(both({ proc: 'cpuinfo|meminfo|my_mmap' }))).toMatchObject({ why: '/proc entries left registered: my_mmap' });
  });

  it("judges the taint against the guest's first job: a WARNING between two jobs is not hidden by the next job's own before", () => {
    const warnedBetween = real.map((r) => (r.t === 'guest-state' ? ({ ...r, tainted: 512 }) : r));
    expect(judge(warnedBetween)).toEqual({ kind: 'as-it-was' });
    expect(guestAfterJob('done', warnedBetween, 'mmaplab', ALL_CHECKS, { tainted: 0 })).toMatchObject({ why: /taint grew/ });
  });

  it('is retired when the taint grew beyond O and E, but not for O and E', () => {
    expect(judge(edit(after, (r) => ({ ...r, tainted: 12288 }) as Rec))).toEqual({ kind: 'as-it-was' });
    expect(judge(edit(after, (r) => ({ ...r, tainted: 12288 | 512 }) as Rec))).toMatchObject({ why: /taint grew \(mask 12800\)/ });
  });

  it("is retired when one of the driver's vmalloc areas outlived rmmod, or it freed reserved pages", () => {
    const leak = insertBeforeEnd([{ t: 'vmalloc', when: 'after', line: '0x(____ptrval____)-0x(____ptrval____)   69632 0xffffffffc023d015 pages=16 vmalloc N0=16' }]);
    expect(judge(leak)).toMatchObject({ why: /1 vmalloc area\(s\) of the driver's left/ });
    expect(judge(edit((r) => r.t === 'reserved-freed', () => ({ t: 'reserved-freed', pages: 16 })))).toMatchObject({ why: /16 page\(s\) freed while still marked reserved/ });
  });

  it("is retired when a check was killed at its deadline, or the job did not report the guest's state", () => {
    expect(judge(edit((r) => r.t === 'exit' && r.check === 'shared', (r) => ({ ...r, status: 124 }) as Rec))).toMatchObject({ why: /check shared was killed at its deadline/ });
    expect(judge(edit(after, () => undefined))).toMatchObject({ why: /did not report the guest's state/ });
  });
});
