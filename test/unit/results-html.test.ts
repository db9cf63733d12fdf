/** The picture of a mapping, and the HTML report rendered from captured real results. */
import { describe, expect, it } from 'vitest';
import { assembleMatrix } from '../../src/matrix/model.js';
import type { CheckResult, PageReport } from '../../src/model/outcome.js';
import type { CheckReport } from '../../src/model/report.js';
import { mappingPicture } from '../../src/diagnose/mapping-picture.js';
import { renderResultsHtml } from '../../src/report/results-html.js';
import { fixture } from '../helpers.js';

const page = (p: Partial<PageReport> & { page: number }): PageReport => ({ addr: '0x0', word: '0xddccbbaa', index: 0, expectIndex: null, pfn: null, ok: true, ...p });

function result(r: Partial<CheckResult>): CheckResult {
  return { strategy: 'custom', check: 'shared', mode: 'shared', outcome: { kind: 'ok', pagesOk: 16, pages: 16 }, pagesOk: 16, pages: 16, expected: { kind: 'ok' }, matchesExpected: true, exitStatus: 0, exitDescription: '', pageReports: [], seedPrintf: undefined, traced: [], kernelLog: [], explanation: undefined, ...r };
}

describe('the picture of a mapping', () => {
  it('shows the lab index each page carried', () => {
    const pic = mappingPicture(result({ pageReports: [0, 1, 2].map((i) => page({ page: i, index: i === 2 ? 0 : i, expectIndex: i, ok: i !== 2 })) }));
    expect(pic).toEqual({ by: 'index', pages: [{ page: 0, shows: 0, expect: 0, ok: true }, { page: 1, shows: 1, expect: 1, ok: true }, { page: 2, shows: 0, expect: 2, ok: false }] });
  });

  it('numbers page frames as first seen: an alias repeats its number and is not ok', () => {
    const pic = mappingPicture(result({ pageReports: ['0x10', '0x20', '0x10'].map((pfn, i) => page({ page: i, pfn })) }));
    expect(pic?.pages.map((p) => [p.shows, p.ok])).toEqual([[0, true], [1, true], [0, false]]);
  });

  it('without frames, tells pages apart by the marker each showed', () => {
    const pic = mappingPicture(result({ pageReports: [0, 1, 2, 3].map((i) => page({ page: i })), aliases: { tested: true, pairs: [[0, 3], [1, 3], [2, 3]] } }));
    expect(pic).toMatchObject({ by: 'marker' });
    expect(pic?.pages.map((p) => p.shows)).toEqual([0, 0, 0, 0]);
  });

  it('never calls a page an alias, or a buffer page, on what it did not show', () => {
    // Pages 1 and 3 lost their markers: neither is an alias of the other, and neither is good.
    const lost = mappingPicture(result({ pageReports: [0, 1, 2, 3].map((i) => page({ page: i })), aliases: { tested: true, pairs: [[1, -1], [3, -1]] } }));
    expect(lost?.pages.map((p) => [p.shows, p.ok])).toEqual([[0, true], ['unknown', false], [1, true], ['unknown', false]]);
    // A page that does not start with the buffer's word is not page 0, whatever its index word reads.
    const foreign = mappingPicture(result({ pageReports: [0, 1, 2].map((i) => page({ page: i, index: i === 2 ? 0 : i, expectIndex: i, word: i === 2 ? '0x00000000' : '0xddccbbaa', ok: i !== 2 })) }));
    expect(foreign?.pages.map((p) => p.shows)).toEqual([0, 1, 'unknown']);
  });

  it('a page is the buffer\'s by the word the check expected, not by what most pages read', () => {
    // Seven pages right, nine zero pages (the driver mapped fresh zeroed pages past the seventh): the zeros are none of the buffer's.
    const reports = Array.from({ length: 16 }, (_, i) => page({ page: i, pfn: `0x${i}`, word: i < 7 ? '0xddccbbaa' : '0x00000000', ok: i < 7 }));
    expect(mappingPicture(result({ pageReports: reports }), '0xddccbbaa')?.pages.map((p) => p.shows)).toEqual([0, 1, 2, 3, 4, 5, 6, ...Array(9).fill('unknown')]);
    // A result saved before the expected word was kept: a page that read right tells it.
    expect(mappingPicture(result({ pageReports: reports }))?.pages.map((p) => p.shows)).toEqual([0, 1, 2, 3, 4, 5, 6, ...Array(9).fill('unknown')]);
  });

  it('ends at the page that faulted; a check that read nothing back has none', () => {
    const pic = mappingPicture(result({ outcome: { kind: 'sigbus', page: 2, addr: '0x0', code: 'BUS_ADRERR', pagesOk: 2 }, pageReports: [0, 1].map((i) => page({ page: i, pfn: `0x${i}` })) }));
    expect(pic?.pages.map((p) => p.shows)).toEqual([0, 1, 'fault']);
    expect(pic?.stoppedAt).toEqual({ page: 2, signal: 'SIGBUS' });
    expect(mappingPicture(result({ check: 'shared-write', pages: 1, pageReports: [] }))).toBeUndefined();
    // Pages read back that nothing tells apart (no index, no frame, no marker test): no picture of "?"s.
    expect(mappingPicture(result({ check: 'private', pageReports: [0, 1].map((i) => page({ page: i })) }))).toBeUndefined();
    expect(mappingPicture(result({ outcome: { kind: 'mmap-failed', errno: 'EINVAL', message: '' } as unknown as CheckResult['outcome'], pages: 0 }))).toBeUndefined();
  });
});

