/**
 * Progress on a terminal as a live status area (log-update redraws it in
 * place): a line per kernel and per job running, with elapsed times and a
 * download's bar. On stop, and on Ctrl-C, the last frame is left on screen
 * and the cursor shown again, so the terminal is as it was.
 */
import type { ChalkInstance } from 'chalk';
import { createLogUpdate } from 'log-update';
import type { Phase, Progress, ProgressDetail } from '../model/progress.js';
import { renderLive, type LiveLine, type LiveState } from '../report/live-text.js';
import { terminalSafe } from '../util/safe-text.js';
import { writeRawStderr } from './safe-output.js';

interface Track {
  name: string;
  phase: Phase;
  message: string;
  started: number;
  ended?: number;
  state: LiveState;
  bytes?: ProgressDetail['bytes'];
}

interface KernelTrack extends Track {
  jobs: Map<string, Track>;
  jobsDone: number;
}

const active = new Set<LiveView>();
const oneLine = (s: string) => terminalSafe(s).replace(/[\n\t]+/g, ' ');
const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';

/** Ctrl-C: every live area leaves its last frame, marked interrupted, before the message. */
export function interruptLiveViews(): void {
  for (const v of active) v.stop('interrupted');
}

export class LiveView {
  private readonly kernels = new Map<string, KernelTrack>();
  private readonly log;
  private readonly timer: NodeJS.Timeout;
  private frame = 0;

  private readonly showCursor: () => void;
  private readonly now: () => number;

  /** size: the terminal's columns and rows; write: where the area goes (stderr, raw: the text is made safe before). */
  constructor(
    private readonly size: { columns?: number; rows?: number },
    private readonly style: ChalkInstance,
    io: { write?: (text: string) => void; now?: () => number } = {},
  ) {
    const write = io.write ?? ((t: string) => void writeRawStderr(t));
    this.now = io.now ?? (() => performance.now());
    this.showCursor = () => write(SHOW_CURSOR);
    this.log = createLogUpdate({ write, get columns() { return size.columns; }, get rows() { return size.rows; } } as unknown as NodeJS.WriteStream, { showCursor: true });
    write(HIDE_CURSOR);
    process.once('exit', this.showCursor);
    this.timer = setInterval(() => this.draw(), 100);
    this.timer.unref();
    active.add(this);
  }

  /** Progress of one kernel's work. */
  sink(kernel: string): Progress {
    return (phase, message, detail) => this.update(kernel, phase, message, detail);
  }

  /** A kernel's work has ended. */
  finish(kernel: string, state: 'done' | 'failed', message: string): void {
    const k = this.kernel(kernel);
    Object.assign(k, { state, message, ended: this.now(), bytes: undefined });
    for (const j of k.jobs.values()) if (j.state === 'running') Object.assign(j, { state, ended: this.now() });
  }

  /** Leave the last frame on screen (running lines marked with how the command ended). */
  stop(running: 'interrupted' | 'done' = 'done'): void {
    if (!active.delete(this)) return;
    clearInterval(this.timer);
    for (const k of this.kernels.values()) {
      for (const t of [k, ...k.jobs.values()]) if (t.state === 'running') Object.assign(t, { state: running === 'done' ? 'failed' : running, ended: this.now() });
    }
    this.draw();
    this.log.done();
    this.showCursor();
    process.off('exit', this.showCursor);
  }

  private kernel(name: string): KernelTrack {
    let k = this.kernels.get(name);
    if (!k) {
      k = { name, phase: 'fetch', message: '', started: this.now(), state: 'running', jobs: new Map(), jobsDone: 0 };
      this.kernels.set(name, k);
    }
    return k;
  }

  private update(kernel: string, phase: Phase, message: string, detail: ProgressDetail | undefined): void {
    const k = this.kernel(kernel);
    if (!detail?.lane) {
      Object.assign(k, { phase, message, bytes: detail?.bytes });
      return;
    }
    let job = k.jobs.get(detail.lane);
    if (!job) {
      job = { name: detail.lane, phase, message, started: this.now(), state: 'running' };
      k.jobs.set(detail.lane, job);
    }
    Object.assign(job, { phase, message });
    // An ended job's line gives way to the ones still running; the kernel's line counts it.
    if (detail.finished) {
      k.jobs.delete(detail.lane);
      k.jobsDone++;
      // What the kernel's line said before its jobs began is stale by now.
      if (k.jobs.size === 0) Object.assign(k, { phase: 'job', message: '', bytes: undefined });
    }
  }

  private lines(): LiveLine[] {
    const now = this.now();
    const line = (t: Track, depth: 0 | 1, jobsDone?: number): LiveLine => ({
      depth,
      // Made safe before it is measured and cut: an escaped byte is four characters wide.
      name: oneLine(t.name),
      phase: t.phase,
      message: oneLine(t.message),
      elapsedMs: (t.ended ?? now) - t.started,
      state: t.state,
      ...(t.bytes ? { bytes: t.bytes } : {}),
      ...(jobsDone ? { jobsDone } : {}),
    });
    return [...this.kernels.values()].flatMap((k) => {
      // While jobs run, the kernel's own line says how many; their lines say what each does.
      const head = (k.state === 'running' || k.state === 'interrupted') && k.jobs.size > 0 ? { ...line(k, 0, k.jobsDone), phase: 'job' as const, message: `${k.jobs.size} running`, bytes: undefined } : line(k, 0, k.jobsDone);
      return [head, ...[...k.jobs.values()].map((j) => line(j, 1))];
    });
  }

  private draw(): void {
    if (this.kernels.size === 0) return;
    this.frame++;
    this.log(terminalSafe(renderLive(this.lines(), { width: this.size.columns ?? 80, height: this.size.rows ?? 24, frame: this.frame }, this.style)));
  }
}
