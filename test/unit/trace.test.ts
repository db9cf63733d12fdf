import { describe, expect, it } from 'vitest';
import { describeCalls, parseTraceLine, summariseTrace } from '../../src/parse/trace.js';
import { fixtureJobs } from './fixture-runs.js';

describe('traced mapping calls', () => {
  it('reads a kretprobe line: function, caller, return value', () => {
    expect(parseTraceLine('       mmap-test-109     [000] .....     2.345678: remap_pfn_range: (seed_mmap+0x58/0x80 [mmaplab] <- remap_pfn_range) ret=-22')).toEqual({
      fn: 'remap_pfn_range',
      caller: 'seed_mmap+0x58/0x80 [mmaplab]',
      ret: -22,
    });
    expect(parseTraceLine('mmap-test-109 [000] ..... 2.3: remap_pfn_range_args: (remap_pfn_range+0x0/0x90) addr=0x7f pfn=0x1 size=0x1000')).toBeUndefined();
  });

  it('summarises what each strategy really called, from a real grid run', () => {
    const traceOf = (strategy: string, check: string) => {
      const job = fixtureJobs('grid').find((j) => j.strategy === strategy)!;
      return summariseTrace(job.records.flatMap((r) => (r.t === 'trace' && r.check === check ? [r.line] : [])));
    };
    expect(traceOf('seed', 'private').map(describeCalls)).toEqual(['remap_pfn_range() returned -EINVAL 16×']);
    expect(traceOf('checked', 'private').map(describeCalls)).toEqual(['remap_pfn_range() returned -EINVAL 1×']);
    expect(traceOf('no-maywrite', 'private').map(describeCalls)).toEqual(['remap_pfn_range() returned 0 16×']);
    expect(traceOf('contiguous', 'private').map(describeCalls)).toEqual(['remap_pfn_range() returned 0 1×']);
    // remap_vmalloc_range() and vm_map_pages() insert each page with vm_insert_page().
    expect(traceOf('remap-vmalloc-range', 'shared').map((c) => [c.fn, c.calls])).toEqual(
      expect.arrayContaining([['vm_insert_page', 16], ['remap_vmalloc_range', 1]]),
    );
    expect(traceOf('insert-page', 'offset').map((c) => [c.fn, c.calls])).toEqual(expect.arrayContaining([['vm_insert_page', 13], ['vm_map_pages', 1]]));
    // The fault strategy maps nothing at mmap() time.
    expect(traceOf('fault', 'shared')).toEqual([]);
  });
});

describe('what the driver asked remap_pfn_range() to map', () => {
  it('records the sizes from the entry probe: one page per call for the seed, the whole VMA for contiguous', () => {
    const sizesOf = (strategy: string) => {
      const job = fixtureJobs('grid').find((j) => j.strategy === strategy)!;
      return summariseTrace(job.records.flatMap((r) => (r.t === 'trace' && r.check === 'private' ? [r.line] : [])))[0]!.sizes;
    };
    expect(sizesOf('seed')).toEqual([4096]);
    expect(sizesOf('contiguous')).toEqual([65536]);
  });
});
