/**
 * The rubric: points per check of `check`, by the check's id, read from a
 * small YAML or JSON file, with the lab's default shipped. Its hash is
 * recorded with every score, so a grade says which rubric gave it.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ITEM_TITLES, type ItemId } from '../diagnose/verdicts.js';
import type { Rubric, RubricStamp } from '../model/grade.js';
import { MmaplabError } from '../util/errors.js';

const KNOWN = Object.keys(ITEM_TITLES) as ItemId[];

/**
 * The lab's default, out of 100: building and loading are a fifth, the
 * mapping itself (every page, distinct pages, MAP_PRIVATE, the write, the
 * bounds) most of the rest, and cleaning up the remainder. taint is left out:
 * a W or D taint is already the kernel check's failure.
 */
export const DEFAULT_RUBRIC_TEXT = `# mmaplab grade rubric: points per check of \`mmaplab check\` (by its id).
# A check left out scores nothing and is not a column. passScore: the score
# that counts as a pass (default: every point).
name: memory-mapping lab (mmaplab default)
passScore: 100
points:
  builds: 10          # builds
  loads: 10           # insmod succeeds
  device: 5           # the device opens
  shared: 20          # MAP_SHARED reads the pattern on every page
  distinct-pages: 10  # every page is a different page
  private: 10         # MAP_PRIVATE works or fails cleanly at mmap()
  write: 10           # a write through MAP_SHARED reaches the driver
  read: 5             # read() returns the buffer at the file offset
  oversize: 5         # a mapping larger than the buffer is refused
  readonly: 5         # a read-only mapping cannot write the buffer
  unloads: 3          # rmmod succeeds
  kernel: 3           # no kernel warning, oops or "Bad page state"
  reserved: 2         # no page freed while still marked reserved
  leaks: 2            # no vmalloc area left after rmmod
`;

function bad(source: string, why: string): MmaplabError {
  return new MmaplabError('usage', `rubric ${source}: ${why}`, { hint: `points are given per check id: ${KNOWN.join(', ')} (see mmaplab grade --print-rubric)` });
}

/** A rubric from its text (YAML, of which JSON is a part), checked: known ids, points that are numbers. */
export function parseRubric(text: string, source: string): Rubric {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw bad(source, `not YAML or JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad(source, 'expected a mapping with "points"');
  const d = doc as Record<string, unknown>;
  const pts = d.points;
  if (typeof pts !== 'object' || pts === null || Array.isArray(pts)) throw bad(source, 'expected "points:", a mapping of check ids to points');
  const points: Array<{ id: string; points: number }> = [];
  for (const [id, v] of Object.entries(pts as Record<string, unknown>)) {
    if (!(KNOWN as string[]).includes(id)) throw bad(source, `unknown check '${id}'`);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw bad(source, `${id}: points must be a number of 0 or more, not ${JSON.stringify(v)}`);
    points.push({ id, points: v });
  }
  if (points.length === 0) throw bad(source, 'no check has points');
  const max = points.reduce((s, p) => s + p.points, 0);
  const passScore = d.passScore ?? max;
  if (typeof passScore !== 'number' || passScore < 0 || passScore > max) throw bad(source, `passScore must be a number from 0 to ${max}`);
  const name = typeof d.name === 'string' && d.name.trim() ? d.name.trim() : source;
  return { name, points, passScore };
}

export async function loadRubric(path: string | undefined): Promise<Rubric> {
  if (path === undefined) return parseRubric(DEFAULT_RUBRIC_TEXT, 'default');
  const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new MmaplabError('usage', `rubric ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  return parseRubric(text, path);
}

/** The rubric as a score records it; the hash is over what scores depend on (not the name or comments). */
export function stampOf(r: Rubric): RubricStamp {
  const canonical = JSON.stringify({ passScore: r.passScore, points: r.points.map((p) => [p.id, p.points]) });
  return {
    name: r.name,
    hash: createHash('sha256').update(canonical).digest('hex').slice(0, 16),
    maxScore: r.points.reduce((s, p) => s + p.points, 0),
    passScore: r.passScore,
    points: r.points.map((p) => ({ ...p, title: ITEM_TITLES[p.id as ItemId] })),
  };
}