describe('the HTML report', () => {
  const report = JSON.parse(fixture('runs', 'check-null-deref-mmap', 'results.json')) as CheckReport;
  const html = (r: CheckReport) => renderResultsHtml(assembleMatrix({ command: 'check', kernels: [{ spec: r.kernel.spec, kind: 'check', report: r }], dir: r.artifacts.dir, resultsJson: r.artifacts.resultsJson, totalMs: 0 }));

  it('highlights the oops lines of the kernel log: each job\'s own oops, found in the joined log', () => {
    const page = html(report);
    // One oops per pass, each in a guest of its own.
    expect(page.match(/data-problem="oops"/g)).toHaveLength(5);
    const anchors = [...page.matchAll(/<span class="problem" id="log-(\d+)">([^<]*)/g)];
    expect(anchors.map((m) => Number(m[1]))).toEqual([3, 71, 130, 184, 255]);
    for (const m of anchors) expect(m[2]).toMatch(/BUG: kernel NULL pointer dereference/);
    const highlighted = [...page.matchAll(/<span class="problem"[^>]*>([^<]*)<\/span>/g)].map((m) => m[1]!);
    expect(highlighted.some((l) => /RIP: 0010:/.test(l))).toBe(true);
    // The highlight ends with the oops: the lines after it are plain.
    expect(highlighted.length).toBeLessThan(report.kernelLog.lines.length);
    expect(page).toMatch(/<a href="#log-\d+">in the log<\/a>/);
  });

  it('escapes what the guest and the driver wrote', () => {
    const hostile = { ...report, kernelLog: { ...report.kernelLog, lines: [...report.kernelLog.lines, { time: 1, text: '<script>alert(1)</script>' }] }, notes: ['<img src=x onerror=alert(1)>'] };
    const page = html(hostile);
    expect(page).not.toContain('<script>');
    expect(page).not.toContain('<img');
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it('escapes numbers and verdicts too: a guest record or a results file read back may hold anything there', () => {
    const bad = '"><img src=x onerror=alert(1)>';
    const r = structuredClone(report);
    r.results[0]!.pageReports = [page({ page: 0, index: bad as unknown as number, expectIndex: bad as unknown as number })];
    r.items[0]!.verdict = bad as unknown as 'pass';
    r.status = bad as unknown as 'pass';
    const out = html(r);
    expect(out).not.toContain('<img');
    expect(out).toContain('&quot;&gt;&lt;img src=x');
  });

  it('gives each kernel of a matrix its own log anchors', () => {
    const m = assembleMatrix({ command: 'check', kernels: [{ spec: 'debian:bookworm', kind: 'check', report }, { spec: 'debian:trixie', kind: 'check', report }], dir: '', resultsJson: '', totalMs: 0 });
    const page = renderResultsHtml(m);
    const ids = [...page.matchAll(/ id="([^"]+)"/g)].map((x) => x[1]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(page).toMatch(/<a href="#k1-log-3">in the log<\/a>/);
    expect(page).toMatch(/<title>mmaplab check: [^<]+ on 2 kernels<\/title>/);
  });
});
