/**
 * The kernel cache under real conditions: an empty cache filled by two runs at
 * once, reuse with no network, and a fetch that cannot reach the archive.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunReport } from '../../src/model/report.js';
import { qemuProcesses, runCli } from './cli.js';
import { parseValidResults } from '../support/schema.js';

// Nothing listens on the discard port: apt fails at once, as with no network.
const DEAD_ARCHIVE = 'http://127.0.0.1:9/debian';

afterEach(() => {
  expect(qemuProcesses()).toEqual([]);
});

describe('kernel cache', () => {
  const cache = mkdtempSync(join(tmpdir(), 'mmaplab-test-cache-'));
  const env = { MMAPLAB_CACHE_DIR: cache };

  it('two runs at once on an empty cache both succeed and leave one complete kernel, no staging', async () => {
    const [a, b] = await Promise.all([runCli(['run', '--json', '--accel', 'tcg', '--strategy', 'seed', '--check', 'private,shared'], env), runCli(['run', '--json', '--accel', 'tcg', '--strategy', 'seed', '--check', 'private,shared'], env)]);
    expect([a.exitCode, b.exitCode], a.stderr + b.stderr).toEqual([0, 0]);
    const ra = parseValidResults<RunReport>(a.stdout);
    const rb = parseValidResults<RunReport>(b.stdout);
    expect(ra.kernel.release).toBe(rb.kernel.release);
    const entries = readdirSync(join(cache, 'kernels', 'debian'));
    expect(entries.sort()).toEqual([ra.kernel.release, 'aliases'].sort());
    expect(readdirSync(join(cache, 'builds')).filter((n) => n.startsWith('.staging'))).toEqual([]);
  }, 240_000);

  it('reuses the cached kernel with no network', async () => {
    const r = await runCli(['run', '--json', '--accel', 'tcg', '--strategy', 'seed', '--check', 'private,shared', '--archive-uri', DEAD_ARCHIVE], env);
    expect(r.exitCode, r.stderr).toBe(0);
  }, 60_000);

  it('says why when the archive cannot be reached, exit 3', async () => {
    const r = await runCli(['run', '--accel', 'tcg', '--refresh-kernel', '--archive-uri', DEAD_ARCHIVE, '--security-uri', DEAD_ARCHIVE], env);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/^mmaplab: error: apt-get update of the private kernel sources failed$/m);
    expect(r.stderr).toMatch(/127\.0\.0\.1/);
    expect(readdirSync(join(cache, 'kernels', 'debian')).filter((n) => n.startsWith('.staging'))).toEqual([]);
  }, 60_000);
});
