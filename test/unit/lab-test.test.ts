/** The lab's own test program: found in the lab's layout, its runs chosen and judged as its author meant them. */
import { describe, expect, it } from 'vitest';
import { findLabTest, type LabTestPlan } from '../../src/kbuild/lab-test.js';
import { labTestReport } from '../../src/diagnose/lab-test.js';
import { jobEnv, labJob } from '../../src/guest/job.js';

const plan: Extract<LabTestPlan, { kind: 'built' }> = { kind: 'built', program: 'test/mmap-test.c', command: 'i686-linux-gnu-gcc -static -O2 -Wall -o mmap-test mmap-test.c', path: '/c/mmap-test', node: '/dev/mymmap', makesNode: true, runs: [1, 2, 3], pages: 16 };
const run = (n: number, output: string[], status: number | undefined = 0, stopped: '' | 'after-result' | 'deadline' = '') => ({ run: n, output, status, stopped });

describe("finding the lab's test program", () => {
  it("reads the lab's layout: test/mmap-test.c with its header's MMAP_DEV and NPAGES, and the tests its argument selects", async () => {
    const t = await findLabTest('test/fixtures/students/lab-vmmap-layout');
    expect(t).toMatchObject({ node: '/dev/mymmap', runs: [1, 2, 3], pages: 16, main: expect.stringMatching(/lab-vmmap-layout\/test\/mmap-test\.c$/) });
    expect(t!.files.map((f) => f.split('/').pop())).toEqual(['mmap-test.c', 'mmap-test.h']);
  });

  it('finds a sibling ../test/ too, a node made of a macro ("/dev/" MMAP_DEV_NAME), and only test 1 where the program has no levels', async () => {
    expect(await findLabTest('test/fixtures/students/wrong-byte-order/kernel')).toMatchObject({ node: '/dev/pagemap', runs: [1], pages: 16 });
    expect(await findLabTest('test/fixtures/drivers/null-deref-mmap')).toBeUndefined();
  });
});

describe("judging the lab's runs", () => {
  it('passes test 1 on NPAGES "matched", test 2 on a clean exit, test 3 on the 10 MB the /proc entry saw grow (stopped during its sleep)', () => {
    const r = labTestReport(plan, [run(1, Array(16).fill('matched')), run(2, Array(48).fill('matched')), run(3, [...Array(48).fill('matched'), 'Memory usage: 1234', 'Memory usage: 10487', 'mmaped :10 MB'], 143, 'after-result')]);
    expect(r).toMatchObject({ kind: 'ran', node: '/dev/mymmap', runs: [{ run: 1, verdict: 'pass' }, { run: 2, verdict: 'pass' }, { run: 3, verdict: 'pass' }] });
  });

  it('fails each with what the program said: a page of the wrong bytes, the read/write test, a /proc entry that is missing or counts wrong, a signal', () => {
    const r = labTestReport({ ...plan, runs: [1, 2, 2, 3, 3] }, [
      run(1, [...Array(15).fill('matched'), '0xdd 0xcc 0xbb 0xaa']),
      run(2, ['read/write test: Bad address'], 1),
      run(3, ['open /proc/my-vma-stats: No such file or directory', 'failed to show memory usage', 'mmaped :0 MB'], 143, 'after-result'),
    ]);
    expect(r.kind === 'ran' && r.runs.map((x) => [x.verdict, x.reason]).slice(0, 2)).toEqual([
      ['fail', '15/16 pages matched aa bb cc dd; a page starts with 0xdd 0xcc 0xbb 0xaa'],
      ['fail', 'the read/write test failed: 0/48 matched; read/write test: Bad address; it exited with status 1'],
    ]);
    expect(r.kind === 'ran' && r.runs.find((x) => x.run === 3)!.reason).toBe("the driver's /proc entry could not be read: open /proc/my-vma-stats: No such file or directory");
    // The lab's read/write test exits 0 whatever it found: a page of the wrong bytes after write() fails it.
    const silent = labTestReport({ ...plan, runs: [2] }, [run(2, [...Array(16).fill('matched'), 'Write test ...', ...Array(16).fill('0x0 0x0 0x0 0x0'), ...Array(16).fill('matched')])]);
    expect(silent.kind === 'ran' && silent.runs[0]).toMatchObject({ verdict: 'fail', reason: 'the read/write test failed: 32/48 matched; a page showed 0x0 0x0 0x0 0x0' });
    const grewWrong = labTestReport({ ...plan, runs: [3] }, [run(3, ['Memory usage: 4096', 'Memory usage: 4096', 'mmaped :0 MB'], 143, 'after-result')]);
    expect(grewWrong.kind === 'ran' && grewWrong.runs[0]!.reason).toBe("the driver's /proc entry saw the mappings grow by 0 MB, not the 10 MB mapped");
    const killed = labTestReport({ ...plan, runs: [1, 2] }, [run(1, ['matched'], 135)]);
    expect(killed.kind === 'ran' && killed.runs.map((x) => [x.verdict, x.reason])).toEqual([
      ['fail', '1/16 pages matched aa bb cc dd; it was killed by SIGBUS (Bus error)'],
      ['skip', 'it did not run: the guest stopped before it'],
    ]);
    // The program is the submission's: its escape sequences are kept visible, not sent to a terminal.
    const esc = labTestReport({ ...plan, runs: [1] }, [run(1, ['\u001b[8mgotcha'], 1)]);
    expect(esc.kind === 'ran' && esc.runs[0]!.output).toEqual(['\\x1b[8mgotcha']);
    expect(esc.kind === 'ran' && esc.runs[0]!.reason).toBe('0/16 pages matched aa bb cc dd; it printed "\\x1b[8mgotcha"; it exited with status 1');
  });

  it("a skip or a compile failure is reported as planned; the job's env asks the guest for the runs and the node", () => {
    expect(labTestReport({ kind: 'skipped', program: 'test/mmap-test.c', reason: 'arm64' }, undefined)).toEqual({ kind: 'skipped', program: 'test/mmap-test.c', reason: 'arm64' });
    const job = { ...labJob({ id: 9, strategy: 'custom', modulePath: '/m.ko', moduleName: 'm', moduleParams: [], testProgram: '/c/mmap-test', checks: [], pages: 16 }), lab: { runs: [1, 2, 3], node: '/dev/mymmap' } };
    expect(jobEnv(job, { module: 'm', test: 't' }, { traceKeep: false, linkTest: false, arch: 'i686' })).toMatch(/\nLAB_RUNS='1 2 3'\nLAB_NODE='\/dev\/mymmap'\n/);
  });
});
