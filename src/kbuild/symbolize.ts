/**
 * Turning "broken_mmap+0x11/0x1d [null_deref]" into the line of the driver's
 * source it points at: the module is built with debug info (Debian's kernel
 * configs ask for it) and with its build paths mapped to the user's tree, so
 * binutils' addr2line on the .ko answers with the user's own file:line.
 */
import { lstat, readFile } from 'node:fs/promises';
import { relative, resolve as resolvePath, sep } from 'node:path';
import type { Culprit, KernelProblem, StackFrame } from '../model/kernel-log.js';
import type { TracedCalls } from '../model/outcome.js';
import { run, type ExecOptions } from '../util/exec.js';
import { visibleEscapes } from '../util/safe-text.js';
import { isInside } from '../util/paths.js';
import { elfMachineOfFile } from '../util/elf.js';
import { archOfElfMachine, crossPrefix } from '../kernel/arch.js';

/** binutils read the driver's own ELF here: bounded in time and output, like any untrusted input. */
const ON_MODULE: ExecOptions = { timeoutMs: 30_000, maxOutputBytes: 32 << 20 };

interface Sym {
  value: number;
  section: string;
}

export interface Symbolizer {
  module: string;
  /** `returnAddress`: a call trace's frame points past its call; the call is the byte before. */
  resolve(fn: string, offset: string | undefined, returnAddress?: boolean): Promise<string | undefined>;
  /** The lines an inlined helper was called from, innermost first after the line itself ("vmmap.c:153" for a vfree() in a helper inlined there). */
  callers(fn: string, offset: string | undefined, returnAddress?: boolean): Promise<string[]>;
  /** Where the module calls (or tail-jumps to) a kernel function: function, file:line. */
  callSites(callee: string): Promise<Array<{ fn: string; section: string; source: string | undefined }>>;
}

interface CallSite {
  section: string;
  address: number;
  fn: string;
}

/** The binutils that read a module of another architecture than the host's x86 ones: its cross tools (aarch64-linux-gnu-addr2line). */
async function binutilsFor(ko: string): Promise<{ objdump: string; addr2line: string }> {
  const arch = archOfElfMachine(await elfMachineOfFile(ko));
  const prefix = arch ? crossPrefix(arch) : '';
  return { objdump: `${prefix}objdump`, addr2line: `${prefix}addr2line` };
}

/** Every call and jump out of the module, by callee, from objdump's relocations. */
async function moduleCalls(ko: string, objdump: string): Promise<Map<string, CallSite[]>> {
  const r = await run(objdump, ['-dr', '--no-show-raw-insn', ko], ON_MODULE).catch(() => undefined);
  const calls = new Map<string, CallSite[]>();
  if (!r?.ok) return calls;
  let section = '';
  let fn = '';
  let insn: number | undefined;
  for (const line of r.stdout.split('\n')) {
    const sec = /^Disassembly of section (\S+):$/.exec(line);
    if (sec) section = sec[1]!;
    const label = /^[0-9a-f]+ <([^>+]+)>:$/.exec(line);
    if (label) fn = label[1]!;
    // x86's call and jmp; arm64's bl and b (a tail call).
    const ins = /^\s*([0-9a-f]+):\s+(call|jmp|bl|b)\b/.exec(line);
    if (ins) insn = Number.parseInt(ins[1]!, 16);
    else if (/^\s*[0-9a-f]+:\s+\S/.test(line) && !/R_X86_64|R_386|R_AARCH64/.test(line)) insn = undefined;
    const rel = /R_(?:X86_64_PLT32|X86_64_PC32|386_PC32|386_PLT32|AARCH64_CALL26|AARCH64_JUMP26)\s+([\w.]+)(?:[-+]0x[0-9a-f]+)?$/.exec(line);
    if (rel && insn !== undefined) {
      const list = calls.get(rel[1]!) ?? [];
      list.push({ section, address: insn, fn });
      calls.set(rel[1]!, list);
      insn = undefined;
    }
  }
  return calls;
}

/** "/abs/path/file.c:19", or "file.c:19 (discriminator 1)"; "??:0" when unknown. */
function sourceOf(addr2line: string, cwd: string): string | undefined {
  // File names come from the module's debug info: the driver's to write.
  const m = /^(.+?):(\d+)/.exec(visibleEscapes(addr2line.split('\n')[0]!.trim()));
  return m && m[1] !== '??' ? `${relative(cwd, m[1]!) || m[1]}:${m[2]}` : undefined;
}

