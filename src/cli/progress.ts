/**
 * Where progress goes: on a terminal, a live status area; on a pipe, in CI or
 * with --verbose, plain lines on stderr, each saying how far into the command
 * it is and in which phase (fetch, build, boot or restore, job, ...), so where
 * the time goes can be read off the left margin.
 */
import type { ChalkInstance } from 'chalk';
import type { Progress } from '../model/progress.js';
import { makeStyle } from '../report/style.js';
import { byteBar } from '../report/live-text.js';
import { LiveView } from './live-view.js';

export function progressPrinter(style: ChalkInstance, label = '', write: (text: string) => void = (t) => process.stderr.write(t)): Progress {
  const started = performance.now();
  const finished = new Set<string>();
  return (phase, message, detail) => {
    // A download's byte counts would be a line each: its completion is the one worth a line.
    if (detail?.bytes) {
      const key = `${detail.lane ?? ''}|${message}`;
      if (detail.bytes.done < detail.bytes.total || finished.has(key)) return;
      finished.add(key);
    }
    const at = ((performance.now() - started) / 1000).toFixed(2).padStart(6);
    const text = `${detail?.lane ? `${detail.lane}: ` : ''}${message}${detail?.bytes ? ` ${byteBar(detail.bytes)}` : ''}`;
    write(style.dim(`[${at} s ${label}${phase}] ${text}\n`));
  };
}

/** Progress of a run or check on one kernel or several, however it is shown. */
export interface ProgressOutput {
  /** Progress of one kernel's work (label: its prefix on plain lines). */
  sink(kernel: string, label: string): Progress;
  finish(kernel: string, state: 'done' | 'failed', message: string): void;
  /** Before the report is printed: the live area leaves its last frame. */
  stop(): void;
}

/** A live area only where a person watches a terminal that can redraw; plain lines otherwise. */
export function wantsLiveView(env: NodeJS.ProcessEnv = process.env, stream: NodeJS.WriteStream = process.stderr): boolean {
  return stream.isTTY === true && env.TERM !== 'dumb' && !env.CI && env.MMAPLAB_PLAIN_PROGRESS !== '1';
}

/**
 * Progress for a command: none on a pipe unless --verbose; --verbose means every line (and the
 * commands run) even on a terminal, unless the command always shows progress (live: a terminal gets the live area).
 */
export function progressOutput(o: { verbose?: boolean; json?: boolean; color?: boolean }, how: { live?: boolean } = {}): ProgressOutput | undefined {
  const style = makeStyle({ color: o.color === false ? false : undefined, stream: process.stderr });
  if (!o.verbose && !(process.stderr.isTTY && !o.json)) return undefined;
  if ((o.verbose && !how.live) || !wantsLiveView()) {
    return { sink: (_kernel, label) => progressPrinter(style, label), finish: () => {}, stop: () => {} };
  }
  const view = new LiveView(process.stderr, style);
  return { sink: (kernel) => view.sink(kernel), finish: (k, s, m) => view.finish(k, s, m), stop: () => view.stop() };
}
