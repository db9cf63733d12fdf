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

describe('lockups the console watch stops a job for', () => {
  it("a soft lockup or hung task naming the job's own task, not another's, nor a BUG the kernel survives", () => {
    const seen = (line: string) => {
      const w = new ConsoleWatch();
      w.push(`${line}\n`);
      return { lockup: w.lockup, fatal: w.fatal };
    };
    expect(seen('[   14.1] watchdog: BUG: soft lockup - CPU#0 stuck for 10s! [insmod:117]').lockup).toBe(true);
    expect(seen('[   14.1] watchdog: BUG: soft lockup - CPU#0 stuck for 10s! [kworker/0:1:23]').lockup).toBe(false);
    expect(seen('[  130.0] INFO: task mmap-test:121 blocked for more than 120 seconds.').lockup).toBe(true);
    expect(seen('[    5.0] BUG: sleeping function called from invalid context at mm/slab.h:720')).toEqual({ lockup: false, fatal: false });
    expect(seen('[    5.0] BUG: kernel NULL pointer dereference, address: 0000000000000000').fatal).toBe(true);
  });
});
