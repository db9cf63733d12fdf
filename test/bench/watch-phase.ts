/**
 * The watch loop's speed: from the save of a one-file driver (a student's,
 * test/fixtures/students/lab-vmalloc) to its new verdict on `check --watch
 * --json`'s stdout, warm, the source edited to fail and back in turns so every
 * save is a real rebuild; against the same edit checked by a plain warm
 * `mmaplab check`, interleaved in the same run (what a student did before).
 */
import { execa } from 'execa';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CheckReport } from '../../dist/model/report.js';
import { PACKAGE_ROOT } from '../../dist/util/paths.js';
import { median } from './stats.js';

const BIN = join(PACKAGE_ROOT, 'bin', 'mmaplab.js');
const GOOD = 'pfn = vmalloc_to_pfn(vmalloc_area + off + done);';
const ALIASED = 'pfn = vmalloc_to_pfn(vmalloc_area + off);';


export interface WatchSample {
  /** Save to verdict on stdout. */
  s: number;
  buildS: number;
  jobS: number;
  status: string;
  /** The one file rebuilt by replaying Kbuild's recorded commands, if it was. */
  replayed: string | undefined;
}

export async function watchPhase(base: Record<string, string>, runs: number) {
  process.stderr.write(`watch: check --watch, save to verdict, against a plain warm check, x${runs}...\n`);
  const tmp = mkdtempSync(join(tmpdir(), 'mmaplab-bench-watch-'));
  const dir = join(tmp, 'lab-vmalloc');
  cpSync(join(PACKAGE_ROOT, 'test', 'fixtures', 'students', 'lab-vmalloc'), dir, { recursive: true });
  const file = join(dir, 'lab_vmalloc.c');
  const original = readFileSync(file, 'utf8');
  let edit = 0;
  // Each save a source never built before: failing and passing in turns, a comment making it new.
  const save = () => {
    edit++;
    writeFileSync(file, `${edit % 2 ? original.replace(GOOD, ALIASED) : original}/* bench edit ${edit} ${process.pid} */\n`);
    return edit % 2 ? 'fail' : 'pass';
  };
  const p = execa(process.execPath, [BIN, 'check', '--watch', '--json', dir], { env: base, reject: false, stdin: 'ignore' });
  const reports: Array<{ at: number; r: CheckReport }> = [];
  let buffered = '';
  p.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      if (line.trim()) reports.push({ at: performance.now(), r: JSON.parse(line) as CheckReport });
    }
  });
  const next = async (n: number) => {
    for (let i = 0; i < 1200 && reports.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    if (reports.length < n) throw new Error(`check --watch gave no verdict ${n}: ${String(p.stderr)}`);
    return reports[n - 1]!;
  };
  const watched: WatchSample[] = [];
  const plain: number[] = [];
  try {
    await next(1);
    for (let i = 0; i < runs; i++) {
      // Let the spare guest be restored and warmed, as it is while a student types.
      await new Promise((r) => setTimeout(r, 2000));
      const want = save();
      const t0 = performance.now();
      const { at, r } = await next(reports.length + 1);
      if (r.status !== want) throw new Error(`the watch said ${r.status} of an edit that should ${want}`);
      watched.push({ s: (at - t0) / 1000, buildS: (r.timings?.buildMs ?? 0) / 1000, jobS: (r.timings?.jobs.reduce((a, j) => a + j.totalMs, 0) ?? 0) / 1000, status: r.status, replayed: r.driver.replayed });
      // The same kind of edit, checked the way it was before --watch.
      const copy = join(tmp, `plain-${i}`);
      cpSync(dir, copy, { recursive: true });
      writeFileSync(join(copy, 'lab_vmalloc.c'), `${readFileSync(file, 'utf8')}/* plain ${i} */\n`);
      const t1 = performance.now();
      await execa(process.execPath, [BIN, 'check', '--json', copy], { env: base, reject: false });
      plain.push((performance.now() - t1) / 1000);
    }
  } finally {
    p.kill('SIGINT');
    await p;
    rmSync(tmp, { recursive: true, force: true });
  }
  const m = { watch: median(watched.map((w) => w.s)), build: median(watched.map((w) => w.buildS)), job: median(watched.map((w) => w.jobS)), plainCheck: median(plain) };
  return { runs, samples: watched, plain, medians: m, ratio: m.watch / m.plainCheck, target: { limit: 1.0, measured: m.watch, verdict: m.watch <= 1.0 ? 'met' : 'missed' } };
}

export function watchMarkdown(x: Awaited<ReturnType<typeof watchPhase>>): string {
  const f = (s: number) => `${s.toFixed(2)} s`;
  return [
    `## check --watch: from a save to the new verdict (medians of ${x.runs}, warm)`,
    '',
    '| what | seconds | aim |',
    '|---|---|---|',
    `| save of lab_vmalloc.c to its verdict on \`check --watch --json\`'s stdout | **${f(x.medians.watch)}** | ≤ 1.0 s: ${x.target.verdict} |`,
    `| of which the rebuild, in the sandbox (${x.samples.filter((w) => w.replayed).length} of ${x.runs} by replaying Kbuild's recorded commands) | ${f(x.medians.build)} | |`,
    `| of which the guest's job (the spare guest restored ahead) | ${f(x.medians.job)} | |`,
    `| the same edit through a plain warm \`mmaplab check\` (baseline, same run) | ${f(x.medians.plainCheck)} | |`,
    `| watch / plain check | ${x.ratio.toFixed(2)}× | |`,
    '',
  ].join('\n');
}
