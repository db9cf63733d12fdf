/**
 * The driver's mmap handler, for mmaplab debug's breakpoint: the function a
 * `struct file_operations` initializer names in `.mmap = fn` (or a `struct
 * proc_ops` in `.proc_mmap = fn`), read from the driver's sources, and
 * confirmed against the functions the built .ko defines. A name that is not
 * one of them (a macro, a pointer) is not used: gdb would break nowhere.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runChecked } from '../util/exec.js';
import { requireTool } from '../util/tools.js';
import type { MmapHandler } from '../model/debug.js';

export type { MmapHandler } from '../model/debug.js';

interface Initializer {
  name: string;
  file: string;
  line: number;
  via: 'file_operations' | 'proc_ops';
}

/** C source without its comments (kept the same length in lines, so line numbers hold). */
export function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (c) => c.replace(/[^\n]/g, ' '));
}

/** Where the initializer that opens at `open` (the index of its `{`) closes. */
function closingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return i;
  }
  return text.length;
}

/** Every `.mmap = fn` of a file_operations and `.proc_mmap = fn` of a proc_ops initialized in one source file. */
export function mmapInitializers(text: string, file: string): Initializer[] {
  const src = withoutComments(text);
  const out: Initializer[] = [];
  const struct = /struct\s+(file_operations|proc_ops)\s+[A-Za-z_]\w*\s*(?:\[[^\]]*\])?\s*=\s*\{/g;
  for (let m = struct.exec(src); m; m = struct.exec(src)) {
    const via = m[1] as Initializer['via'];
    const open = m.index + m[0].length - 1;
    const body = src.slice(open, closingBrace(src, open));
    const field = via === 'proc_ops' ? /\.proc_mmap\s*=\s*&?\s*([A-Za-z_]\w*)/g : /\.mmap\s*=\s*&?\s*([A-Za-z_]\w*)/g;
    for (let f = field.exec(body); f; f = field.exec(body)) {
      const line = src.slice(0, open + f.index).split('\n').length;
      out.push({ name: f[1]!, file, line, via });
    }
  }
  return out;
}

/** The handler among the initializers, as one of the .ko's functions (`functions`). */
export function pickMmapHandler(found: readonly Initializer[], functions: ReadonlySet<string>): MmapHandler {
  if (!found.length) return { kind: 'none', why: 'no `.mmap = fn` in a struct file_operations (nor `.proc_mmap = fn` in a struct proc_ops) in the driver\'s sources' };
  const real = found.filter((i) => functions.has(i.name));
  if (!real.length) return { kind: 'none', why: `the driver's sources name ${[...new Set(found.map((i) => i.name))].join(', ')} as its mmap handler, but the built module defines no such function` };
  const [first, ...rest] = real;
  const others = [...new Set(rest.map((i) => i.name).filter((n) => n !== first!.name))];
  const at = { name: first!.name, file: first!.file, line: first!.line, via: first!.via };
  return others.length ? { kind: 'several', ...at, others } : { kind: 'found', ...at };
}

/** The symbols of one type (FUNC, OBJECT) an ELF object defines, from `readelf -sW` output; C identifiers only. */
export function definedSymbols(readelfSymbols: string, type: 'FUNC' | 'OBJECT'): Set<string> {
  const out = new Set<string>();
  for (const line of readelfSymbols.split('\n')) {
    // Num: Value Size Type Bind Vis Ndx Name
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f[3] === type && f[6] !== 'UND' && /^[A-Za-z_]\w*$/.test(f[7]!)) out.add(f[7]!);
  }
  return out;
}

export function definedFunctions(readelfSymbols: string): Set<string> {
  return definedSymbols(readelfSymbols, 'FUNC');
}

/**
 * The driver's mmap handler from its C sources under `root` (files relative
 * to it) and the built .ko, and the .ko's variables: where the sources name
 * no handler, gdb looks among them for a file_operations or proc_ops whose
 * mmap the driver set at run time (gdb/script.ts).
 */
export async function findMmapHandler(root: string, files: readonly string[], ko: string): Promise<{ handler: MmapHandler; objects: string[] }> {
  const found: Initializer[] = [];
  for (const f of files.filter((x) => x.endsWith('.c'))) {
    found.push(...mmapInitializers(await readFile(join(root, f), 'utf8'), f));
  }
  const r = await runChecked('build', 'readelf -sW', requireTool('readelf'), ['-sW', ko]);
  return { handler: pickMmapHandler(found, definedFunctions(r.stdout)), objects: [...definedSymbols(r.stdout, 'OBJECT')] };
}
