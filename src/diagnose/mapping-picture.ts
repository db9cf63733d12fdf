/**
 * A mapping as a row of pages: for each page of the mapping, which page of
 * the driver's buffer it showed. With the lab's indexed pages that is the
 * index the page carried; without (a student's driver) it is the page frame,
 * numbered in order of first appearance (or, where frames cannot be read,
 * the page whose marker it showed), so sixteen distinct pages read
 * 0 1 2 ... 15 and sixteen aliases of one read 0 0 0 ... 0.
 */
import type { CheckResult } from '../model/outcome.js';
import type { MappingPicture, PicturePage } from '../model/picture.js';

/** undefined: the check mapped nothing to look at (mmap refused, the test never ran). */
export function mappingPicture(r: Omit<CheckResult, 'picture'>, pattern?: string): MappingPicture | undefined {
  const o = r.outcome;
  const fault = (o.kind === 'sigbus' || o.kind === 'sigsegv') && o.page !== null ? o.page : undefined;
  // The pages read back, and the one that faulted: the pages after it were never reached.
  // (A check that reads no pages back, shared-write's one word say, has no picture.)
  const size = Math.max(...r.pageReports.map((p) => p.page + 1), fault === undefined ? 0 : fault + 1);
  if (size === 0) return undefined;
  const indexed = r.pageReports.some((p) => p.expectIndex !== null);
  // The word the buffer's pages start with: the one the check expected; else (a result saved before it was kept) a page that read right's, else the most common.
  const counts = new Map<string, number>();
  for (const p of r.pageReports) counts.set(p.word, (counts.get(p.word) ?? 0) + 1);
  const word = (pattern ?? r.pageReports.find((p) => p.ok)?.word ?? [...counts].sort((a, b) => b[1] - a[1])[0]?.[0])?.toLowerCase();
  // Without frames, check's writing test tells pages apart: [page, the page whose marker it showed].
  const showsMarkerOf = new Map(r.aliases?.tested ? r.aliases.pairs : []);
  const byMarker = !indexed && r.aliases?.tested === true && r.pageReports.every((p) => !p.pfn);
  // Nothing tells this mapping's pages apart (MAP_PRIVATE of a PFN mapping: no index, no frame, no marker test),
  // so a picture could only say "?" of pages that may be right: none, unless a page faulted.
  if (!indexed && !byMarker && !r.pageReports.some((p) => p.pfn) && fault === undefined) return undefined;
  const frames = new Map<string, number>();
  const pages: PicturePage[] = [];
  for (let page = 0; page < size; page++) {
    const rep = r.pageReports.find((p) => p.page === page);
    if (!rep) {
      pages.push({ page, shows: 'fault', expect: null, ok: false });
    } else if (rep.word.toLowerCase() !== word) {
      pages.push({ page, shows: 'unknown', expect: rep.expectIndex, ok: false });
    } else if (indexed) {
      pages.push({ page, shows: rep.index, expect: rep.expectIndex, ok: rep.ok });
    } else if (byMarker && (showsMarkerOf.get(page) ?? 0) < 0) {
      // The page lost its marker (it showed none of the markers written): a page of its own, and wrong.
      pages.push({ page, shows: 'unknown', expect: null, ok: false });
    } else if (rep.pfn || byMarker) {
      // A frame (or a marker's page) seen before is an alias of an earlier page.
      const key = rep.pfn ?? `marker ${showsMarkerOf.get(page) ?? page}`;
      const seen = frames.get(key);
      if (seen === undefined) frames.set(key, frames.size);
      pages.push({ page, shows: seen ?? frames.get(key)!, expect: null, ok: rep.ok && seen === undefined });
    } else {
      pages.push({ page, shows: 'unknown', expect: null, ok: rep.ok });
    }
  }
  return { by: indexed ? 'index' : byMarker ? 'marker' : 'frame', pages, ...(fault === undefined ? {} : { stoppedAt: { page: fault, signal: o.kind === 'sigbus' ? 'SIGBUS' : 'SIGSEGV' } }) };
}
