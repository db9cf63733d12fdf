/** Kernel specs as the user writes them on the command line. */
import { usageError } from '../util/errors.js';

export type KernelSpec = {
  kind: 'debian';
  /** A Debian suite: bookworm, bullseye, trixie, sid, bookworm-backports, ... */
  suite: string;
  /** Kernel flavour, e.g. cloud-amd64 (fast to boot) or amd64. */
  flavour: string;
};

export const DEFAULT_KERNEL = 'debian:bookworm';
export const DEFAULT_FLAVOUR = 'cloud-amd64';

export function parseKernelSpec(text: string, flavour = DEFAULT_FLAVOUR): KernelSpec {
  const m = /^debian:([a-z][a-z0-9-]*)$/.exec(text.trim());
  if (m) return { kind: 'debian', suite: m[1]!, flavour };
  throw usageError(`unknown kernel spec '${text}'`, `use debian:<suite>, for example ${DEFAULT_KERNEL}`);
}

export function formatKernelSpec(spec: KernelSpec): string {
  return `debian:${spec.suite}`;
}
