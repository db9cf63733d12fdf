/**
 * Submissions that are the same code: the sources' text with comments and
 * all whitespace removed, and, given the lab's skeleton, every line the
 * skeleton has too, hashed. Equal hashes are a hint for the teacher that two
 * students handed in one driver, nothing more.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listFiles } from '../util/fsx.js';

const SOURCE = /\.(c|h)$/;

/** C without its comments; string and character literals are kept as they are. */
export function stripComments(text: string): string {
  return text.replace(/("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')|\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (m, literal: string | undefined) => literal ?? (m.startsWith('/*') ? m.replace(/[^\n]/g, '') : ''));
}

/** The lines of a source as compared: comments gone, whitespace gone, empty lines dropped. */
export function normalizedLines(text: string): string[] {
  return stripComments(text)
    .split('\n')
    .map((l) => l.replace(/\s+/g, ''))
    .filter(Boolean);
}

async function sourceTexts(dir: string): Promise<string[]> {
  const files = (await listFiles(dir)).filter((f) => SOURCE.test(f));
  return Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')));
}

/** The skeleton's lines, as normalizedLines gives them. */
export async function skeletonLines(dir: string | undefined): Promise<ReadonlySet<string>> {
  if (!dir) return new Set();
  return new Set((await sourceTexts(dir)).flatMap(normalizedLines));
}

/** The hash of a submission's own code: file names and order do not count. */
export async function similarityHash(dir: string, skeleton: ReadonlySet<string>): Promise<string | undefined> {
  const own = (await sourceTexts(dir)).map((t) => normalizedLines(t).filter((l) => !skeleton.has(l)).join('\n')).filter(Boolean).sort();
  if (own.length === 0) return undefined;
  return createHash('sha256').update(own.join('\0')).digest('hex').slice(0, 16);
}
