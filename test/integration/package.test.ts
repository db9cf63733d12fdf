/**
 * mmaplab as a package, not a clone: `npm pack` holds the compiled code, the
 * driver, the test program and the guest's scripts, and no tests or
 * fixtures; installed into an empty project outside the repository, its
 * `mmaplab run` works from there, with the cache and state where they are,
 * and so does `mmaplab setup` (the package's own install-deps, then doctor).
 */
import { mkdirSync, mkdtempSync, readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../src/model/report.js';
import { ROOT } from '../helpers.js';
import { qemuProcesses, STATE_DIR } from './cli.js';
import { parseValidResults, SCHEMA_PATH } from '../support/schema.js';

describe('the package', () => {
  it('packs the compiled CLI and what goes into the guest, without tests; installed into an empty project, `npx mmaplab run` passes there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmaplab-test-package-'));
    // dist/ is built by npm test's own tsc; the pack need not build it again.
    const pack = await execa('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--json'], { cwd: ROOT });
    const info = (JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>)[0]!;
    const files = info.files.map((f) => f.path);
    for (const f of ['bin/mmaplab.js', 'dist/cli/main.js', 'dist/grade/rubric.js', 'vm/init', 'vm/job.sh', 'bin/install-deps', 'bin/packages.txt', 'kernel-module/Kbuild', 'kernel-module/mmaplab_main.c', 'userspace/mmap-test.c', 'userspace/guest-sync.c', 'package.json', 'README.md', 'schema/results.schema.json']) expect(files).toContain(f);
    expect(files.filter((f) => /^(test|src|\.github)\//.test(f) || f.endsWith('.map'))).toEqual([]);

    const project = join(dir, 'course');
    mkdirSync(project);
    await execa('npm', ['init', '-y'], { cwd: project });
    await execa('npm', ['install', '-D', '--no-audit', '--no-fund', join(dir, info.filename)], { cwd: project });
    const r = await execa('npx', ['--no-install', 'mmaplab', 'run', '--json'], { cwd: project, reject: false, env: { MMAPLAB_STATE_DIR: STATE_DIR, NO_COLOR: '1' } });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const report = parseValidResults<RunReport>(String(r.stdout));
    // The JSON contract ships where a CI user's project finds it, the same file the tests hold every document to.
    expect(readFileSync(join(project, 'node_modules', 'mmaplab', 'schema', 'results.schema.json'), 'utf8')).toBe(readFileSync(SCHEMA_PATH, 'utf8'));
    expect(report.status).toBe('pass');
    // It was the installed package that ran (its bin links into the project's node_modules), with its state where the user's is.
    expect(realpathSync(join(project, 'node_modules', '.bin', 'mmaplab'))).toBe(join(realpathSync(project), 'node_modules', 'mmaplab', 'bin', 'mmaplab.js'));
    expect(report.artifacts.dir.startsWith(STATE_DIR)).toBe(true);
    // A package user's other command: setup runs the package's own install-deps (all is installed here), then doctor.
    const setup = await execa('npx', ['--no-install', 'mmaplab', 'setup'], { cwd: project, reject: false, env: { NO_COLOR: '1' } });
    expect(setup.exitCode, String(setup.stderr)).toBe(0);
    expect(String(setup.stdout)).toContain('install-deps: everything is installed');
    expect(String(setup.stdout)).toContain('mmaplab can work here');
    expect(qemuProcesses()).toEqual([]);
  });
});
