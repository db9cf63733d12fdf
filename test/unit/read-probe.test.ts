import { describe, expect, it } from 'vitest';
import { parseRecordLine, type GuestRecord } from '../../src/guest/protocol.js';
import { readFinding, writeReached } from '../../src/parse/read-probe.js';
import { observeJob, SHARED_MARK } from '../../src/parse/job-records.js';

type Probe = Extract<GuestRecord, { t: 'read-probe' }>;
// The mark 0x5eed0001 as memory holds it; the page starts with the lab's aa bb cc dd.
const MARK = '0100ed5e';
const probe = (p: Partial<Probe>): Probe => ({ t: 'read-probe', offset: 8, n: 4, err: '', bytes: MARK, n0: 16, err0: '', bytes0: `aabbccdd00000000${MARK}00000000`, map0: 'aabbccdd', canary: 'a5', again: MARK, ...p });

describe("what shared-write's probe says read() does", () => {
  it('a read() that works sees the write', () => {
    const f = readFinding(probe({}), SHARED_MARK);
    expect(f.read.kind).toBe('sees-write');
    expect(writeReached(f)).toBe(true);
  });

  it('a stub that returns the count and copies nothing leaves the canary', () => {
    expect(readFinding(probe({ bytes: 'a5a5a5a5', bytes0: 'a5'.repeat(16) }), SHARED_MARK).read).toEqual({ kind: 'copies-nothing', n: 4, offset: 8 });
  });

  it('a read() that ignores the offset (or keeps its own position) gives the bytes at 0', () => {
    expect(readFinding(probe({ bytes: 'aabbccdd' }), SHARED_MARK).read.kind).toBe('ignores-offset');
    // Its own f_pos moved by the first read: offset 0's read starts further on, the mapping still says what 0 holds.
    expect(readFinding(probe({ bytes: 'aabbccdd', bytes0: `00000000${MARK}0000000000000000` }), SHARED_MARK).read.kind).toBe('ignores-offset');
  });

  it('a short read with the right bytes is not a wrong one; EOF, ESPIPE and errors are named', () => {
    expect(readFinding(probe({ n: 2, bytes: '0100a5a5' }), SHARED_MARK).read.kind).toBe('sees-write');
    expect(readFinding(probe({ n: 0, bytes: 'a5a5a5a5' }), SHARED_MARK).read.kind).toBe('eof');
    expect(readFinding(probe({ n: -1, err: 'ESPIPE' }), SHARED_MARK).read.kind).toBe('not-seekable');
    expect(readFinding(probe({ n: -1, err: 'EINVAL' }), SHARED_MARK).read).toEqual({ kind: 'failed', err: 'EINVAL' });
  });

  it('a write that neither read() nor a second mapping shows was lost', () => {
    const f = readFinding(probe({ bytes: '00000000', bytes0: '0'.repeat(32), again: '00000000' }), SHARED_MARK);
    expect(f.read.kind).toBe('misses-write');
    expect(writeReached(f)).toBe(false);
    const records = ['{"t":"start","check":"shared-write","device":"/dev/x","pages":16,"pageSize":4096,"pattern":"0xddccbbaa"}', JSON.stringify(probe({ bytes: '00000000', bytes0: '0'.repeat(32), again: '00000000' })), '{"t":"done","pagesOk":1,"pages":1}', '{"t":"exit","check":"shared-write","status":0}'].map(parseRecordLine);
    expect(observeJob(records, ['shared-write']).checks[0]!.outcome).toEqual({ kind: 'write-lost', seen: '0x00000000' });
  });
});

describe('the read-only check, from its records', () => {
  const run = (ro: string) => observeJob(['{"t":"start","check":"readonly","device":"/dev/x","pages":16,"pageSize":4096,"pattern":"0xddccbbaa"}', ro, '{"t":"done","pagesOk":1,"pages":1}', '{"t":"exit","check":"readonly","status":0}'].map(parseRecordLine), ['readonly']).checks[0]!.outcome;
  it('a write that faulted is the check passing; one that went through is writable PTEs', () => {
    expect(run('{"t":"ro-write","faulted":true,"signal":"SIGSEGV","code":"SEGV_ACCERR"}')).toMatchObject({ kind: 'ok' });
    expect(run('{"t":"ro-write","faulted":false,"reached":true}')).toEqual({ kind: 'write-allowed', reached: true });
  });
});
