/**
 * The GitHub Action (action.yml): its inputs and outputs against the steps that use and
 * write them, its mmaplab command lines against the real CLI, and its run step
 * (bin/action-run) run for real, with GitHub's output files faked.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ALL_KERNELS } from '../../src/kernel/spec.js';
import { buildProgram } from '../../src/cli/program.js';
import { ROOT } from '../helpers.js';
import { parseValidResults } from '../support/schema.js';

interface Step { id?: string; if?: string; uses?: string; run?: string; shell?: string; env?: Record<string, string>; with?: Record<string, string>; 'working-directory'?: string }
const text = readFileSync(join(ROOT, 'action.yml'), 'utf8');
const action = parse(text) as {
  inputs: Record<string, { description: string; default?: string }>;
  outputs: Record<string, { value: string }>;
  runs: { using: string; steps: Step[] };
};
const steps = action.runs.steps;
const script = readFileSync(join(ROOT, 'bin', 'action-run'), 'utf8');
const SCRIPT = join(ROOT, 'bin', 'action-run');

/** Every `<context>.<name>` an expression of the steps names. */
const referenced = (context: string) => new Set([...JSON.stringify(steps).matchAll(new RegExp(`\\b${context}\\.([\\w-]+)`, 'g'))].map((m) => m[1]!));

/** bin/action-run as the action runs it, with GitHub's files in a fresh directory: what it wrote to them, its output and exit code. */
function actionRun(mode: 'prepare' | 'run', env: Record<string, string>) {
  const tmp = mkdtempSync(join(tmpdir(), 'mmaplab-action-'));
  const files = { GITHUB_OUTPUT: join(tmp, 'output'), GITHUB_STEP_SUMMARY: join(tmp, 'summary') };
  for (const f of Object.values(files)) writeFileSync(f, '');
  const r = spawnSync('bash', [SCRIPT, mode], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: process.env.HOME, GITHUB_ACTIONS: 'true', RUNNER_TEMP: tmp, MMAPLAB_STATE_DIR: join(tmp, 'state'), MMAPLAB_CACHE_DIR: join(tmp, 'cache'), NO_COLOR: '1', ...files, ...env },
  });
  const outputs = Object.fromEntries(readFileSync(files.GITHUB_OUTPUT, 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, outputs, stepSummary: readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'), tmp };
}

/** A stand-in for mmaplab that records each command line it is given (one JSON array a line) and exits with STUB_EXIT. */
function stub(): { command: string; calls: () => string[][] } {
  const dir = mkdtempSync(join(tmpdir(), 'mmaplab-action-stub-'));
  const log = join(dir, 'calls');
  const path = join(dir, 'mmaplab-stub.mjs');
  writeFileSync(
    path,
    `import { appendFileSync, writeFileSync } from 'node:fs';
const args = process.argv.slice(2);
appendFileSync(${JSON.stringify(log)}, JSON.stringify(args) + '\\n');
if (args[0] !== 'merge') process.stdout.write('{"stub": true}\\n::warning file=driver.c,line=3::a warning\\n');
const gradescope = args.indexOf('--gradescope');
if (gradescope >= 0) writeFileSync(args[gradescope + 1], '{"score": 7.5}\\n');
process.exitCode = Number(process.env.STUB_EXIT ?? 0);
`,
  );
  chmodSync(path, 0o755);
  writeFileSync(log, '');
  return { command: `${process.execPath} ${path}`, calls: () => readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as string[]) };
}

/** Parse a command line with the real program, its commands' actions replaced so nothing runs: commander's own checks and each option's parser (kernel specs, numbers) apply. */
async function parsesWithTheCli(args: string[]): Promise<void> {
  const program = buildProgram();
  for (const c of program.commands) c.action(() => {});
  program.configureOutput({ writeErr: () => {}, writeOut: () => {} });
  await program.parseAsync(['node', 'mmaplab', ...args]);
}

