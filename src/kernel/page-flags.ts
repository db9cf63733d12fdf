/**
 * PG_reserved's bit in struct page's flags, read from the kernel's own
 * headers (the enum moves between versions). Undefined when the headers do
 * not say it plainly (a conditional before it), so nothing is guessed.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Kernel } from './types.js';

export function pgReservedBit(pageFlagsH: string): number | undefined {
  const start = pageFlagsH.indexOf('enum pageflags {');
  if (start < 0) return undefined;
  let bit = 0;
  for (const raw of pageFlagsH.slice(start + 'enum pageflags {'.length).split('\n')) {
    const line = raw.replace(/\/\*.*?\*\//g, '').trim();
    if (line.startsWith('#')) return undefined;
    const m = /^(PG_\w+)\s*(?:=\s*(\d+))?\s*,/.exec(line);
    if (!m) {
      if (line.startsWith('}')) return undefined;
      continue;
    }
    if (m[2] !== undefined) bit = Number(m[2]);
    if (m[1] === 'PG_reserved') return bit;
    bit++;
  }
  return undefined;
}

/** The bit for a cached Debian kernel, from its -common headers. */
export async function kernelPgReservedBit(kernel: Kernel): Promise<number | undefined> {
  const src = join(kernel.dir, 'root', 'usr', 'src');
  const common = (await readdir(src).catch(() => [] as string[])).find((d) => d.endsWith('-common'));
  if (!common) return undefined;
  const text = await readFile(join(src, common, 'include', 'linux', 'page-flags.h'), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : pgReservedBit(text);
}
