/**
 * tracefs lines from the job's kprobe events: which mapping calls the driver
 * made while a check ran, who made them, and what they returned.
 */
import type { TracedCalls } from '../model/outcome.js';

export interface TraceEvent {
  fn: string;
  caller: string;
  ret: number;
}

/** "... remap_pfn_range: (seed_mmap+0x55/0x90 [mmaplab] <- remap_pfn_range) ret=-22" */
const RETURN = /:\s+(\w+):\s+\((.+?) <- (\w+)\)\s+ret=(-?\d+)/;

export function parseTraceLine(line: string): TraceEvent | undefined {
  const m = RETURN.exec(line);
  if (!m) return undefined;
  return { fn: m[3]!, caller: m[2]!, ret: Number(m[4]) };
}

/** "... remap_pfn_range_args: (remap_pfn_range+0x0/0x90) addr=0x7f.. pfn=0x.. size=0x1000": what the driver asked to map. */
const REMAP_ARGS = /:\s+remap_pfn_range_args:\s+\(\S+\)\s+addr=(0x[0-9a-f]+)\s+pfn=(0x[0-9a-f]+)\s+size=(0x[0-9a-f]+)/;

export function parseRemapArgs(line: string): { addr: string; pfn: string; size: number } | undefined {
  const m = REMAP_ARGS.exec(line);
  return m ? { addr: m[1]!, pfn: m[2]!, size: Number.parseInt(m[3]!, 16) } : undefined;
}

/** Calls grouped by function and caller, in the order they first appeared. */
export function summariseTrace(lines: readonly string[]): TracedCalls[] {
  const out: TracedCalls[] = [];
  const remapSizes = new Set<number>();
  for (const line of lines) {
    const args = parseRemapArgs(line);
    if (args) remapSizes.add(args.size);
    const e = parseTraceLine(line);
    if (!e) continue;
    let entry = out.find((c) => c.fn === e.fn && c.caller === e.caller);
    if (!entry) {
      entry = { fn: e.fn, caller: e.caller, calls: 0, returns: {} };
      out.push(entry);
    }
    entry.calls++;
    entry.returns[String(e.ret)] = (entry.returns[String(e.ret)] ?? 0) + 1;
  }
  for (const c of out) if (c.fn === 'remap_pfn_range' && remapSizes.size) c.sizes = [...remapSizes];
  return out;
}

const ERRNO_NAMES: Record<string, string> = {
  '-1': '-EPERM', '-5': '-EIO', '-6': '-ENXIO', '-12': '-ENOMEM', '-13': '-EACCES', '-14': '-EFAULT', '-16': '-EBUSY', '-22': '-EINVAL',
};

export function returnName(ret: string): string {
  return ERRNO_NAMES[ret] ?? ret;
}

/** "remap_pfn_range() returned -EINVAL 16×" */
export function describeCalls(c: TracedCalls): string {
  const parts = Object.entries(c.returns).map(([ret, n]) => `${returnName(ret)} ${n}×`);
  return `${c.fn}() returned ${parts.join(', ')}`;
}
