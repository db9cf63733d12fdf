/**
 * Which bytes a driver's pages should start with, read from its sources: the
 * lab's test program (test/mmap-test.c checks addr[i] against 0xaa, 0xbb, 0xcc,
 * 0xdd) says what the lab wants, and the driver's own stores say what it
 * writes. Bytes stored one by one are in memory order; a u32 store of
 * 0xaabbccdd is dd cc bb aa in memory on a little-endian CPU.
 */
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { LAB_WORD, patternChoice, type PatternChoice } from '../model/pattern.js';

export interface PatternInSource {
  /** The word as mmap-test reads it (little-endian). */
  word: number;
  line: number;
}

const BYTE = /0x(aa|bb|cc|dd)\b/gi;
const MAX_SOURCE_BYTES = 1 << 20;

/** Bytes by index: p[0] = 0xaa; p[i + 1] = 0xbb ... or addr[i] != 0xaa || addr[i + 1] != 0xbb ... */
function indexedBytes(text: string): PatternInSource | undefined {
  const re = /\[([^[\]]*)\]\s*(?:=|==|!=)\s*(?:\(\s*\w+(?:\s+\w+)?\s*\)\s*)?0x(aa|bb|cc|dd)\b/gi;
  const found = new Map<number, { byte: number; line: number }>();
  for (const m of text.matchAll(re)) {
    // [i], [off + 0], [i * PAGE_SIZE + 3]: the trailing constant is the byte's place; [4] or [i + 7] is not one of the four.
    const trailing = /(?:^|\+)\s*(\d+)\s*$/.exec(m[1]!)?.[1];
    const index = trailing === undefined ? 0 : Number(trailing);
    if (index > 3) continue;
    if (!found.has(index)) found.set(index, { byte: Number.parseInt(m[2]!, 16), line: lineAt(text, m.index) });
    if (found.size === 4) break;
  }
  if (![0, 1, 2, 3].every((i) => found.has(i))) return undefined;
  const bytes = [0, 1, 2, 3].map((i) => found.get(i)!.byte);
  if (new Set(bytes).size !== 4) return undefined;
  return { word: wordOfBytes(bytes), line: Math.min(...[...found.values()].map((f) => f.line)) };
}

/**
 * The statements of a source, each with where it starts: the text before each
 * ';' back to the previous ';' or brace, a trailing {...} initializer included.
 * One backward walk per ';', never past the one before: linear in the text,
 * whatever it holds (a regex here took minutes on a long line with no ';').
 */
function* statements(text: string): Generator<{ text: string; at: number }> {
  let previous = -1;
  for (let end = text.indexOf(';'); end >= 0; previous = end, end = text.indexOf(';', end + 1)) {
    let i = end - 1;
    let group = false;
    while (i > previous) {
      const ch = text[i]!;
      if (ch === '}' && !group) {
        const open = text.lastIndexOf('{', i);
        const inner = text.slice(open + 1, i);
        if (open <= previous || inner.includes('}')) break;
        group = true;
        i = open - 1;
        continue;
      }
      if (ch === '{' || ch === '}') break;
      i--;
    }
    yield { text: text.slice(i + 1, end + 1), at: i + 1 };
  }
}

/** Four byte constants in one statement or initializer: test_mem(addr, 0xaa, 0xbb, 0xcc, 0xdd), {0xaa, 0xbb, ...}. */
function listedBytes(text: string): PatternInSource | undefined {
  for (const stmt of statements(text)) {
    const bytes = [...stmt.text.matchAll(BYTE)].map((m) => Number.parseInt(m[1]!, 16));
    if (bytes.length === 4 && new Set(bytes).size === 4) return { word: wordOfBytes(bytes), line: lineAt(text, stmt.at + (/\S/.exec(stmt.text)?.index ?? 0)) };
  }
  return undefined;
}

