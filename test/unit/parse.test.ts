import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSaved } from '../../src/commands/parse.js';
import { FIXTURES } from '../helpers.js';
import { assessFixture } from './fixture-runs.js';

function savedRun(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mmaplab-parse-'));
  copyFileSync(join(FIXTURES, 'consoles', `${name}.records.jsonl`), join(dir, 'records.jsonl'));
  copyFileSync(join(FIXTURES, 'consoles', `${name}.console.log`), join(dir, 'console.log'));
  return dir;
}

describe('mmaplab parse', () => {
  it('re-assesses a saved run directory into the same grid', async () => {
    const r = await parseSaved(savedRun('grid'));
    expect(r.kind).toBe('run');
    if (r.kind !== 'run') return;
    expect(r.report.results).toEqual(assessFixture('grid').flatMap((a) => a.results));
    expect(r.report.exitCode).toBe(0);
  });

  it('reads a console.log given beside its records as the same run', async () => {
    const dir = savedRun('seed');
    const r = await parseSaved(join(dir, 'console.log'));
    expect(r.kind === 'run' && r.report.results.find((x) => x.check === 'private')!.outcome.kind).toBe('sigbus');
  });

  it('reads a console on its own for its kernel problems', async () => {
    const r = await parseSaved(join(FIXTURES, 'consoles', 'early-panic.console.log'));
    expect(r).toMatchObject({ kind: 'console', reachedInit: false, problems: [{ kind: 'panic' }] });
  });

  it('says what is missing', async () => {
    await expect(parseSaved('/nonexistent/run')).rejects.toMatchObject({ kind: 'usage' });
    await expect(parseSaved(mkdtempSync(join(tmpdir(), 'mmaplab-parse-empty-')))).rejects.toThrow(/is not a directory mmaplab wrote: it has no console.log, records.jsonl or results.json/);
  });
});
