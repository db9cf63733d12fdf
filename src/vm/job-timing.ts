/** A job's phases from its records' arrival times (see model/timing.ts). */
import type { GuestRecord } from '../guest/protocol.js';
import type { JobPhases } from '../model/timing.js';

const ms = (x: number) => Math.round(x);

/** records[i] arrived at arrivals[i]; the job was sent at `sent` and ended at `ended` (performance.now()). */
export function jobPhases(records: readonly GuestRecord[], arrivals: readonly number[], sent: number, ended: number): JobPhases {
  const at = (i: number) => arrivals[i] ?? ended;
  const stepAt = (name: string) => records.findIndex((r) => r.t === 'step' && r.step === name);
  const insmod = stepAt('insmod');
  const rmmod = stepAt('rmmod');
  let lastExit = -1;
  records.forEach((r, i) => {
    if (r.t === 'exit') lastExit = i;
  });
  const phases: JobPhases = { startMs: ms((records.length ? at(0) : ended) - sent), totalMs: ms(ended - sent) };
  if (insmod > 0) phases.insmodMs = ms(at(insmod) - at(insmod - 1));
  if (insmod >= 0 && lastExit > insmod) phases.checksMs = ms(at(lastExit) - at(insmod));
  const beforeRmmod = lastExit > insmod ? lastExit : insmod;
  if (rmmod > beforeRmmod && beforeRmmod >= 0) phases.rmmodMs = ms(at(rmmod) - at(beforeRmmod));
  if (rmmod >= 0) phases.endMs = ms(ended - at(rmmod));
  return phases;
}