/** memcpy(p, "\xaa\xbb\xcc\xdd", 4) */
function stringBytes(text: string): PatternInSource | undefined {
  const m = /\\x(aa|bb|cc|dd)\\x(aa|bb|cc|dd)\\x(aa|bb|cc|dd)\\x(aa|bb|cc|dd)/i.exec(text);
  const bytes = m ? [m[1]!, m[2]!, m[3]!, m[4]!].map((b) => Number.parseInt(b, 16)) : [];
  return m && new Set(bytes).size === 4 ? { word: wordOfBytes(bytes), line: lineAt(text, m.index) } : undefined;
}

/** A 32-bit store or compare: *(u32 *)p = 0xaabbccdd, #define PATTERN 0xddccbbaa. */
function wordConstant(text: string): PatternInSource | undefined {
  const m = /0x(aabbccdd|ddccbbaa)\b/i.exec(text);
  return m ? { word: Number.parseInt(m[1]!, 16), line: lineAt(text, m.index) } : undefined;
}

/** The source with its comments blanked (newlines kept, so lines still count), in one pass. */
function withoutComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const block = text.startsWith('/*', i);
    if (!block && !text.startsWith('//', i)) {
      const next = text.indexOf('/', i + 1);
      const to = next < 0 ? text.length : next;
      out += text.slice(i, to);
      i = to;
      continue;
    }
    const end = block ? text.indexOf('*/', i + 2) : text.indexOf('\n', i);
    const stop = end < 0 ? text.length : block ? end + 2 : end;
    out += text.slice(i, stop).replace(/[^\n]/g, ' ');
    i = stop;
  }
  return out;
}

export function patternIn(text: string): PatternInSource | undefined {
  const code = withoutComments(text);
  return indexedBytes(code) ?? listedBytes(code) ?? stringBytes(code) ?? wordConstant(code);
}

function wordOfBytes(bytes: readonly number[]): number {
  return (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
}

function lineAt(text: string, index: number): number {
  return text.slice(0, index).split('\n').length;
}

/** A userspace program: it has main(). The lab's test is one; a driver never is. */
export function isProgram(text: string): boolean {
  return /^\s*int\s+main\s*\(/m.test(text);
}

export async function cFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  const out: string[] = [];
  for (const e of entries) {
    // lstat: a symlink is not read (it could name any file of the host). As the driver's own sources: a file past 1 MiB is not a lab's test program.
    const info = /\.[ch]$/.test(e) ? await lstat(join(dir, e)).catch(() => undefined) : undefined;
    if (info?.isFile() && info.size <= MAX_SOURCE_BYTES) out.push(join(dir, e));
  }
  return out.sort();
}

/** The lab's test programs: in the driver's test/ folder, or its sibling ../test/ (the lab's layout). */
export async function labTests(driverDir: string): Promise<string[]> {
  const dirs = [join(driverDir, 'test'), join(dirname(driverDir), 'test')];
  return (await Promise.all(dirs.map(cFiles))).flat();
}

async function firstPattern(files: readonly string[], keep: (text: string) => boolean): Promise<{ file: string; found: PatternInSource } | undefined> {
  for (const file of files) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (!keep(text)) continue;
    const found = patternIn(text);
    if (found) return { file, found };
  }
  return undefined;
}

/**
 * The pattern `check` expects of a driver: the user's word, else the lab
 * test's, else what the driver writes, else the lab's bytes. Only the user's
 * word and the lab test's are strict about byte order.
 */
export async function choosePattern(opts: { source: string; driverFiles: readonly string[]; override: number | undefined; cwd?: string }): Promise<PatternChoice> {
  if (opts.override !== undefined) return patternChoice(opts.override, 'option', true);
  const cwd = opts.cwd ?? process.cwd();
  const driverDir = (await stat(opts.source).catch(() => undefined))?.isFile() ? dirname(opts.source) : opts.source;
  const at = (file: string, line: number) => `${relative(cwd, file) || basename(file)}:${line}`;
  const test = await firstPattern(await labTests(driverDir), isProgram);
  if (test) return patternChoice(test.found.word, 'lab-test', true, at(test.file, test.found.line));
  const own = await firstPattern(opts.driverFiles.filter((f) => /\.[ch]$/.test(f)), (t) => !isProgram(t));
  if (own) return patternChoice(own.found.word, 'driver', false, at(own.file, own.found.line));
  return patternChoice(LAB_WORD, 'default', false);
}
