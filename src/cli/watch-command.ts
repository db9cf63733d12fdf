/**
 * check --watch on the terminal: each check's news on stdout as it comes
 * (--json: each check's report as one line of JSON), the keys on a terminal
 * (r: the full report of the last check; q: quit), and the exit status of
 * the last check when the user quits with q. Ctrl-C goes the way of every
 * command (signals.ts): every guest stopped, 130.
 */
import { watchCheck, type WatchOptions } from '../commands/watch.js';
import type { CheckReport } from '../model/report.js';
import { renderCheckText } from '../report/check-text.js';
import { makeStyle } from '../report/style.js';
import { renderWatchCheck, renderWatchStarted, renderWatchUnchanged, watchKeys } from '../report/watch-text.js';

export async function watchCommand(opts: Omit<WatchOptions, 'signal'>, o: { json?: boolean; color?: boolean }): Promise<void> {
  const style = makeStyle({ color: o.color === false ? false : undefined });
  const stop = new AbortController();
  let last: CheckReport | undefined;
  const keys = keyReader((key) => {
    if (key === 'q') stop.abort();
    // In raw mode Ctrl-C is a key, not a signal: it goes the way a signal does.
    if (key === '\u0003') process.kill(process.pid, 'SIGINT');
    if (key === 'r' && last) process.stdout.write(`\n${renderCheckText(last, style)}\n`);
  });
  try {
    last = await watchCheck({ ...opts, signal: stop.signal }, (e) => {
      if (e.kind === 'checked') {
        last = e.report;
        process.stdout.write(o.json ? `${JSON.stringify(e.report)}\n` : renderWatchCheck({ ...e, at: new Date() }, style));
        if (e.n === 1 && keys && !o.json) process.stdout.write(watchKeys(style));
      } else if (!o.json) {
        process.stdout.write(e.kind === 'started' ? renderWatchStarted(e.n, e.saved, style) : renderWatchUnchanged(e.saved, new Date(), style));
      }
    });
  } finally {
    keys?.close();
  }
  process.exitCode = last?.exitCode ?? 0;
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
