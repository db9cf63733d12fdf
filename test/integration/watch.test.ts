/**
 * check --watch on a real guest: a student's driver (test/fixtures/students/
 * lab-vmalloc, copied) edited from passing to failing, to not compiling, and
 * back, each save re-checked; only what changed is announced; Ctrl-C leaves
 * nothing running.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processesMatching, qemuProcesses, startCli } from './cli.js';

afterEach(() => {
  expect(qemuProcesses()).toEqual([]);
});

const GOOD = 'pfn = vmalloc_to_pfn(vmalloc_area + off + done);';
/** Every page mapped to the first: the kernel pointer never advances. */
const ALIASED = 'pfn = vmalloc_to_pfn(vmalloc_area + off);';

/** A check's announcement: its head line and the lines of the checks that turned (mark→mark title). */
interface Announced {
  head: string;
  changes: string[];
  text: string;
}

function announcements(out: string): Announced[] {
  return out
    .split(/^(?=\[\d\d:\d\d:\d\d\] #\d+ )/m)
    .filter((b) => /^\[\d\d:\d\d:\d\d\] #\d+ /.test(b))
    .map((b) => {
      const lines = b.split('\n');
      return { head: lines[0]!, changes: lines.slice(1).filter((l) => /^ {2}\S→\S /.test(l)).map((l) => l.trim().replace(/\s{2,}.*$/, '')), text: b };
    });
}

/** A watch's stdout as it comes, and its n-th announcement, waited for (a minute at most). */
function follow(p: ReturnType<typeof startCli>): { output: () => string; nth: (n: number) => Promise<Announced> } {
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return {
    output: () => out,
    nth: async (n) => {
      for (let i = 0; i < 1200 && announcements(out).length < n; i++) await new Promise((r) => setTimeout(r, 100));
      const a = announcements(out);
      expect(a.length, `${out}\n${String(p.stderr)}`).toBeGreaterThanOrEqual(n);
      return a[n - 1]!;
    },
  };
}

describe('mmaplab check --watch', () => {
  it('re-checks on every save, announcing only the checks that turned; a syntax error at once with its line; Ctrl-C leaves nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmaplab-watch-'));
    cpSync('test/fixtures/students/lab-vmalloc', dir, { recursive: true });
    const file = join(dir, 'lab_vmalloc.c');
    const original = readFileSync(file, 'utf8');
    expect(original).toContain(GOOD);
    const state = mkdtempSync(join(tmpdir(), 'mmaplab-watch-state-'));
    const p = startCli(['check', '--watch', dir], { MMAPLAB_STATE_DIR: state });
    const w = follow(p);
    const checked = w.nth;

    try {
      const first = await checked(1);
      expect(first.head).toMatch(/#1 first check: PASS/);
      expect(first.changes).toEqual([]);

      // An editor's own files (vim's swap and its 4913 probe) are not saves of the driver.
      writeFileSync(join(dir, '.lab_vmalloc.c.swp'), 'x');
      writeFileSync(join(dir, '4913'), '');
      writeFileSync(file, original.replace(GOOD, ALIASED));
      const aliased = await checked(2);
      expect(aliased.head).toMatch(/#2 lab_vmalloc\.c saved: FAIL: 1 of \d+ \(distinct-pages\).*\[lab_vmalloc\.c recompiled by Kbuild's recorded commands\]$/);
      expect(aliased.changes).toEqual(['✓→✗ every page is a different page']);
      // The mapping that went wrong, page by page: sixteen pages, all the first.
      expect(aliased.text).toMatch(/map shared {5}0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n/);

      writeFileSync(file, original.replace(GOOD, 'pfn = vmalloc_to_pfn(vmalloc_area + off + done)'));
      const broken = await checked(3);
      expect(broken.head).toMatch(/#3 lab_vmalloc\.c saved: FAIL: 1 of \d+ \(builds\)/);
      // Only the build turned: the checks it did not reach keep their verdicts.
      expect(broken.changes).toEqual(['✓→✗ builds']);
      expect(broken.text).toMatch(/lab_vmalloc\.c:90:\d+: error: expected .;. before .ret./);

      writeFileSync(file, original);
      const fixed = await checked(4);
      expect(fixed.head).toMatch(/#4 lab_vmalloc\.c saved: PASS/);
      expect(fixed.changes).toEqual(['✗→✓ builds', '✗→✓ every page is a different page']);

      // A save that changes nothing is not checked again.
      writeFileSync(file, original);
      for (let i = 0; i < 50 && !/as last checked/.test(w.output()); i++) await new Promise((r) => setTimeout(r, 100));
      expect(w.output()).toMatch(/lab_vmalloc\.c saved: the driver's sources are as last checked/);
      expect(announcements(w.output())).toHaveLength(4);

    } finally {
      p.kill('SIGINT');
    }
    const r = await p;
    expect(r.exitCode).toBe(130);
    expect(processesMatching(dir)).toEqual([]);
    // One session directory: a folder per check, every guest's console in console.log, the last check's results.
    const [session] = readdirSync(join(state, 'runs'));
    const kept = readdirSync(join(state, 'runs', session!));
    expect(kept).toEqual(expect.arrayContaining(['check-1', 'check-2', 'check-3', 'check-4', 'console.log', 'results.json']));
    expect(JSON.parse(readFileSync(join(state, 'runs', session!, 'results.json'), 'utf8'))).toMatchObject({ command: 'check', status: 'pass' });
    expect(readFileSync(join(state, 'runs', session!, 'console.log'), 'utf8')).toMatch(/job 16 \(custom\)/);
    // The one-file change was rebuilt by replaying Kbuild's recorded commands, in the sandbox as ever; the build after the
    // failed one by Kbuild again. The replayed module is the one that was checked: it aliased, as the edit said.
    const report = (n: number) => JSON.parse(readFileSync(join(state, 'runs', session!, `check-${n}`, 'results.json'), 'utf8')) as { driver: { replayed?: string; isolation?: { kind: string } } };
    expect(report(2).driver).toMatchObject({ replayed: 'lab_vmalloc.c', isolation: { kind: 'sandbox' } });
    expect(report(4).driver.replayed).toBeUndefined();
  }, 180_000);

  it('run --watch --module-dir: the grid run again on a save, the cells that changed announced; Ctrl-C leaves nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmaplab-watch-run-'));
    cpSync('kernel-module', dir, { recursive: true });
    const file = join(dir, 'strategy_seed.c');
    const seed = readFileSync(file, 'utf8');
    const loop = /\tfor \(i = 0; i < length; i \+= PAGE_SIZE\) \{\n\t\tpfn = vmalloc_to_pfn\(area \+ i\);\n\t\tremap_pfn_range\([^;]*;\n\t\}\n\treturn 0;/;
    expect(seed).toMatch(loop);
    const p = startCli(['run', '--watch', '--module-dir', dir]);
    const w = follow(p);
    const ran = w.nth;
    try {
      // A driver of the user's own runs as one "custom" row, held to every check: the seed's MAP_PRIVATE SIGBUS is not what it should do.
      const first = await ran(1);
      expect(first.head).toMatch(/#1 first run: FAIL: \d+ of 9 outcomes differ/);
      expect(first.text).toMatch(/^ {2}custom\/private +SIGBUS@0!$/m);
      // remap_vmalloc_range() on memory vmalloc() (not vmalloc_user()) gave: every mapping refused.
      writeFileSync(file, seed.replace(loop, '\t(void)pfn;\n\t(void)i;\n\treturn remap_vmalloc_range(vma, area, vma->vm_pgoff);'));
      const second = await ran(2);
      expect(second.head).toMatch(/#2 strategy_seed\.c saved: FAIL/);
      expect(second.text).toMatch(/^ {2}custom\/private +SIGBUS@0 → EINVAL!$/m);
      expect(second.text).toMatch(/^ {2}custom\/shared +ok → EINVAL!$/m);
      // A build that fails: the compiler's line, at once; the grid is not run.
      writeFileSync(file, seed.replace(loop, '\treturn remap_vmalloc_range(vma, area, vma->vm_pgoff)'));
      const third = await ran(3);
      expect(third.head).toMatch(/#3 strategy_seed\.c saved: the driver in .* does not compile/);
      expect(third.text).toMatch(/strategy_seed\.c:\d+:\d+: error: expected .;./);
    } finally {
      p.kill('SIGINT');
    }
    const r = await p;
    expect(r.exitCode).toBe(130);
    expect(processesMatching(dir)).toEqual([]);
  }, 180_000);

  it('a build that leaves its source a link to a host file in the kept tree: the next save replaces the link, the host file is untouched', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmaplab-watch-link-'));
    const victim = join(mkdtempSync(join(tmpdir(), 'mmaplab-watch-victim-')), 'victim');
    writeFileSync(victim, 'a host file\n');
    cpSync('test/fixtures/drivers/misc-device/miscmap.c', join(dir, 'miscmap.c'));
    // After compiling, the build makes its own copy of miscmap.c a link to the host file (a target Kbuild makes after the object).
    writeFileSync(join(dir, 'Kbuild'), `obj-m := miscmap.o\nalways-y += evil\n$(obj)/evil: $(obj)/miscmap.o\n\tln -sf ${victim} $(obj)/miscmap.c; touch $@\n`);
    const p = startCli(['check', '--watch', dir]);
    const w = follow(p);
    const checked = w.nth;
    try {
      expect((await checked(1)).head).toMatch(/#1 first check: PASS/);
      writeFileSync(join(dir, 'miscmap.c'), `${readFileSync(join(dir, 'miscmap.c'), 'utf8')}/* a student's edit */\n`);
      expect((await checked(2)).head).toMatch(/#2 miscmap\.c saved: PASS .*recompiled by Kbuild's recorded commands/);
    } finally {
      p.kill('SIGINT');
    }
    await p;
    expect(readFileSync(victim, 'utf8')).toBe('a host file\n');
  }, 120_000);
});