describe('the action: declared and used', () => {
  it('is a composite action whose shell steps run bin/action-run with bash', () => {
    expect(action.runs.using).toBe('composite');
    expect(steps.filter((s) => s.run).every((s) => s.shell === 'bash')).toBe(true);
    expect(steps.find((s) => s.id === 'prepare')?.run).toContain('"$GITHUB_ACTION_PATH/bin/action-run" prepare');
    expect(steps.find((s) => s.id === 'run')?.run).toContain('"$GITHUB_ACTION_PATH/bin/action-run" run');
  });

  it('uses every input it declares, and declares every input it uses', () => {
    expect([...referenced('inputs')].sort()).toEqual(Object.keys(action.inputs).sort());
    for (const [name, i] of Object.entries(action.inputs)) expect(i.description, name).toBeTruthy();
  });

  it("gives bin/action-run, in each step's env, every INPUT_ variable it reads", () => {
    const read = new Set([...script.matchAll(/\$\{?(INPUT_[A-Z_]+)/g)].map((m) => m[1]!));
    const given = (id: string) => Object.keys(steps.find((s) => s.id === id)?.env ?? {});
    // prepare reads only what the cache key and the artifact's name need.
    for (const v of ['INPUT_KERNELS', 'INPUT_ARTIFACT_NAME']) expect(given('prepare')).toContain(v);
    expect([...read].sort()).toEqual(given('run').filter((v) => v.startsWith('INPUT_')).sort());
    // Each INPUT_X is the input x, not another one.
    for (const [k, v] of Object.entries(steps.find((s) => s.id === 'run')!.env!)) {
      if (k.startsWith('INPUT_')) expect(v).toBe(`\${{ inputs.${k.slice(6).toLowerCase().replace(/_/g, '-')} }}`);
    }
  });

  it("maps each output to the run step's output of the same name, and steps read only outputs prepare writes", () => {
    for (const [name, o] of Object.entries(action.outputs)) expect(o.value).toBe(`\${{ steps.run.outputs.${name} }}`);
    const prepared = actionRun('prepare', { INPUT_KERNELS: 'debian:bookworm' }).outputs;
    const read = [...JSON.stringify(steps).matchAll(/steps\.prepare\.outputs\.([\w-]+)/g)].map((m) => m[1]!);
    expect(read.length).toBeGreaterThan(0);
    for (const o of read) expect(Object.keys(prepared)).toContain(o);
  });

  it('installs with install-deps --runtime, an option install-deps has, and caches the cache directory mmaplab is given', () => {
    expect(text).toContain('"$GITHUB_ACTION_PATH/bin/install-deps" --runtime');
    expect(readFileSync(join(ROOT, 'bin', 'install-deps'), 'utf8')).toMatch(/--runtime\) mode=runtime/);
    const restore = steps.find((s) => s.uses?.startsWith('actions/cache/restore@'))!;
    const save = steps.find((s) => s.uses?.startsWith('actions/cache/save@'))!;
    const run = steps.find((s) => s.id === 'run')!;
    expect(restore.with?.path).toBe('${{ steps.prepare.outputs.cache-dir }}');
    expect(save.with?.path).toBe(restore.with?.path);
    expect(run.env?.MMAPLAB_CACHE_DIR).toBe(restore.with?.path);
    expect(save.with?.key).toBe(restore.with?.key);
    expect(restore.with?.key).toContain('${{ runner.os }}-${{ steps.prepare.outputs.slug }}-');
    expect(String(restore.with?.key).startsWith(String(restore.with?.['restore-keys']))).toBe(true);
    // The cache and the results are kept even when the lab failed.
    expect(save.if).toMatch(/!cancelled\(\)/);
    expect(steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))?.if).toMatch(/!cancelled\(\)/);
  });

  it('names no archive or other host', () => {
    for (const t of [text, script]) {
      expect(t).not.toMatch(/https?:\/\//);
      expect(t).not.toMatch(/\b[\w-]+\.(org|com|net|io|de|edu)\b/);
    }
  });
});

