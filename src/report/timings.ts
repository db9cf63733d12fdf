/** Where each job's time went (--verbose): one line per job, from the report's timings. */
import type { ChalkInstance } from 'chalk';
import type { JobTiming } from '../model/timing.js';

const ms = (x: number | undefined) => (x === undefined ? '     -' : `${String(x).padStart(4)} ms`);

export function renderJobTimings(jobs: readonly JobTiming[], c: ChalkInstance, label = ''): string {
  if (!jobs.length) return '';
  const out = [c.bold(`${label}where the jobs' time went (host clock; restore 0: a guest that served an earlier job)`)];
  out.push(c.dim('  job  guest  restore   start  insmod  checks   rmmod     end   total  label'));
  for (const j of jobs) {
    const guest = `${j.guest}${j.servedBefore ? `+${j.servedBefore}` : ''}`;
    out.push(`  ${String(j.job).padStart(3)}  ${guest.padStart(5)}  ${ms(j.restoreMs)} ${ms(j.startMs)} ${ms(j.insmodMs)} ${ms(j.checksMs)} ${ms(j.rmmodMs)} ${ms(j.endMs)} ${ms(j.totalMs)}  ${j.label}`);
  }
  return `${out.join('\n')}\n`;
}
