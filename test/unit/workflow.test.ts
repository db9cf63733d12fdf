/** The GitHub Actions workflow the README documents: its matrix is mmaplab's `all`, and its steps use the real CLI. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ALL_KERNELS } from '../../src/kernel/spec.js';
import { ROOT } from '../helpers.js';
import { buildProgram } from '../../src/cli/program.js';

const text = readFileSync(join(ROOT, '.github/workflows/mmaplab-matrix.yml'), 'utf8');
const wf = parse(text) as {
  jobs: Record<string, { needs?: string; if?: string; strategy?: { matrix: { kernel: string[] } }; steps: Array<{ run?: string; uses?: string; with?: Record<string, string> }> }>;
};

describe('the CI workflow', () => {
  it('runs one job per kernel of `--kernel all`, each through the action (action.yml, tested in action.test.ts), which keeps the kernel cache', () => {
    const lab = wf.jobs.lab!;
    expect(lab.strategy?.matrix.kernel).toEqual(ALL_KERNELS);
    const uses = lab.steps.find((s) => s.uses === './');
    expect(uses?.with).toMatchObject({ kernels: '${{ matrix.kernel }}', driver: '${{ env.DRIVER }}' });
    expect(lab.steps.some((s) => s.run)).toBe(false);
  });

  it('merges every job into one report, even when a kernel failed, with flags merge has', () => {
    const report = wf.jobs.report!;
    expect(report.needs).toBe('lab');
    expect(report.if).toBe('always()');
    const run = report.steps.map((s) => s.run ?? '').join('\n');
    expect(run).toMatch(/npx mmaplab merge artifacts\/\*\/results\.json --junit mmaplab-junit\.xml --markdown mmaplab-summary\.md/);
    const merge = buildProgram().commands.find((c) => c.name() === 'merge')!.options.map((o) => o.long);
    for (const f of [...(/npx mmaplab merge ([^\n]*)/.exec(run)?.[1] ?? '').matchAll(/--[a-z-]+/g)].map((m) => m[0])) expect(merge).toContain(f);
  });

  it('names no archive host: the archive comes from repository variables', () => {
    expect(text).toContain('${{ vars.MMAPLAB_DEBIAN_ARCHIVE }}');
    expect(text).not.toMatch(/https?:\/\//);
  });
});

describe('the grading workflow', () => {
  const gtext = readFileSync(join(ROOT, '.github/workflows/mmaplab-grade.yml'), 'utf8');
  const gw = parse(gtext) as {
    env: Record<string, string | number>;
    jobs: Record<string, { needs?: string; if?: string; strategy?: { matrix: { shard: number[] } }; steps: Array<{ run?: string; uses?: string; with?: Record<string, string | boolean> }> }>;
  };
  const runs = (job: string) => gw.jobs[job]!.steps.map((s) => s.run ?? '').join('\n');
  /** The --flags a command line of the workflow gives a mmaplab command, each of which that command must declare. */
  const flagsOf = (text: string, command: string) => [...(new RegExp(`npx mmaplab ${command} ([^\\n]*)`).exec(text)?.[1] ?? '').matchAll(/(--[a-z-]+)/g)].map((m) => m[1]!);
  const declared = (command: string) => buildProgram().commands.find((c) => c.name() === command)!.options.map((o) => o.long);

  it('one job per shard, as many shards as SHARDS says, each grading its slice with flags grade has', () => {
    expect(gw.jobs.grade!.strategy?.matrix.shard).toEqual(Array.from({ length: Number(gw.env.SHARDS) }, (_, i) => i + 1));
    const run = runs('grade');
    expect(run).toMatch(/npx mmaplab grade "\$SUBMISSIONS" --shard "\$\{\{ matrix\.shard \}\}\/\$SHARDS" --kernel "\$KERNEL"/);
    expect(run).toContain('bin/install-deps');
    const flags = flagsOf(run, 'grade');
    expect(flags).toEqual(['--shard', '--kernel', '--rubric', '--out']);
    for (const f of flags) expect(declared('grade')).toContain(f);
    // The kernels, and grade's checks by key (in the state directory), kept between runs.
    expect(String(gw.jobs.grade!.steps.find((s) => s.uses?.startsWith('actions/cache@'))?.with?.path).split('\n').filter(Boolean)).toEqual(['.mmaplab-cache', '.mmaplab-state/grade-cache']);
    expect(gtext).toContain('MMAPLAB_STATE_DIR: ${{ github.workspace }}/.mmaplab-state');
  });

  it('merges the shards into the class with flags merge has; run even when a shard failed (merge then names the one missing)', () => {
    const cls = gw.jobs.class!;
    expect([cls.needs, cls.if]).toEqual(['grade', 'always()']);
    const run = runs('class');
    expect(run).toMatch(/npx mmaplab merge shard-\*\/results\.json --out class --csv class\/roster\.csv/);
    for (const f of flagsOf(run, 'merge')) expect(declared('merge')).toContain(f);
    expect(cls.steps.find((s) => s.uses?.startsWith('actions/download-artifact@'))?.with).toMatchObject({ pattern: 'grade-shard-*', 'merge-multiple': true });
  });

  it('names no archive host', () => {
    expect(gtext).toContain('${{ vars.MMAPLAB_DEBIAN_ARCHIVE }}');
    expect(gtext).not.toMatch(/https?:\/\//);
  });
});
