/** The GitHub Actions workflow the README documents: its matrix is mmaplab's `all`, and its steps use the real CLI. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ALL_KERNELS } from '../../src/kernel/spec.js';
import { ROOT } from '../helpers.js';

const text = readFileSync(join(ROOT, '.github/workflows/mmaplab-matrix.yml'), 'utf8');
const wf = parse(text) as {
  jobs: Record<string, { needs?: string; if?: string; strategy?: { matrix: { kernel: string[] } }; steps: Array<{ run?: string; uses?: string; with?: Record<string, string> }> }>;
};

describe('the CI workflow', () => {
  it('runs one job per kernel of `--kernel all`, keeping the kernel cache between runs', () => {
    const lab = wf.jobs.lab!;
    expect(lab.strategy?.matrix.kernel).toEqual(ALL_KERNELS);
    const run = lab.steps.map((s) => s.run ?? '').join('\n');
    expect(run).toMatch(/npx mmaplab run --kernel '\$\{\{ matrix\.kernel \}\}' --json --junit/);
    expect(run).toMatch(/npx mmaplab check "\$DRIVER" --kernel/);
    expect(run).toContain('bin/install-deps');
    const cache = lab.steps.find((s) => s.uses?.startsWith('actions/cache@'));
    expect(cache?.with?.path).toBe('.mmaplab-cache');
  });

  it('merges every job into one report, even when a kernel failed', () => {
    const report = wf.jobs.report!;
    expect(report.needs).toBe('lab');
    expect(report.if).toBe('always()');
    expect(report.steps.map((s) => s.run ?? '').join('\n')).toMatch(/npx mmaplab merge artifacts\/\*\/results\/\*\.json --junit mmaplab-junit\.xml --markdown mmaplab-summary\.md/);
  });

  it('names no archive host: the archive comes from repository variables', () => {
    expect(text).toContain('${{ vars.MMAPLAB_DEBIAN_ARCHIVE }}');
    expect(text).not.toMatch(/https?:\/\//);
  });
});
