/**
 * Progress lines on stderr: each says how far into the command it is and in
 * which phase (fetch, build, boot or restore, job, ...), so where the time
 * goes can be read off the left margin.
 */
import type { ChalkInstance } from 'chalk';

export function progressPrinter(style: ChalkInstance, label = '', write: (text: string) => void = (t) => process.stderr.write(t)) {
  const started = performance.now();
  return (phase: string, message: string): void => {
    const at = ((performance.now() - started) / 1000).toFixed(2).padStart(6);
    write(style.dim(`[${at} s ${label}${phase}] ${message}\n`));
  };
}
