import { describe, expect, it } from 'vitest';
import { ConsoleWatch } from '../../src/vm/console-watch.js';
import { fixture } from '../helpers.js';

describe('the console watch', () => {
  it('sees an oops that arrives a few bytes at a time', () => {
    const text = fixture('consoles', 'null-deref-mmap.console.log');
    const w = new ConsoleWatch();
    const lines: string[] = [];
    for (let i = 0; i < text.length; i += 3) lines.push(...w.push(text.slice(i, i + 3)));
    expect(w.fatal).toBe(true);
    expect(lines).toContain(text.split('\n').find((l) => l.includes('Oops: '))?.replace(/\r$/, ''));
  });

  it('does not see one in a clean run, and forgets one on reset', () => {
    const w = new ConsoleWatch();
    w.push(fixture('consoles', 'seed.console.log'));
    expect(w.fatal).toBe(false);
    w.push('[    3.7] Oops: 0000 [#1] PREEMPT SMP NOPTI\r\n');
    expect(w.fatal).toBe(true);
    w.reset();
    expect(w.fatal).toBe(false);
  });
});