/** Read the module's symbol table (function -> section and address); undefined if binutils is missing. */
export async function symbolizer(ko: string, module: string, cwd = process.cwd()): Promise<Symbolizer | undefined> {
  const [sections, symbols] = await Promise.all([
    run('readelf', ['-SW', ko], ON_MODULE).catch(() => undefined),
    run('readelf', ['-sW', ko], ON_MODULE).catch(() => undefined),
  ]);
  if (!sections?.ok || !symbols?.ok) return undefined;
  const tools = await binutilsFor(ko);
  const sectionNames = new Map<string, string>();
  for (const m of sections.stdout.matchAll(/^\s*\[\s*(\d+)\]\s+(\S+)/gm)) sectionNames.set(m[1]!, m[2]!);
  const syms = new Map<string, Sym>();
  for (const m of symbols.stdout.matchAll(/^\s*\d+:\s+([0-9a-f]+)\s+\d+\s+FUNC\s+\w+\s+\w+\s+(\d+)\s+(\S+)$/gm)) {
    const section = sectionNames.get(m[2]!);
    if (section) syms.set(m[3]!, { value: Number.parseInt(m[1]!, 16), section });
  }
  const cache = new Map<string, string | undefined>();
  const chains = new Map<string, string[]>();
  let calls: Promise<Map<string, CallSite[]>> | undefined;
  const keyOf = (fn: string, offset: string | undefined, returnAddress: boolean) => {
    const parsed = offset ? Number.parseInt(offset.split('/')[0]!.replace(/^0x/, ''), 16) : 0;
    return { parsed, off: returnAddress && parsed > 0 ? parsed - 1 : parsed, key: `${fn}+${returnAddress && parsed > 0 ? parsed - 1 : parsed}` };
  };
  const resolve = async (fn: string, offset: string | undefined, returnAddress = false): Promise<string | undefined> => {
    const sym = syms.get(fn);
    const { parsed, off, key } = keyOf(fn, offset, returnAddress);
    if (!sym || Number.isNaN(parsed)) return undefined;
    if (cache.has(key)) return cache.get(key);
    const r = await run(tools.addr2line, ['-i', '-j', sym.section, '-e', ko, `0x${(sym.value + off).toString(16)}`], ON_MODULE).catch(() => undefined);
    // With -i: the line itself, then each line the inlined code was called from, outwards.
    const lines = r?.ok ? r.stdout.split('\n').map((l) => sourceOf(l, cwd)).filter((x): x is string => !!x) : [];
    chains.set(key, lines.slice(1));
    cache.set(key, lines[0]);
    return lines[0];
  };
  return {
    module,
    resolve,
    async callers(fn, offset, returnAddress = false) {
      await resolve(fn, offset, returnAddress);
      return chains.get(keyOf(fn, offset, returnAddress).key) ?? [];
    },
    async callSites(callee) {
      calls ??= moduleCalls(ko, tools.objdump);
      const sites = (await calls).get(callee) ?? [];
      return Promise.all(
        sites.map(async (c) => {
          const r = await run(tools.addr2line, ['-j', c.section, '-e', ko, `0x${c.address.toString(16)}`], ON_MODULE).catch(() => undefined);
          return { fn: c.fn, section: c.section, source: r?.ok ? sourceOf(r.stdout, cwd) : undefined };
        }),
      );
    },
  };
}

/**
 * Which files may be quoted: the file names come from the module's debug
 * info, which the driver writes (`#line 1 "/home/you/.ssh/id_rsa"`), so only
 * the submission's own files are read. The default: a plain file below cwd.
 */
export type Quotable = (absPath: string) => Promise<boolean>;

/** A plain C source or header below dir, on a path without hidden folders (not ~/.ssh, ~/.aws). */
export function filesBelow(dir: string): Quotable {
  return async (p) => {
    if (p === dir || !isInside(p, dir) || !/\.(c|h|S|inc)$/.test(p) || p.slice(dir.length).split(sep).some((part) => part.startsWith('.'))) return false;
    return (await lstat(p).catch(() => undefined))?.isFile() === true;
  };
}

export function fileIn(files: readonly string[]): Quotable {
  const set = new Set(files.map((f) => resolvePath(f)));
  return (p) => Promise.resolve(set.has(p));
}

/** A line of the driver's source, for the report to quote; undefined when it cannot be read or is not the driver's to show. */
async function quote(source: string | undefined, cwd: string, quotable: Quotable): Promise<string | undefined> {
  const m = source && /^(.+):(\d+)$/.exec(source);
  if (!m) return undefined;
  const path = resolvePath(cwd, m[1]!);
  if (!(await quotable(path))) return undefined;
  const text = await readFile(path, 'utf8').catch(() => undefined);
  const line = text?.split('\n')[Number(m[2]) - 1]?.trim();
  // A closing brace (where gcc often puts a function's last instruction) says nothing.
  return line && /\w/.test(line) ? line : undefined;
}