describe('the action: its mmaplab command lines', () => {
  it('(the check of a command line refuses what mmaplab refuses)', async () => {
    await expect(parsesWithTheCli(['run', '--job', '2'])).rejects.toThrow(/unknown option/);
    await expect(parsesWithTheCli(['run', '--kernel', 'debian:nosuch'])).rejects.toThrow(/nosuch/);
    await expect(parsesWithTheCli(['check'])).rejects.toThrow(/missing required argument/);
    await parsesWithTheCli(['check', 'd', '--kernel', 'all']);
  });

  const inputs = { INPUT_KERNELS: 'debian:bookworm,\ndebian:sid  all', INPUT_JOBS: '2', INPUT_TIMEOUT: '300', INPUT_ARCHIVE_URI: 'file:///srv/debian', INPUT_SECURITY_URI: 'file:///srv/debian-security', INPUT_ARGS: '--memory 512 --accel tcg' };

  it('run, and merge for the summary, with every input: lines the real CLI parses', async () => {
    const s = stub();
    const r = actionRun('run', { MMAPLAB_COMMAND: s.command, ...inputs });
    expect(r.code, r.stderr).toBe(0);
    const [run, merge, ...more] = s.calls();
    expect(more).toEqual([]);
    const dir = r.outputs['results-dir']!;
    expect(run).toEqual(['run', '--kernel', 'debian:bookworm', '--kernel', 'debian:sid', '--kernel', 'all', '--json', '--junit', `${dir}/junit.xml`, '--output-dir', `${dir}/run`, '--jobs', '2', '--timeout', '300', '--archive-uri', 'file:///srv/debian', '--security-uri', 'file:///srv/debian-security', '--memory', '512', '--accel', 'tcg']);
    expect(merge).toEqual(['merge', 'results.json', '--markdown', 'summary.md', '--no-color']);
    for (const c of [run!, merge!]) await parsesWithTheCli(c);
    // The annotations mmaplab prints after its JSON go to the log, not into the JSON.
    expect(readFileSync(r.outputs.json!, 'utf8')).toBe('{"stub": true}\n');
    expect(r.stdout).toMatch(/^::warning file=driver\.c,line=3::a warning$/m);
  });

  it('check DRIVER with a rubric: the Gradescope file, by the rubric given or the lab\'s ("default")', async () => {
    const s = stub();
    const r = actionRun('run', { MMAPLAB_COMMAND: s.command, INPUT_DRIVER: 'my driver', INPUT_RUBRIC: 'rubric.yml' });
    expect(r.code, r.stderr).toBe(0);
    const dir = r.outputs['results-dir']!;
    expect(s.calls()[0]).toEqual(['check', 'my driver', '--kernel', 'debian:bookworm', '--json', '--junit', `${dir}/junit.xml`, '--output-dir', `${dir}/run`, '--gradescope', `${dir}/gradescope.json`, '--rubric', 'rubric.yml']);
    expect(r.outputs).toMatchObject({ gradescope: `${dir}/gradescope.json`, score: '7.5' });
    actionRun('run', { MMAPLAB_COMMAND: s.command, INPUT_DRIVER: 'd', INPUT_RUBRIC: 'default', INPUT_KERNELS: 'local:/boot/bzImage,/src/linux' });
    const [check] = s.calls().slice(2);
    expect(check).toContain('--gradescope');
    expect(check).not.toContain('--rubric');
    expect(check?.slice(0, 4)).toEqual(['check', 'd', '--kernel', 'local:/boot/bzImage,/src/linux']);
    for (const c of s.calls()) await parsesWithTheCli(c);
  });

  it('a rubric without a driver, or a fail-on-failure that is neither true nor false: a usage error before mmaplab runs, the outputs set', () => {
    const s = stub();
    for (const env of [{ INPUT_RUBRIC: 'rubric.yml' }, { INPUT_FAIL_ON_FAILURE: 'yes' }] as Array<Record<string, string>>) {
      const r = actionRun('run', { MMAPLAB_COMMAND: s.command, ...env });
      expect(r.code).toBe(2);
      expect(r.outputs).toMatchObject({ 'exit-code': '2', outcome: 'error' });
      expect(r.stdout).toMatch(/^::error title=mmaplab action::/m);
      expect(readFileSync(r.outputs.summary!, 'utf8')).toMatch(/^## mmaplab: not run/);
      expect(r.stepSummary).toMatch(/^## mmaplab: not run/);
    }
    expect(s.calls()).toEqual([]);
  });

  it('exit 1 fails the step unless fail-on-failure is false; 3 fails it either way', () => {
    const s = stub();
    const at = (code: number, failOnFailure?: string) => actionRun('run', { MMAPLAB_COMMAND: s.command, STUB_EXIT: String(code), ...(failOnFailure ? { INPUT_FAIL_ON_FAILURE: failOnFailure } : {}) });
    expect([at(0).code, at(0).outputs.outcome]).toEqual([0, 'pass']);
    expect([at(1).code, at(1).outputs.outcome]).toEqual([1, 'fail']);
    const lenient = at(1, 'false');
    expect([lenient.code, lenient.outputs['exit-code'], lenient.outputs.outcome]).toEqual([0, '1', 'fail']);
    expect(lenient.stdout).toMatch(/^::warning title=mmaplab::/m);
    expect([at(3, 'false').code, at(3, 'false').outputs.outcome]).toEqual([3, 'error']);
  });
});

describe('the action: run for real', () => {
  const built = existsSync(join(ROOT, 'dist', 'cli', 'main.js'));

  it('a kernel spec mmaplab refuses: exit 2, every output set, the step summary saying there is no result', () => {
    expect(built, 'the CLI is not built: npm run build').toBe(true);
    const r = actionRun('run', { INPUT_KERNELS: 'debian:nosuch' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown Debian suite 'nosuch'/);
    expect(r.outputs).toMatchObject({ 'exit-code': '2', outcome: 'error', json: '', junit: '', gradescope: '', score: '' });
    for (const o of Object.keys(action.outputs)) expect(Object.keys(r.outputs)).toContain(o);
    expect(readFileSync(r.outputs.summary!, 'utf8')).toContain('`mmaplab run` exited with 2 before it had a result');
    expect(r.stepSummary).toContain('exited with 2');
  });

  it('a kernel that cannot be had: exit 3 even with fail-on-failure false; the JSON, JUnit and summary of the error written, the summary once in the step summary', () => {
    expect(built, 'the CLI is not built: npm run build').toBe(true);
    const r = actionRun('run', { INPUT_DRIVER: 'test/fixtures/drivers/compile-error', INPUT_KERNELS: 'local:/nonexistent/bzImage', INPUT_FAIL_ON_FAILURE: 'false' });
    expect(r.code, r.stderr).toBe(3);
    expect(r.outputs).toMatchObject({ 'exit-code': '3', outcome: 'error' });
    const doc = parseValidResults<{ kind: string; command: string; exitCode: number; kernels: Array<{ kind: string; error?: { kind: string } }> }>(readFileSync(r.outputs.json!, 'utf8'));
    expect([doc.kind, doc.command, doc.exitCode, doc.kernels[0]?.kind, doc.kernels[0]?.error?.kind]).toEqual(['matrix', 'check', 3, 'error', 'fetch']);
    expect(readFileSync(r.outputs.junit!, 'utf8')).toContain('<testsuite');
    const md = readFileSync(r.outputs.summary!, 'utf8');
    expect(md).toMatch(/^## mmaplab check: ⚠️ ERROR/);
    expect(r.stepSummary).toBe(md);
    // The text report in the log.
    expect(r.stdout).toMatch(/ERROR: 0 of 1 kernels as expected/);
  });
});

describe('the matrix workflow uses the action', () => {
  const wf = parse(readFileSync(join(ROOT, '.github/workflows/mmaplab-matrix.yml'), 'utf8')) as {
    jobs: Record<string, { strategy?: { matrix: { kernel: string[] } }; steps: Step[] }>;
  };

  it('each kernel job: checkout, then `uses: ./` on the matrix kernel, the archives from the repository variables', () => {
    const lab = wf.jobs.lab!;
    expect(lab.steps.map((s) => s.uses)).toEqual(['actions/checkout@v4', './']);
    expect(lab.steps[1]!.with).toEqual({
      kernels: '${{ matrix.kernel }}',
      driver: '${{ env.DRIVER }}',
      'archive-uri': '${{ vars.MMAPLAB_DEBIAN_ARCHIVE }}',
      'security-uri': '${{ vars.MMAPLAB_DEBIAN_SECURITY_ARCHIVE }}',
    });
    for (const k of Object.keys(lab.steps[1]!.with!)) expect(Object.keys(action.inputs)).toContain(k);
  });

  it("the report job downloads the artifacts the action uploads and merges the results.json at each one's root", () => {
    const report = wf.jobs.report!;
    const download = report.steps.find((s) => s.uses?.startsWith('actions/download-artifact@'))!;
    const pattern = new RegExp(`^${download.with!.pattern!.replace(/\*/g, '.*')}$`);
    const upload = steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
    expect(upload.with).toMatchObject({ name: '${{ steps.prepare.outputs.artifact-name }}', path: '${{ steps.prepare.outputs.results-dir }}' });
    const names = wf.jobs.lab!.strategy!.matrix.kernel.map((k) => actionRun('prepare', { INPUT_KERNELS: k }).outputs);
    expect(wf.jobs.lab!.strategy!.matrix.kernel).toEqual(ALL_KERNELS);
    expect(names.map((o) => o['artifact-name'])).toEqual(['mmaplab-bullseye', 'mmaplab-bookworm', 'mmaplab-bookworm-backports', 'mmaplab-trixie', 'mmaplab-sid']);
    for (const o of names) {
      expect(o['artifact-name']).toMatch(pattern);
      expect(basename(o['results-dir']!)).toBe(o['artifact-name']);
    }
    // The action writes results.json at the results directory's root, which is the artifact's.
    expect(script).toContain('output json "$dir/results.json"');
    expect(report.steps.map((s) => s.run ?? '').join('\n')).toContain(`npx mmaplab merge ${download.with!.path}/*/results.json --junit`);
  });
});
