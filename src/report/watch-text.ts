/**
 * check --watch on the terminal: after each check, one line of where the
 * driver stands and the checks that turned since the last (✗→✓, ✓→✗), each
 * with its reason; a build error at once with the student's file:line. The
 * full report is renderCheckText's, a key away.
 */
import type { ChalkInstance } from 'chalk';
import type { CellChange, VerdictChange } from '../diagnose/changes.js';
import type { MmaplabError } from '../util/errors.js';
import type { CheckReport, RunReport, Verdict } from '../model/report.js';
import { renderPicture } from './picture-text.js';

const MARK: Record<Verdict, string> = { pass: '✓', fail: '✗', skip: '-' };

function mark(v: Verdict | undefined, c: ChalkInstance): string {
  if (v === undefined) return c.dim('·');
  return v === 'pass' ? c.green(MARK.pass) : v === 'fail' ? c.red.bold(MARK.fail) : c.dim(MARK.skip);
}

function clock(d: Date): string {
  return d.toTimeString().slice(0, 8);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Where the driver stands: PASS, or FAIL with the failing checks named. */
export function standing(r: CheckReport, c: ChalkInstance): string {
  const failed = r.items.filter((i) => i.verdict === 'fail');
  if (!failed.length) return c.green.bold(`PASS (${r.items.filter((i) => i.verdict === 'pass').length} checks)`);
  return c.red.bold(`FAIL: ${failed.length} of ${r.items.length}`) + c.red(` (${failed.map((i) => i.id).join(', ')})`);
}

interface WatchHead {
  n: number;
  saved: readonly string[];
  timings: { sinceSaveMs: number; buildMs: number; checkMs: number };
  at: Date;
}

export interface WatchLine extends WatchHead {
  report: CheckReport;
  changes: readonly VerdictChange[];
}

/** The line every announcement starts with: when, which save, the standing, how long it took. */
function headLine(w: WatchHead, first: string, standingText: string, c: ChalkInstance): string {
  const what = w.saved.length ? `${w.saved.join(', ')} saved` : first;
  const t = w.timings;
  return `${c.dim(`[${clock(w.at)}]`)} ${c.bold(`#${w.n}`)} ${what}: ${standingText} ${c.dim(`${seconds(t.sinceSaveMs)}${w.saved.length ? ' from the save' : ''} (build ${seconds(t.buildMs)}, ${first === 'first run' ? 'run' : 'check'} ${seconds(t.checkMs)})`)}`;
}

export function renderWatchCheck(w: WatchLine, c: ChalkInstance): string {
  const replayed = w.report.driver.replayed ? c.dim(` [${w.report.driver.replayed} recompiled by Kbuild's recorded commands]`) : '';
  const out = [headLine(w, 'first check', standing(w.report, c), c) + replayed];
  for (const ch of w.changes) {
    out.push(`  ${mark(ch.from, c)}→${mark(ch.to, c)} ${ch.title.padEnd(46)} ${ch.to === 'fail' ? c.red(ch.reason) : c.dim(ch.reason)}`);
    if (ch.to === 'fail' && ch.id === 'builds') for (const d of w.report.items.find((i) => i.id === 'builds')?.details ?? []) out.push(`      ${d}`);
    if (ch.to === 'fail' && ch.hint) out.push(`      ${c.yellow('hint:')} ${ch.hint}`);
  }
  // A check that just failed: the mappings that went wrong, page by page.
  if (w.changes.some((ch) => ch.to === 'fail')) {
    for (const r of w.report.results.filter((x) => x.picture?.pages.some((p) => !p.ok))) out.push(...renderPicture(`${c.dim('map')} ${r.check.padEnd(10)} `, r.picture!, c, '  '));
  }
  if (!w.changes.length && w.saved.length) out.push(c.dim('  no verdict changed'));
  return `${out.join('\n')}\n`;
}

export function renderWatchUnchanged(saved: readonly string[], at: Date, c: ChalkInstance): string {
  return `${c.dim(`[${clock(at)}] ${saved.join(', ')} saved: the driver's sources are as last checked`)}\n`;
}

export function renderWatchStarted(n: number, saved: readonly string[], what: 'check' | 'run', c: ChalkInstance): string {
  return c.dim(`#${n} ${saved.join(', ')} saved: rebuilding and ${what === 'check' ? 'checking' : 'running'}…\n`);
}

/** What the keys do, once, after the first check (a terminal only). */
export function watchKeys(c: ChalkInstance): string {
  return c.dim('watching for saves: r = the full report of the last check, q = quit (Ctrl-C too)\n');
}

export interface RunWatchLine extends WatchHead {
  result: { kind: 'ran'; report: RunReport } | { kind: 'build-failed'; error: MmaplabError };
  changes: readonly CellChange[];
}

/** run --watch: the grid's standing and the cells that changed; a build that failed, with the compiler's lines. */
export function renderWatchRun(w: RunWatchLine, c: ChalkInstance): string {
  if (w.result.kind === 'build-failed') {
    const e = w.result.error;
    return `${[headLine(w, 'first run', c.red.bold(e.message), c), ...e.details.map((d) => `      ${d}`)].join('\n')}\n`;
  }
  const r = w.result.report;
  const differ = r.results.filter((x) => !x.matchesExpected).length;
  const standingText = r.status === 'pass' ? c.green.bold(`PASS (${r.results.length} outcomes as the lab expects)`) : c.red.bold(`FAIL: ${differ} of ${r.results.length} outcomes differ from what the lab expects`);
  const out = [headLine(w, 'first run', standingText, c)];
  const width = Math.max(0, ...w.changes.map((ch) => `${ch.strategy}/${ch.check}`.length));
  for (const ch of w.changes) {
    const to = ch.expected ? c.green(ch.to) : c.red.bold(`${ch.to}!`);
    out.push(`  ${`${ch.strategy}/${ch.check}`.padEnd(width)}  ${ch.from === undefined ? '' : `${c.dim(ch.from)} → `}${to}`);
  }
  if (!w.changes.length && w.saved.length) out.push(c.dim('  no cell changed'));
  return `${out.join('\n')}\n`;
}
