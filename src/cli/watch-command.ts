/**
 * check --watch and run --watch on the terminal: each check's news on stdout
 * as it comes (--json: each report as one line of JSON), the keys on a
 * terminal (r: the full report of the last check; q: quit), and the exit
 * status of the last check when the user quits with q. Ctrl-C goes the way
 * of every command (signals.ts): every guest stopped, 130.
 */
import { watchCheck, watchRun, type RunWatchEvent, type WatchEvent, type WatchOptions } from '../commands/watch.js';
import type { RunOptions } from '../commands/run.js';
import { kernelError } from '../matrix/model.js';
import { renderCheckText } from '../report/check-text.js';
import { makeStyle } from '../report/style.js';
import { renderRunText } from '../report/text.js';
import { renderWatchCheck, renderWatchRun, renderWatchStarted, renderWatchUnchanged, watchKeys } from '../report/watch-text.js';

type Style = ReturnType<typeof makeStyle>;
type Printed = { json: string | undefined; text: string; full: string | undefined; first: boolean };

/** The loop's events on stdout and the keys, whichever watch it is. */
async function watching<E extends { kind: string }>(o: { json?: boolean; color?: boolean }, start: (signal: AbortSignal, on: (e: E) => void) => Promise<{ exitCode: number } | undefined>, print: (e: E, style: Style) => Printed | string): Promise<void> {
  const style = makeStyle({ color: o.color === false ? false : undefined });
  const stop = new AbortController();
  let full: string | undefined;
  const keys = keyReader((key) => {
    if (key === 'q') stop.abort();
    // In raw mode Ctrl-C is a key, not a signal: it goes the way a signal does.
    if (key === '\u0003') process.kill(process.pid, 'SIGINT');
    if (key === 'r' && full) process.stdout.write(`\n${full}\n`);
  });
  try {
    const last = await start(stop.signal, (e) => {
      const p = print(e, style);
      if (typeof p === 'string') {
        if (!o.json) process.stdout.write(p);
        return;
      }
      full = p.full ?? full;
      if (o.json) {
        if (p.json) process.stdout.write(`${p.json}\n`);
      } else process.stdout.write(p.text + (p.first && keys ? watchKeys(style) : ''));
    });
    process.exitCode = last?.exitCode ?? 0;
  } finally {
    keys?.close();
  }
}

const noteText = (e: Extract<WatchEvent, { kind: 'started' | 'unchanged' }>, style: Style) => (e.kind === 'started' ? renderWatchStarted(e.n, e.saved, e.what, style) : renderWatchUnchanged(e.saved, new Date(), style));

export function watchCheckCommand(opts: Omit<WatchOptions, 'signal'>, o: { json?: boolean; color?: boolean }): Promise<void> {
  return watching<WatchEvent>(
    o,
    (signal, on) => watchCheck({ ...opts, signal }, on),
    (e, style): Printed | string =>
      e.kind === 'checked' ? { json: JSON.stringify(e.report), text: renderWatchCheck({ ...e, at: new Date() }, style), full: renderCheckText(e.report, style), first: e.n === 1 } : noteText(e, style),
  );
}

export function watchRunCommand(opts: RunOptions, o: { json?: boolean; color?: boolean }): Promise<void> {
  return watching<RunWatchEvent>(
    o,
    (signal, on) => watchRun({ ...opts, signal }, on),
    (e, style): Printed | string => {
      if (e.kind !== 'ran') return noteText(e, style);
      const r = e.result;
      // A build that failed is, in JSON, what a matrix says of a kernel that could not be tried.
      const json = JSON.stringify(r.kind === 'ran' ? r.report : { command: 'run', status: 'error', error: kernelError(r.error) });
      return { json, text: renderWatchRun({ ...e, at: new Date() }, style), full: r.kind === 'ran' ? renderRunText(r.report, style) : undefined, first: e.n === 1 };
    },
  );
}

/** Single keys from a terminal (raw mode); undefined when stdin is not one. */
function keyReader(onKey: (key: string) => void): { close(): void } | undefined {
  const input = process.stdin;
  if (!input.isTTY) return undefined;
  input.setRawMode(true);
  input.setEncoding('utf8');
  const listener = (data: string) => {
    for (const ch of data) onKey(ch);
  };
  input.on('data', listener);
  input.resume();
  return {
    close() {
      input.off('data', listener);
      input.setRawMode(false);
      input.pause();
    },
  };
}
