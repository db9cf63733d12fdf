/** One argument for a POSIX shell, single-quoted (job.env, remote commands, QEMU's exec: URIs). */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
