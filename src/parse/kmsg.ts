/**
 * Kernel log parsing: printk lines, and the problems a driver can cause
 * (oops, BUG, WARNING, general protection fault, panic, soft lockup, "Bad page
 * state"), each with a title and its call trace. Pure functions over lines, so
 * they run the same on a live console, a job's dmesg slice, or a saved log.
 */

export interface KernelLine {
  /** Seconds since boot, when the line carries a printk timestamp. */
  time: number | undefined;
  text: string;
}

export type ProblemKind = 'oops' | 'bug' | 'warning' | 'gpf' | 'panic' | 'soft-lockup' | 'bad-page' | 'hung-task' | 'rcu-stall';

export interface StackFrame {
  fn: string;
  offset: string | undefined;
  module: string | undefined;
  /** "? fn" frames are guesses the unwinder found on the stack. */
  reliable: boolean;
}

export interface KernelProblem {
  kind: ProblemKind;
  title: string;
  time: number | undefined;
  /** Where the fault happened, from the RIP line, e.g. "seed_mmap+0x1a/0x80 [mmaplab]". */
  location: string | undefined;
  modules: string[];
  callTrace: StackFrame[];
  /** Index of the first line of the report in the lines it was parsed from. */
  line: number;
}

const TIMESTAMP = /^\s*(?:<\d>)?\[\s*(\d+\.\d+)\]\s?(.*)$/;

export function parseKernelLine(raw: string): KernelLine {
  const line = raw.replace(/\r$/, '');
  const m = TIMESTAMP.exec(line);
  if (m) return { time: Number(m[1]), text: m[2]! };
  return { time: undefined, text: line };
}

export function parseKernelLog(text: string): KernelLine[] {
  return text.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1).map(parseKernelLine);
}

/** Problem starters, most specific first. The title is the matched line. */
const STARTERS: Array<[ProblemKind, RegExp]> = [
  ['panic', /^Kernel panic - not syncing: /],
  ['soft-lockup', /^watchdog: BUG: soft lockup/],
  ['bad-page', /^BUG: Bad page (state|map) in process/],
  ['gpf', /^general protection fault/],
  ['oops', /^BUG: (kernel NULL pointer dereference|unable to handle page fault|unable to handle kernel)/],
  ['bug', /^kernel BUG at /],
  ['bug', /^BUG: /],
  ['warning', /^WARNING: CPU: \d+ PID: \d+ at /],
  ['hung-task', /^INFO: task .* blocked for more than/],
  ['rcu-stall', /^rcu: INFO: rcu_(sched|preempt) (self-)?detected stall/],
  ['oops', /^Oops: /],
];

const FRAME = /^\s*(\?\s+)?([A-Za-z_.$][\w.$]*)(\+0x[0-9a-f]+\/0x[0-9a-f]+)?(?:\s+\[([\w-]+)\])?\s*$/;

export function parseFrame(text: string): StackFrame | undefined {
  const m = FRAME.exec(text);
  if (!m) return undefined;
  return { fn: m[2]!, offset: m[3]?.slice(1), module: m[4], reliable: !m[1] };
}

/** Find every problem report in a kernel log. An Oops line right after a BUG line belongs to it. */
export function findProblems(lines: readonly KernelLine[]): KernelProblem[] {
  const out: KernelProblem[] = [];
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!.text;
    const starter = STARTERS.find(([, re]) => re.test(text));
    if (!starter) continue;
    const [kind] = starter;
    const prev = out[out.length - 1];
    // "BUG: kernel NULL pointer dereference" is followed by "#PF: ..." and "Oops: 0000 [#1]": one report.
    if (kind === 'oops' && /^Oops: /.test(text) && prev && i - prev.line < 8 && prev.kind !== 'warning' && prev.kind !== 'panic') continue;
    out.push({ kind, title: text.trim(), time: lines[i]!.time, location: undefined, modules: [], callTrace: [], line: i });
  }
  // Attach RIP, module list and call trace from the lines that follow each starter.
  for (let p = 0; p < out.length; p++) {
    const problem = out[p]!;
    const end = Math.min(lines.length, out[p + 1]?.line ?? lines.length, problem.line + 120);
    let inTrace = false;
    for (let i = problem.line + 1; i < end; i++) {
      const text = lines[i]!.text;
      const rip = /^RIP: 0010:(\S+)/.exec(text);
      if (rip && !problem.location) problem.location = rip[1];
      const mods = /^Modules linked in: (.*)$/.exec(text);
      if (mods) problem.modules = mods[1]!.split(/\s+/).filter(Boolean).map((m) => m.replace(/\(.*\)$/, ''));
      if (/^(Call Trace:|<TASK>)/.test(text.trim())) {
        inTrace = true;
        continue;
      }
      if (inTrace) {
        if (/^(<\/TASK>|---\[ end trace|RIP: 0033|Kernel Offset)/.test(text.trim())) break;
        if (/^<\/?(IRQ|NMI|SOFTIRQ)>$/.test(text.trim())) continue;
        const f = parseFrame(text);
        if (f) problem.callTrace.push(f);
      }
    }
    // A WARNING names its location on the title line: "... at mm/memory.c:123 fn+0x1/0x2 [mod]".
    if (!problem.location && problem.kind === 'warning') {
      problem.location = /\bat (\S+:\d+ \S+)/.exec(problem.title)?.[1];
    }
  }
  return out;
}

/** Lines every out-of-tree module load prints on Debian: expected, never a finding. */
export function isRoutineNoise(text: string): boolean {
  return /loading out-of-tree module taints kernel|module verification failed: signature and\/or required key missing/.test(text);
}

/** Did the kernel reach userspace? Used to tell an early boot failure from a driver crash. */
export function reachedInit(consoleText: string): boolean {
  return /mmaplab-agent: started/.test(consoleText);
}
