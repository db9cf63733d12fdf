/** What the guest and the driver print, kept bounded and shown, never obeyed. */
import { describe, expect, it } from 'vitest';
import { capLines } from '../../src/diagnose/assess.js';
import { LineSplitter, parseRecordLine } from '../../src/guest/protocol.js';
import { parseKernelLine } from '../../src/parse/kmsg.js';
import { HeadTail } from '../../src/util/head-tail.js';
import { terminalSafe, visibleControls, visibleEscapes } from '../../src/util/safe-text.js';

describe('terminalSafe', () => {
  it('keeps text, newlines, tabs and colours', () => {
    const s = 'ok\tline\n\x1b[31mred\x1b[0m and \x1b[1;33mbold\x1b[39m\n';
    expect(terminalSafe(s)).toBe(s);
  });

  it('shows every other escape as text: clear screen, cursor moves, titles, OSC 52 clipboard, queries, carriage returns, 8-bit CSI', () => {
    const s = 'a\x1b[2J\x1b[Hb\x1b]0;pwned\x07c\x1b]52;c;aGVsbG8=\x07d\x1b[6ne\rf\x9b31mg\x08h';
    const out = terminalSafe(s);
    expect(out).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(out).toBe('a\\x1b[2J\\x1b[Hb\\x1b]0;pwned\\x07c\\x1b]52;c;aGVsbG8=\\x07d\\x1b[6ne\\x0df\\x9b31mg\\x08h');
  });
});

describe("the guest's text as mmaplab reads it", () => {
  it('a kernel line: control characters as \\xNN (as /dev/kmsg writes them), cut at 2000 characters', () => {
    expect(parseKernelLine('[    1.5] drv: \x1b[2Jhi\x07').text).toBe('drv: \\x1b[2Jhi\\x07');
    const long = parseKernelLine(`[    1.5] ${'x'.repeat(5000)}`).text;
    expect(long.length).toBeLessThanOrEqual(2001);
    expect(long.endsWith('x…')).toBe(true);
  });

  it('a record: every string made visible, newlines of command output kept', () => {
    const r = parseRecordLine(JSON.stringify({ t: 'step', step: 'insmod', status: 0, output: 'line 1\n\x1b]0;title\x07line 2' }));
    expect(r).toEqual({ t: 'step', step: 'insmod', status: 0, output: 'line 1\n\\x1b]0;title\\x07line 2' });
    expect(parseRecordLine('not json \x1b[2J')).toEqual({ t: 'text', text: 'not json \\x1b[2J' });
    expect(visibleEscapes('a\nb\tc')).toBe('a\nb\tc');
    expect(visibleControls('a\nb')).toBe('a\\x0ab');
  });

  it('a line that never ends costs no more than 64 KiB', () => {
    const split = new LineSplitter();
    const out: string[] = [];
    for (let i = 0; i < 100; i++) out.push(...split.push('y'.repeat(10_000)));
    expect(out.length).toBeGreaterThan(10);
    expect(Math.max(...out.map((l) => l.length))).toBeLessThanOrEqual(64 * 1024);
  });
});

describe('HeadTail', () => {
  it('keeps everything while it fits', () => {
    const h = new HeadTail(100, 100);
    h.push('one\n');
    h.push('two\n');
    expect(h.text()).toBe('one\ntwo\n');
    expect(h.dropped).toBeUndefined();
  });

  it('keeps the head and the tail of a flood, whole lines, and says what it dropped between', () => {
    const h = new HeadTail(1000, 1000);
    for (let i = 0; i < 100_000; i++) h.push(`line ${i}\n`);
    const text = h.text();
    expect(text.length).toBeLessThan(2400);
    expect(text.startsWith('line 0\nline 1\n')).toBe(true);
    expect(text.endsWith('line 99999\n')).toBe(true);
    const d = h.dropped!;
    const marker = /\[mmaplab: (\d+) lines \(([\d.]+) (KiB|MiB)\) the guest printed here are not kept\]\n/.exec(text);
    expect(marker).not.toBeNull();
    expect(Number(marker![1])).toBe(d.lines);
    // Every line pushed is in the head, the tail, or the count.
    const kept = text.split('\n').filter((l) => l.startsWith('line ')).length;
    expect(kept + d.lines).toBeGreaterThanOrEqual(100_000 - 1);
  });

  it('bounds one huge chunk too', () => {
    const h = new HeadTail(1000, 1000);
    h.push(`${'z'.repeat(50)}\n`.repeat(100_000));
    expect(h.text().length).toBeLessThan(2200);
  });

  it('what a stream that wrote the head is still owed: the omission line and the tail', () => {
    const h = new HeadTail(10, 10);
    let written = h.push('abcdefgh\n');
    for (let i = 0; i < 50; i++) written += h.push(`${i}\n`);
    expect(written).toBe(h.headOnly);
    expect(written + h.rest()).toBe(h.text());
  });
});

describe('capLines', () => {
  it('keeps the first and last halves and one line saying how many are not kept', () => {
    const lines = Array.from({ length: 1000 }, (_, i) => ({ time: i, text: `l${i}` }));
    const capped = capLines(lines, 200);
    expect(capped).toHaveLength(201);
    expect(capped[0]!.text).toBe('l0');
    expect(capped[100]!.text).toBe("[mmaplab: 800 lines not kept here; the run's console.log and records.jsonl have more]");
    expect(capped[200]!.text).toBe('l999');
    expect(capLines(lines.slice(0, 10), 200)).toHaveLength(10);
  });
});