/**
 * The driver's own place in a problem. ORC unwinding on Debian's kernels and a
 * tail call (the driver's last call, e.g. `vfree(buf)` ending the exit
 * function) can leave the driver's frame out of the trace: then the module's
 * calls of the kernel functions the trace names are where it came from.
 */
async function culpritOf(p: KernelProblem, s: Symbolizer): Promise<Culprit | undefined> {
  const from = (chain: string[]) => (chain.length ? { calledFrom: chain } : {});
  if (p.location && p.locationModule === s.module) {
    const [fn, offset] = p.location.split('+');
    return { fn: p.location.split('/')[0]!, ...(p.locationSource ? { source: p.locationSource } : {}), ...from(await s.callers(fn!, offset)), how: 'rip' };
  }
  const frame = p.callTrace.find((f) => f.module === s.module && f.reliable) ?? p.callTrace.find((f) => f.module === s.module);
  if (frame) return { fn: `${frame.fn}${frame.offset ? `+${frame.offset.split('/')[0]}` : ''}`, ...(frame.source ? { source: frame.source } : {}), ...from(await s.callers(frame.fn, frame.offset, true)), how: 'trace' };
  // Only for what happened while the driver's own code ran (insmod, rmmod, a check), by reliable frames only:
  // a stale "? __kmalloc" or a report about another task must not be pinned on the driver.
  if (!p.during || p.during === 'boot') return undefined;
  const kernelFrames = p.callTrace.filter((f) => !f.module && f.reliable);
  const named = [...new Set([p.location?.split('+')[0], ...kernelFrames.map((f) => f.fn)].filter((f): f is string => !!f))];
  // insmod runs the init function, rmmod the exit one: their call sites first, when there are any.
  const section = p.during === 'insmod' ? '.init.text' : p.during === 'rmmod' ? '.exit.text' : undefined;
  for (const callee of named) {
    const all = await s.callSites(callee);
    const inStep = all.filter((c) => c.section === section);
    const sites = inStep.length ? inStep : all;
    if (sites.length === 0) continue;
    const sources = [...new Set(sites.map((c) => c.source).filter((x): x is string => !!x))];
    return { fn: [...new Set(sites.map((c) => c.fn))].join(', '), callee, ...(sources.length ? { source: sources.join(', ') } : {}), how: 'call-site' };
  }
  return undefined;
}

/** Attach source lines to the problems' locations and frames that are in the symbolizer's module, and each problem's culprit. */
export async function symbolizeProblems(problems: readonly KernelProblem[], s: Symbolizer, cwd = process.cwd(), quotable: Quotable = filesBelow(cwd)): Promise<void> {
  const inModule = (f: StackFrame) => f.module === s.module;
  for (const p of problems) {
    if (p.location && p.locationModule === s.module) {
      const [fn, offset] = p.location.split('+');
      const src = await s.resolve(fn!, offset);
      if (src) p.locationSource = src;
    }
    for (const f of p.callTrace.filter(inModule)) {
      const src = await s.resolve(f.fn, f.offset, true);
      if (src) f.source = src;
    }
    const culprit = await culpritOf(p, s);
    if (culprit) {
      const code = culprit.how === 'call-site' ? undefined : await quote(culprit.source, cwd, quotable);
      p.culprit = code ? { ...culprit, code } : culprit;
    }
  }
}

/** Traced calls' callers ("my_mmap+0x58/0x80 [vmmap]": a return address) at the driver's file:line, with that line. */
export async function symbolizeTraced(traced: readonly TracedCalls[], s: Symbolizer, cwd = process.cwd(), quotable: Quotable = filesBelow(cwd)): Promise<void> {
  for (const t of traced) {
    const m = /^([\w.]+)\+(0x[0-9a-f]+(?:\/0x[0-9a-f]+)?)(?:\s+\[([\w-]+)\])?$/.exec(t.caller.trim());
    if (!m || (m[3] && m[3] !== s.module)) continue;
    const source = await s.resolve(m[1]!, m[2], true);
    if (!source) continue;
    t.callerSource = source;
    const code = await quote(source, cwd, quotable);
    if (code) t.callerCode = code;
  }
}

/** Everything of a job the module can resolve: its problems and its traced calls. */
export async function symbolizeFindings(problems: readonly KernelProblem[], traced: readonly TracedCalls[], s: Symbolizer, quotable?: Quotable): Promise<void> {
  await symbolizeProblems(problems, s, process.cwd(), quotable);
  await symbolizeTraced(traced, s, process.cwd(), quotable);
}
