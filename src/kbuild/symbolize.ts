/**
 * Turning "broken_mmap+0x11/0x1d [null_deref]" into the line of the driver's
 * source it points at: the module is built with debug info (Debian's kernel
 * configs ask for it) and with its build paths mapped to the user's tree, so
 * binutils' addr2line on the .ko answers with the user's own file:line.
 */
import { relative } from 'node:path';
import type { KernelProblem, StackFrame } from '../model/kernel-log.js';
import { run } from '../util/exec.js';

interface Sym {
  value: number;
  section: string;
}

export interface Symbolizer {
  module: string;
  resolve(fn: string, offset: string | undefined): Promise<string | undefined>;
}

/** Read the module's symbol table (function -> section and address); undefined if binutils is missing. */
export async function symbolizer(ko: string, module: string, cwd = process.cwd()): Promise<Symbolizer | undefined> {
  const [sections, symbols] = await Promise.all([
    run('readelf', ['-SW', ko]).catch(() => undefined),
    run('readelf', ['-sW', ko]).catch(() => undefined),
  ]);
  if (!sections?.ok || !symbols?.ok) return undefined;
  const sectionNames = new Map<string, string>();
  for (const m of sections.stdout.matchAll(/^\s*\[\s*(\d+)\]\s+(\S+)/gm)) sectionNames.set(m[1]!, m[2]!);
  const syms = new Map<string, Sym>();
  for (const m of symbols.stdout.matchAll(/^\s*\d+:\s+([0-9a-f]+)\s+\d+\s+FUNC\s+\w+\s+\w+\s+(\d+)\s+(\S+)$/gm)) {
    const section = sectionNames.get(m[2]!);
    if (section) syms.set(m[3]!, { value: Number.parseInt(m[1]!, 16), section });
  }
  const cache = new Map<string, string | undefined>();
  return {
    module,
    async resolve(fn, offset) {
      const sym = syms.get(fn);
      const off = offset ? Number.parseInt(offset.split('/')[0]!.replace(/^0x/, ''), 16) : 0;
      if (!sym || Number.isNaN(off)) return undefined;
      const key = `${fn}+${off}`;
      if (cache.has(key)) return cache.get(key);
      const r = await run('addr2line', ['-j', sym.section, '-e', ko, `0x${(sym.value + off).toString(16)}`]).catch(() => undefined);
      const line = r?.ok ? r.stdout.split('\n')[0]!.trim() : '';
      // "/abs/path/file.c:19", or "file.c:19 (discriminator 1)"; "??:0" when unknown.
      const m = /^(.+?):(\d+)/.exec(line);
      const source = m && m[1] !== '??' ? `${relative(cwd, m[1]!) || m[1]}:${m[2]}` : undefined;
      cache.set(key, source);
      return source;
    },
  };
}

/** Attach source lines to the problems' locations and frames that are in the symbolizer's module. */
export async function symbolizeProblems(problems: readonly KernelProblem[], s: Symbolizer): Promise<void> {
  const inModule = (f: StackFrame) => f.module === s.module;
  for (const p of problems) {
    if (p.location && p.locationModule === s.module) {
      const [fn, offset] = p.location.split('+');
      const src = await s.resolve(fn!, offset);
      if (src) p.locationSource = src;
    }
    for (const f of p.callTrace.filter(inModule)) {
      const src = await s.resolve(f.fn, f.offset);
      if (src) f.source = src;
    }
  }
}
