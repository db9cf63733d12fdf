/**
 * Typed errors, thrown deep and caught once in the CLI. Each carries the exit
 * code class it maps to and, where we know one, a hint that tells the user what
 * to do next (install a package, pass an option, look at a log).
 */

export type ErrorKind =
  | 'usage'
  | 'missing-tool'
  | 'fetch'
  | 'build'
  /** No sandbox can be made for an untrusted driver's build. */
  | 'sandbox'
  | 'boot'
  | 'guest'
  /** An SSH target: unreachable, untrusted host key, no sudo, no headers, lost. */
  | 'target'
  | 'internal';

export interface SourceLocation {
  severity: 'error' | 'warning' | 'note';
  file: string | undefined;
  line: number | undefined;
  column: number | undefined;
  message: string;
}

export class MmaplabError extends Error {
  readonly kind: ErrorKind;
  readonly hint: string | undefined;
  /** Extra lines shown under the one-line message (e.g. compiler diagnostics). */
  readonly details: readonly string[];
  /** Files the user should look at (console log, build log). */
  readonly artifacts: Readonly<Record<string, string>>;
  /** Source locations the error is about (compiler diagnostics), for CI annotations. */
  readonly locations: readonly SourceLocation[];

  constructor(
    kind: ErrorKind,
    message: string,
    opts: {
      hint?: string;
      details?: readonly string[];
      artifacts?: Record<string, string>;
      locations?: readonly SourceLocation[];
      cause?: unknown;
    } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MmaplabError';
    this.kind = kind;
    this.hint = opts.hint;
    this.details = opts.details ?? [];
    this.artifacts = opts.artifacts ?? {};
    this.locations = opts.locations ?? [];
  }
}

export function usageError(message: string, hint?: string): MmaplabError {
  return new MmaplabError('usage', message, hint === undefined ? {} : { hint });
}

export function isMmaplabError(e: unknown): e is MmaplabError {
  return e instanceof MmaplabError;
}
