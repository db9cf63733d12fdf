/**
 * `run --html` and `check --html`: real runs, the page opened in headless
 * Chromium (no request beyond the file), and what a reader sees read back:
 * the grid's outcomes and colours, the picture of each mapping, the oops in
 * the kernel log with the driver's own source line.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES } from '../helpers.js';
import { openPage, type OpenPage } from '../support/browser.js';
import { runCli } from './cli.js';

const GREEN = 'rgb(23, 128, 61)';
const AMBER = 'rgb(168, 107, 0)';
const RED = 'rgb(192, 38, 45)';

async function page(args: string[], expectExit: number): Promise<OpenPage> {
  const file = join(mkdtempSync(join(tmpdir(), 'mmaplab-html-')), 'report.html');
  const r = await runCli([...args, '--html', file]);
  expect(r.exitCode, r.stderr).toBe(expectExit);
  return openPage(file);
}

describe('the HTML report of run and check', () => {
  it('run: the grid as the terminal colours it, and each mapping page by page', async () => {
    const p = await page(['run', '--strategy', 'seed,fault', '--check', 'private,shared,private-per-page'], 0);
    try {
      expect(p.requests()).toEqual([]);
      expect((await p.all('#overall'))[0]?.data.status).toBe('pass');
      const cells = await p.all('td.mark');
      const cell = (s: string, k: string) => cells.find((c) => c.data.strategy === s && c.data.check === k)!;
      // The seed's SIGBUS under MAP_PRIVATE is the failure the lab expects: amber, as on the terminal.
      expect(cell('seed', 'private')).toMatchObject({ text: 'SIGBUS@0', data: { outcome: 'SIGBUS@0', expected: 'true' }, color: AMBER });
      expect(cell('fault', 'private')).toMatchObject({ text: 'ok', color: GREEN });
      expect(cell('seed', 'shared')).toMatchObject({ text: 'ok', color: GREEN });
      const explanations = await p.all('[data-explanation]');
      expect(explanations.some((x) => /remap_pfn_range\(\) returned -EINVAL/.test(x.text) && /fix: map with MAP_SHARED/.test(x.text))).toBe(true);
      const shows = async (s: string, k: string) => (await p.all(`.picture[data-strategy="${s}"][data-check="${k}"] .pages span`)).map((x) => x.data.shows);
      expect(await shows('seed', 'shared')).toEqual(Array.from({ length: 16 }, (_, i) => String(i)));
      // The seed ignores vm_pgoff: every single-page private mapping shows page 0.
      expect(await shows('seed', 'private-per-page')).toEqual(Array.from({ length: 16 }, () => '0'));
      expect(await shows('seed', 'private')).toEqual(['fault']);
      expect((await p.all('.picture[data-strategy="seed"][data-check="private"]'))[0]?.text).toMatch(/SIGBUS at page 0; the pages after it were never reached/);
      expect((await p.all('.problems'))[0]?.data.count).toBe('0');
    } finally {
      await p.close();
    }
  });

  it('check: an oops in mmap highlighted in the kernel log, at the driver\'s line, and the checks it failed in red', async () => {
    const p = await page(['check', join(FIXTURES, 'drivers', 'null-deref-mmap')], 1);
    try {
      expect(p.requests()).toEqual([]);
      const problems = await p.all('[data-problem]');
      expect(problems.length).toBeGreaterThan(0);
      expect(problems[0]!.text).toMatch(/BUG: kernel NULL pointer dereference/);
      expect(problems[0]!.text).toMatch(/at .*\.c:\d+/);
      const highlighted = await p.all('pre.kernel-log .problem');
      expect(highlighted.some((l) => /RIP: .*_mmap/.test(l.text))).toBe(true);
      expect(highlighted[0]!.classes).toContain('problem');
      const failed = (await p.all('tr[data-verdict="fail"] td.mark'));
      expect(failed.length).toBeGreaterThan(0);
      for (const f of failed) expect(f.color).toBe(RED);
    } finally {
      await p.close();
    }
  });

  it('check: pages that alias one buffer page read 0 0 0 ... in the picture', async () => {
    const p = await page(['check', join(FIXTURES, 'students', 'all-pages-first')], 1);
    try {
      const pictures = await p.all('.picture[data-check="shared"] .pages span');
      expect(pictures.map((x) => x.data.shows)).toEqual(Array.from({ length: 16 }, () => '0'));
      // Told apart by frames where the guest shows them, else by the markers check writes.
    expect(['frame', 'marker']).toContain((await p.all('.picture[data-check="shared"]'))[0]?.data.by);
    } finally {
      await p.close();
    }
  });
});
