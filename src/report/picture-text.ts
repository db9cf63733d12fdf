/**
 * The picture of a mapping on the terminal, one line a mapping: the buffer
 * page each mapped page showed, `0 1 2 … 15` for a mapping that is right,
 * `0 0 0 … 0` for aliases, `·` for pages that faulted or were never reached,
 * `?` for a page that is none of the buffer's. Long mappings are folded into
 * runs so the line stays short.
 */
import type { ChalkInstance } from 'chalk';
import { stripVTControlCharacters } from 'node:util';
import type { MappingPicture, PicturePage } from '../model/picture.js';

/** Up to this many pages are drawn one by one; more are folded into runs. */
const ONE_BY_ONE = 24;

function glyph(p: PicturePage): string {
  return p.shows === 'fault' ? '·' : p.shows === 'unknown' ? '?' : String(p.shows);
}

/** Runs of pages drawn alike: ascending buffer pages (3 4 5), one page repeated (0 0 0), faults. */
interface Run {
  pages: PicturePage[];
  kind: 'ascending' | 'same';
}

function sameKind(a: PicturePage, b: PicturePage): boolean {
  return a.ok === b.ok && typeof a.shows === typeof b.shows;
}

function runsOf(pages: readonly PicturePage[]): Run[] {
  const runs: Run[] = [];
  for (const p of pages) {
    const run = runs[runs.length - 1];
    const last = run?.pages[run.pages.length - 1];
    const step = last && typeof p.shows === 'number' && typeof last.shows === 'number' ? p.shows - last.shows : undefined;
    const fits = run && last && sameKind(last, p) && (run.pages.length === 1 ? step === 1 || p.shows === last.shows : run.kind === 'ascending' ? step === 1 : p.shows === last.shows);
    if (run && fits) {
      if (run.pages.length === 1) run.kind = step === 1 ? 'ascending' : 'same';
      run.pages.push(p);
    } else runs.push({ pages: [p], kind: 'same' });
  }
  return runs;
}

function runText(r: Run): string {
  const first = r.pages[0]!;
  const last = r.pages[r.pages.length - 1]!;
  if (r.pages.length <= 3) return r.pages.map(glyph).join(' ');
  return r.kind === 'ascending' ? `${glyph(first)} ${glyph(r.pages[1]!)} … ${glyph(last)}` : `${glyph(first)}×${r.pages.length}`;
}

type Paint = (ok: boolean, fault: boolean, text: string) => string;

/** The pages as one string, each page (or folded run) painted by whether it is right. */
export function pictureRow(pages: readonly PicturePage[], paint: Paint): string {
  if (pages.length <= ONE_BY_ONE) return pages.map((p) => paint(p.ok, p.shows === 'fault', glyph(p))).join(' ');
  return runsOf(pages)
    .map((r) => paint(r.pages[0]!.ok, r.pages[0]!.shows === 'fault', runText(r)))
    .join(' ');
}

/** What the numbers mean, for the line's reader. */
export function pictureLegend(pic: MappingPicture): string {
  return pic.by === 'index' ? 'the index each page carried' : pic.by === 'frame' ? 'page frames numbered as first seen: a repeated number is an alias' : 'pages told apart by a marker written into each: a repeated number is an alias';
}

/** The picture's lines: the row; where pages are wrong and the lab knows better, the row expected; where it stopped. */
export function renderPicture(label: string, pic: MappingPicture, c: ChalkInstance, indent: string): string[] {
  const paint: Paint = (ok, fault, text) => (fault ? c.dim(text) : ok ? c.green(text) : c.red.bold(text));
  const out = [`${indent}${label}${pictureRow(pic.pages, paint)}`];
  const pad = `${indent}${' '.repeat(stripVTControlCharacters(label).length)}`;
  const expectable = pic.pages.every((p) => p.expect !== null || p.shows === 'fault');
  if (pic.by === 'index' && expectable && pic.pages.some((p) => !p.ok && p.shows !== 'fault')) {
    const expected = pic.pages.map((p) => ({ ...p, shows: p.expect ?? p.shows, ok: true }));
    out.push(c.dim(`${pad}${pictureRow(expected, (_ok, _fault, text) => text)}  expected`));
  }
  if (pic.stoppedAt) out.push(c.dim(`${pad}${pic.stoppedAt.signal} at page ${pic.stoppedAt.page}; the pages after it were never reached`));
  return out;
}
