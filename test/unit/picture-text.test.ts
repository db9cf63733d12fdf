/** The picture of a mapping on the terminal: one line a mapping, folded when long. */
import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import type { MappingPicture, PicturePage } from '../../src/model/picture.js';
import { renderPicture } from '../../src/report/picture-text.js';

const plain = new Chalk({ level: 0 });
const pages = (shows: Array<PicturePage['shows']>, expect?: (i: number) => number | null): PicturePage[] =>
  shows.map((s, i) => ({ page: i, shows: s, expect: expect ? expect(i) : null, ok: expect ? s === expect(i) : s === i }));
const draw = (pic: MappingPicture) => renderPicture('shared ', pic, plain, '');

describe('the picture of a mapping on the terminal', () => {
  it('draws sixteen pages one by one: right, aliased, faulted', () => {
    const range = Array.from({ length: 16 }, (_, i) => i);
    expect(draw({ by: 'index', pages: pages(range, (i) => i) })).toEqual(['shared 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15']);
    expect(draw({ by: 'frame', pages: pages(range.map(() => 0)) })).toEqual(['shared 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0']);
    expect(draw({ by: 'index', pages: [{ page: 0, shows: 'fault', expect: null, ok: false }], stoppedAt: { page: 0, signal: 'SIGBUS' } })).toEqual([
      'shared ·',
      '       SIGBUS at page 0; the pages after it were never reached',
    ]);
  });

  it('an ignored vm_pgoff: the row it showed over the row the lab expected', () => {
    const shown = Array.from({ length: 13 }, (_, i) => i);
    expect(draw({ by: 'index', pages: pages(shown, (i) => i + 3) })).toEqual(['shared 0 1 2 3 4 5 6 7 8 9 10 11 12', '       3 4 5 6 7 8 9 10 11 12 13 14 15  expected']);
  });

  it('folds a long mapping into runs, so aliases and the page where it went wrong still show', () => {
    const right = Array.from({ length: 64 }, (_, i) => i);
    expect(draw({ by: 'index', pages: pages(right, (i) => i) })).toEqual(['shared 0 1 … 63']);
    const aliased = pages(right.map((i) => (i < 32 ? i : 0)));
    expect(draw({ by: 'frame', pages: aliased })).toEqual(['shared 0 1 … 31 0×32']);
    const stopped = [...pages(right.slice(0, 40)), ...Array.from({ length: 24 }, (_, i): PicturePage => ({ page: 40 + i, shows: 'fault', expect: null, ok: false }))];
    expect(draw({ by: 'frame', pages: stopped, stoppedAt: { page: 40, signal: 'SIGSEGV' } })[0]).toBe('shared 0 1 … 39 ·×24');
  });

  it('colours what is wrong, and only that', () => {
    const c = new Chalk({ level: 1 });
    const [line] = renderPicture('', { by: 'frame', pages: pages([0, 1, 0]) }, c, '');
    expect(line).toBe(`${c.green('0')} ${c.green('1')} ${c.red.bold('0')}`);
  });
});
