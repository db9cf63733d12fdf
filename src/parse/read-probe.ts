/**
 * shared-write's probe, from bytes to what read() did: the test program read
 * the written word's offset and offset 0 into canary-filled buffers, and
 * mapped the device again; which of them show the word tells a read() that
 * copies nothing or ignores the offset from a write that was really lost.
 */
import type { GuestRecord } from '../guest/protocol.js';
import type { ReadBehaviour, ReadFinding } from '../model/outcome.js';
import { bytesOf } from '../model/pattern.js';

type Probe = Extract<GuestRecord, { t: 'read-probe' }>;

/** The 32-bit little-endian word as the host prints words: "0x5eed0001". */
function wordOf(hex: string): string {
  const b = hex.match(/../g) ?? [];
  return `0x${[...b].reverse().join('')}`;
}

function behaviour(p: Probe, markHex: string): ReadBehaviour {
  if (p.n < 0) return p.err === 'ESPIPE' ? { kind: 'not-seekable' } : { kind: 'failed', err: p.err || 'an error' };
  if (p.n === 0) return { kind: 'eof', offset: p.offset };
  // Only the bytes read() said it gave count (a short read is not a wrong one).
  const got = p.bytes.slice(0, Math.min(p.n, 4) * 2);
  const want = (hex: string) => hex.slice(0, got.length);
  if (got === want(p.canary.repeat(4))) return { kind: 'copies-nothing', n: p.n, offset: p.offset };
  if (got === want(markHex)) return { kind: 'sees-write', offset: p.offset };
  // It gave the bytes at offset 0 (as the mapping shows them) for the offset it was asked.
  const start = p.map0 ?? p.bytes0.slice(0, 8);
  if (got === want(start) && want(start) !== want(markHex)) return { kind: 'ignores-offset', offset: p.offset };
  return { kind: 'misses-write', offset: p.offset, value: wordOf(p.bytes) };
}

/** `mark`: the word the mapping wrote, e.g. 0x5eed0001. */
export function readFinding(p: Probe, mark: number): ReadFinding {
  const markHex = bytesOf(mark).replace(/ /g, '');
  const fromStart = p.n0 >= p.offset + 4 && p.bytes0.slice(p.offset * 2, p.offset * 2 + 8) === markHex;
  return { read: behaviour(p, markHex), secondMapping: p.again === null ? undefined : p.again === markHex, fromStart };
}

/** Whether the write reached the memory the driver maps, by the best witness the probe has. */
export function writeReached(f: ReadFinding): boolean | undefined {
  if (f.read.kind === 'sees-write' || f.secondMapping || f.fromStart) return true;
  if (f.secondMapping === false) return false;
  return f.read.kind === 'misses-write' ? false : undefined;
}

/** The word a second mapping or read() showed instead, for "the write was lost" (e.g. 0x00000000). */
export function seenInstead(p: Probe): string {
  return wordOf(p.again ?? p.bytes);
}

/** read()'s behaviour in a few words, for a reason line: "read() returns 4 bytes but copies nothing". */
export function readWords(f: ReadFinding): string {
  const r = f.read;
  switch (r.kind) {
    case 'failed':
      return r.err === 'EINVAL' ? 'the driver has no read(): it fails with EINVAL' : `read() fails with ${r.err}`;
    case 'not-seekable':
      return 'the device is not seekable (pread() fails with ESPIPE): read() at an offset cannot be tried';
    case 'eof':
      return `read() at offset ${r.offset} returns 0, end of file`;
    case 'copies-nothing':
      return `read() returns ${r.n} bytes but copies nothing`;
    case 'ignores-offset':
      return `read() ignores the file offset: at offset ${r.offset} it returns the bytes at offset 0`;
    case 'sees-write':
      return `read() at offset ${r.offset} returns the word the mapping wrote`;
    case 'misses-write':
      return `read() at offset ${r.offset} returns ${r.value}, not the word the mapping wrote`;
  }
}
