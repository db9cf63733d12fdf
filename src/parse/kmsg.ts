/**
 * Kernel log parsing: printk lines, and the problems a driver can cause
 * (oops, BUG, WARNING, general protection fault, panic, soft lockup, "Bad page
 * state"), each with a title and its call trace. Pure functions over lines, so
 * they run the same on a live console, a job's dmesg slice, or a saved log.
 */

import type { KernelLine, KernelProblem, ProblemKind, StackFrame } from '../model/kernel-log.js';
import { visibleControls } from '../util/safe-text.js';

const TIMESTAMP = /^\s*(?:<\d>)?\[\s*(\d+\.\d+)\]\s?(.*)$/;

/** A kernel line longer than this is cut: the driver's printk text is the driver's to make. */
const MAX_LINE = 2000;

/** One line of a kernel log; its control characters (a driver's escape sequences) shown as \xNN, as /dev/kmsg writes them. */
export function parseKernelLine(raw: string): KernelLine {
  const cut = raw.replace(/\r$/, '');
  const line = visibleControls(cut.length > MAX_LINE ? `${cut.slice(0, MAX_LINE)}…` : cut);
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
  // arm64: "Unable to handle kernel NULL pointer dereference|paging request|write to read-only memory ... at virtual address".
  ['oops', /^Unable to handle kernel .* at virtual address /],
  ['bug', /^kernel BUG at /],
  // BUG: lines the kernel survives (the task goes on): problems, not crashes.
  ['warning', /^BUG: (scheduling while atomic|sleeping function called from invalid context|Bad rss-counter state|workqueue lockup|using smp_processor_id\(\) in preemptible)/],
  ['bug', /^BUG: /],
  ['warning', /^WARNING: CPU: \d+ PID: \d+ at /],
  ['hung-task', /^INFO: task .* blocked for more than/],
  ['rcu-stall', /^rcu: INFO: rcu_(sched|preempt) (self-)?detected stall/],
  ['oom', /^\S.* invoked oom-killer: /],
  ['oops', /^Oops: /],
  // arm64's "Internal error: Oops: 96000006 [#1] SMP" (after a fault's lines, or "Oops - BUG:" after kernel BUG at),
  // and its other fatal exceptions ("Internal error: synchronous external abort: ...", old kernels' "BRK handler:").
  ['oops', /^Internal error: /],
  // A PTE the kernel cannot make sense of (e.g. a bogus pfn mapped to userspace), then "Bad pagetable: 000c [#1]".
  ['oops', /: Corrupted page table at address [0-9a-f]+$/],
  ['oops', /^Bad pagetable: /],
];

/** What kind of problem report a log line starts, if any. */
export function problemKindOf(text: string): ProblemKind | undefined {
  return STARTERS.find(([, re]) => re.test(text))?.[0];
}

// arm64 from 6.13 marks a frame's source: "broken_mmap+0x2c/0x34 [null_deref] (P)".
const FRAME = /^\s*(\?\s+)?([A-Za-z_.$][\w.$]*)(\+0x[0-9a-f]+\/0x[0-9a-f]+)?(?:\s+\[([\w-]+)\])?(?:\s+\([A-Z]+\))?\s*$/;

export function parseFrame(text: string): StackFrame | undefined {
  const m = FRAME.exec(text);
  if (!m) return undefined;
  return { fn: m[2]!, offset: m[3]?.slice(1), module: m[4], reliable: !m[1] };
}

