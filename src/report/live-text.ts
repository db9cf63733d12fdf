/**
 * The live status area on a terminal: a line per kernel (its phase and time,
 * a download's bytes and bar), and under it a line per job running beside the
 * others. Pure: the CLI hands in the state and redraws what this returns.
 */
import type { ChalkInstance } from 'chalk';
import type { ByteCount, Phase } from '../model/progress.js';

export type LiveState = 'running' | 'done' | 'failed' | 'interrupted';

export interface LiveLine {
  /** A kernel (depth 0) or a job under it (depth 1). */
  depth: 0 | 1;
  name: string;
  phase: Phase;
  message: string;
  elapsedMs: number;
  state: LiveState;
  bytes?: ByteCount;
  /** A kernel's jobs that have ended (their lines are gone). */
  jobsDone?: number;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const BAR = 16;

function mark(l: LiveLine, frame: number, c: ChalkInstance): string {
  switch (l.state) {
    case 'running':
      return c.cyan(SPINNER[frame % SPINNER.length]!);
    case 'done':
      return c.green('✓');
    case 'failed':
      return c.red('✗');
    case 'interrupted':
      return c.yellow('!');
  }
}

function megabytes(n: number): string {
  return (n / 1e6).toFixed(1);
}

/** A download as a bar and its megabytes: "[████░░░░] 12.0/48.3 MB". */
export function byteBar(b: ByteCount): string {
  const filled = b.total > 0 ? Math.round((Math.min(b.done, b.total) / b.total) * BAR) : 0;
  return `[${'█'.repeat(filled)}${'░'.repeat(BAR - filled)}] ${megabytes(b.done)}/${megabytes(b.total)} MB`;
}

function cut(text: string, room: number): string {
  if (room <= 1) return '';
  return text.length <= room ? text : `${text.slice(0, room - 1)}…`;
}

function renderLine(l: LiveLine, nameWidth: number, width: number, frame: number, c: ChalkInstance): string {
  const indent = l.depth === 0 ? '' : '  ';
  const name = cut(`${indent}${l.name}`, nameWidth).padEnd(nameWidth);
  const time = `${(l.elapsedMs / 1000).toFixed(1)} s`.padStart(8);
  const phase = (l.state === 'running' ? l.phase : l.state).padEnd(9);
  const jobs = l.jobsDone ? ` (${l.jobsDone} job${l.jobsDone === 1 ? '' : 's'} done)` : '';
  const head = `  ${name} ${phase}${time}  `;
  // On a narrow terminal the message keeps a few characters and the bar goes.
  const withBar = l.bytes && l.state === 'running' ? ` ${byteBar(l.bytes)}` : '';
  const bar = width - head.length - withBar.length >= 8 ? withBar : '';
  const message = cut(`${l.message}${jobs}`, width - head.length - bar.length);
  const colour = l.state === 'failed' ? c.red : l.state === 'running' ? (t: string) => t : c.dim;
  return `${mark(l, frame, c)} ${c.bold(name)} ${c.dim(phase)}${time}  ${colour(message)}${bar}`;
}

/**
 * The area, at most height lines: every kernel's line first, then as many of
 * its jobs as fit, in order; the jobs that do not fit are counted.
 */
export function renderLive(lines: readonly LiveLine[], opts: { width: number; height: number; frame: number }, c: ChalkInstance): string {
  const nameWidth = Math.min(28, Math.max(8, ...lines.map((l) => l.name.length + (l.depth === 0 ? 0 : 2))));
  const room = Math.max(1, opts.height - 1);
  const kernels = lines.filter((l) => l.depth === 0).length;
  let jobRoom = lines.length <= room ? Infinity : Math.max(0, room - kernels - 1);
  const shown = lines.filter((l) => l.depth === 0 || jobRoom-- > 0);
  const out = shown.map((l) => renderLine(l, nameWidth, opts.width, opts.frame, c));
  if (shown.length < lines.length) out.push(c.dim(`  … ${lines.length - shown.length} more job${lines.length - shown.length === 1 ? '' : 's'}`));
  return out.join('\n');
}
