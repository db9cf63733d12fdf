/** gdb itself: on the user's terminal, or in batch mode with the user's commands after mmaplab's script. */
import { execa } from 'execa';
import { formatCommand } from '../util/exec.js';

export type GdbRun = { kind: 'interactive' } | { kind: 'batch'; commands: string };

/** gdb's command line: quiet, no debuginfod (no network, no question), mmaplab's script, then (batch) the user's. */
export function gdbArgs(script: string, run: GdbRun): string[] {
  const common = ['-q', '-iex', 'set debuginfod enabled off'];
  return run.kind === 'batch' ? [...common, '-nx', '-batch', '-x', script, '-x', run.commands] : [...common, '-x', script];
}

export interface RunningGdb {
  /** gdb's exit status (a signal: 128 + its number). */
  exited: Promise<number>;
  /** SIGTERM (gdb ends its session), or SIGKILL (a gdb only waiting for the session: nothing to end, and no word from it). */
  kill(signal?: 'SIGTERM' | 'SIGKILL'): void;
  command: string;
}

/** Start gdb on this process's stdio; it takes the terminal until it exits. */
export function startGdb(gdb: string, script: string, run: GdbRun): RunningGdb {
  const args = gdbArgs(script, run);
  const p = execa(gdb, args, { stdio: run.kind === 'batch' ? ['ignore', 'inherit', 'inherit'] : 'inherit', reject: false, cleanup: true });
  const exited = p.then((r) => (typeof r.exitCode === 'number' ? r.exitCode : 128 + (r.signal === 'SIGKILL' ? 9 : 15)));
  return { exited, kill: (signal = 'SIGTERM') => p.kill(signal), command: formatCommand(gdb, args) };
}
