/**
 * The one subprocess wrapper. Every external command goes through here: argv
 * arrays only (never a shell string), the exact command recorded for the log,
 * and failures turned into a typed result the caller can inspect or throw.
 */
import { execa, type Options } from 'execa';
import { MmaplabError, type ErrorKind } from './errors.js';
import { missingToolError } from './tools.js';

export interface ExecResult {
  command: string;
  exitCode: number | undefined;
  signal: string | undefined;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved as they arrived. */
  all: string;
  ok: boolean;
  durationMs: number;
  stdoutBytes?: Buffer;
  /** The output passed maxOutputBytes: the process was stopped there and the output is cut. */
  outputCapped?: boolean;
}

export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  input?: string | Buffer;
  signal?: AbortSignal;
  /** Keep stdout as bytes (ExecResult.stdoutBytes), for binary output. */
  binary?: boolean;
  /** Stop the process once it has printed this much (each of stdout and stderr); execa's default is 100 MB. */
  maxOutputBytes?: number;
  /** Start from an empty environment (env is then all of it), not from this process's. */
  clearEnv?: boolean;
  /** Sees each line of stdout as it arrives (progress to show); a line it returns false for is left out of the result. */
  stdoutLines?: (line: string) => boolean;
}

/** Quote an argv for display only; it is never passed to a shell. */
export function formatCommand(file: string, args: readonly string[]): string {
  const q = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return [file, ...args].map(q).join(' ');
}

const commandLog: string[] = [];
/** Every command run so far in this process, for --verbose and bug reports. */
export function executedCommands(): readonly string[] {
  return commandLog;
}

export async function run(file: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  // execa hands a generator bytes in binary mode: the lines it is meant to see would be numbers.
  if (opts.binary && opts.stdoutLines) throw new Error('run(): stdoutLines is for text output, not binary');
  const command = formatCommand(file, args);
  commandLog.push(command);
  const started = performance.now();
  const execaOpts: Options = {
    reject: false,
    all: true,
    stripFinalNewline: false,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    ...(opts.env === undefined ? {} : { env: opts.env, extendEnv: !opts.clearEnv }),
    ...(opts.timeoutMs === undefined ? {} : { timeout: opts.timeoutMs }),
    ...(opts.input === undefined ? { stdin: 'ignore' as const } : { input: opts.input }),
    ...(opts.signal === undefined ? {} : { cancelSignal: opts.signal }),
    ...(opts.binary ? { encoding: 'buffer' as const, all: false } : {}),
    ...(opts.maxOutputBytes === undefined ? {} : { maxBuffer: opts.maxOutputBytes }),
    ...(opts.stdoutLines === undefined ? {} : { stdout: lineWatcher(opts.stdoutLines) }),
  };
  const r = await execa(file, args, execaOpts);
  if ((r as { code?: string }).code === 'ENOENT' || /ENOENT/.test(String((r as { originalMessage?: string }).originalMessage ?? ''))) {
    throw missingToolError(file);
  }
  const text = (v: unknown) => (typeof v === 'string' ? v : v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : v === undefined ? '' : String(v));
  return {
    ...(opts.binary && r.stdout instanceof Uint8Array ? { stdoutBytes: Buffer.from(r.stdout) } : {}),
    command,
    exitCode: r.exitCode,
    signal: r.signal,
    timedOut: r.timedOut,
    stdout: text(r.stdout),
    stderr: text(r.stderr),
    all: text(r.all),
    ok: !r.failed,
    durationMs: performance.now() - started,
    ...((r as { isMaxBuffer?: boolean }).isMaxBuffer ? { outputCapped: true } : {}),
  };
}

function lineWatcher(see: (line: string) => boolean) {
  return function* (line: unknown): Generator<string, void, undefined> {
    const text = String(line);
    if (see(text)) yield text;
  };
}

/** Run and throw a typed error (with the tail of the output) unless it succeeded. */
export async function runChecked(
  kind: ErrorKind,
  what: string,
  file: string,
  args: readonly string[],
  opts: ExecOptions & { hint?: string } = {},
): Promise<ExecResult> {
  const r = await run(file, args, opts);
  if (!r.ok) throw execFailure(kind, what, r, opts.hint);
  return r;
}

export function describeFailure(r: ExecResult): string {
  if (r.timedOut) return 'timed out';
  if (r.signal) return `killed by ${r.signal}`;
  return `exit status ${r.exitCode}`;
}

export function execFailure(kind: ErrorKind, what: string, r: ExecResult, hint?: string): MmaplabError {
  const tail = r.all.trimEnd().split('\n').slice(-15);
  return new MmaplabError(kind, `${what} failed (${describeFailure(r)}): ${r.command}`, {
    details: tail,
    ...(hint === undefined ? {} : { hint }),
  });
}

/**
 * Start a long-running process (QEMU) whose output the caller streams. execa's
 * cleanup kills it if this process exits for any reason, so it is always reaped.
 */
export function spawnLogged(file: string, args: readonly string[], opts: { cwd?: string; detached?: boolean } = {}) {
  commandLog.push(formatCommand(file, args));
  return execa(file, args, {
    reject: false,
    cleanup: true,
    // detached: a process group of its own, out of reach of the terminal's Ctrl-C (which is then gdb's);
    // execa does not reap such a process on exit, so its caller must (see GuestVm).
    ...(opts.detached ? { detached: true } : {}),
    // A pipe that stays open and silent: QEMU's stdio chardev polls stdin, and on
    // /dev/null it would spin on end-of-file, taking CPU from the guest.
    stdin: 'pipe',
    buffer: false,
    encoding: 'utf8',
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
  });
}