/** WARN(cond, fmt, ...) prints its message between "cut here" and the WARNING line: the why of it. */
function warnMessage(lines: readonly KernelLine[], i: number): { message?: string } {
  const prev = lines[i - 1]?.text.trim();
  return i >= 2 && prev && /^-+\[ cut here \]-+$/.test(lines[i - 2]!.text.trim()) ? { message: prev } : {};
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
    // arm64's fault prints its abort decoding (about 12 lines) before "Internal error: Oops".
    const follows = /^Internal error: /.test(text) ? 24 : 8;
    if (kind === 'oops' && /^(Oops\b|Bad pagetable\b|Internal error: )/.test(text) && prev && i - prev.line < follows && prev.kind !== 'warning' && prev.kind !== 'panic') continue;
    out.push({ kind, title: text.trim(), ...warnMessage(lines, i), time: lines[i]!.time, location: undefined, source: /\bat (\S+:\d+)/.exec(text)?.[1]?.replace(/!$/, ''), modules: [], callTrace: [], line: i, endLine: i + 1 });
  }
  // Attach RIP, module list and call trace from the lines that follow each starter.
  // x86-64's registers, i386's (EIP, EAX, ..., DS, CR0), and arm64's (pc, lr, sp, x0-x29, pstate).
  const REGISTERS = /^(RIP|Code|RSP|RAX|RDX|RBP|R0[89]|R1[0-5]|FS|CS|CR2|Kernel Offset|EIP|EAX|ESI|DS|CR0|pc :|lr :|sp :|x\d+\s*:|pstate:)/;
  const TAIL = /^(Modules linked in|CR2|Kernel Offset|---\[ end )/;
  for (let p = 0; p < out.length; p++) {
    const problem = out[p]!;
    const end = Math.min(lines.length, out[p + 1]?.line ?? lines.length, problem.line + 120);
    let inTrace = false;
    let traceDone = false;
    // arm64 ("Call trace:") ends its trace with no </TASK>: the first line after its frames that is none ends it.
    let arm64Frames: number | undefined;
    for (let i = problem.line + 1; i < end; i++) {
      const text = lines[i]!.text.trim();
      if (inTrace && arm64Frames && !parseFrame(text)) {
        inTrace = false;
        traceDone = true;
      }
      // After the trace only the report's tail may follow; anything else is the log going on.
      if (traceDone && !TAIL.test(text) && !REGISTERS.test(text)) break;
      problem.endLine = i + 1;
      if (/^---\[ end (trace|Kernel panic)/.test(text)) {
        // An oops repeats the registers after its end marker; they still belong to it.
        let j = i + 1;
        while (j < end && REGISTERS.test(lines[j]!.text.trim())) j++;
        problem.endLine = j;
        break;
      }
      // i386 prints "EIP: fn+0x12/0x19 [mod]", without the code segment (its call trace has no <TASK> marks); arm64 "pc : fn+0x2c/0x34 [mod]".
      const rip = /^(?:RIP: 0010:|EIP: |pc : )(\S+)(?: \[([\w-]+)\])?/.exec(text);
      if (rip && !problem.location) {
        problem.location = rip[1];
        if (rip[2]) problem.locationModule = rip[2];
      }
      const mods = /^Modules linked in: (.*)$/.exec(text);
      if (mods) problem.modules = mods[1]!.split(/\s+/).filter(Boolean).map((m) => m.replace(/\(.*\)$/, ''));
      if (/^(Call Trace:|<TASK>|Call trace:)/.test(text)) {
        inTrace = true;
        if (text === 'Call trace:') arm64Frames = 0;
        continue;
      }
      if (!inTrace) continue;
      if (/^<\/TASK>$/.test(text)) {
        inTrace = false;
        traceDone = true;
        continue;
      }
      if (/^<\/?(IRQ|NMI|SOFTIRQ)>$/.test(text)) continue;
      const f = parseFrame(text);
      if (f) problem.callTrace.push(f);
      if (f && arm64Frames !== undefined) arm64Frames++;
    }
  }
  return out;
}

/** Kernel housekeeping that can land in any window of the log; not the driver's doing. */
export function isAmbient(text: string): boolean {
  return /^(tsc: |clocksource: |random: |sched_clock: |hrtimer: |------------\[ cut here \]------------$)/.test(text);
}

/** Lines every out-of-tree module load prints on Debian: expected, never a finding. */
export function isRoutineNoise(text: string): boolean {
  return /loading out-of-tree module taints kernel|module verification failed: signature and\/or required key missing/.test(text);
}

/** Did the kernel reach userspace? Used to tell an early boot failure from a driver crash. */
export function reachedInit(consoleText: string): boolean {
  return /mmaplab-agent: started/.test(consoleText);
}
