/** Running the real CLI the way a user does, for integration tests. */
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers.js';

export const BIN = join(ROOT, 'bin', 'mmaplab.js');

export interface CliResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** A private state dir per test file, so run artefacts do not pile up in the user's. */
export const STATE_DIR = mkdtempSync(join(tmpdir(), 'mmaplab-test-state-'));

export function startCli(args: string[], env: Record<string, string> = {}, stdin: 'ignore' | 'pipe' = 'ignore') {
  return execa(process.execPath, [BIN, ...args], {
    reject: false,
    cwd: ROOT,
    env: { MMAPLAB_STATE_DIR: STATE_DIR, NO_COLOR: '1', ...env },
    stdin,
  });
}

export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const t0 = performance.now();
  const r = await startCli(args, env);
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr), durationMs: performance.now() - t0 };
}

/** Processes on this machine whose command line matches pattern (pgrep -f), pgrep itself aside. */
export function processesMatching(pattern: string): string[] {
  try {
    return execFileSync('pgrep', ['-a', '-f', pattern], { encoding: 'utf8' }).split('\n').filter((l) => l && !l.includes('pgrep'));
  } catch {
    return [];
  }
}

/** QEMU processes running on this machine right now (tests run one file at a time). */
export function qemuProcesses(): string[] {
  // Every architecture's QEMU: qemu-system-x86_64, -i386, -aarch64.
  return processesMatching('qemu-system-').filter((l) => l.includes('mmaplab'));
}
