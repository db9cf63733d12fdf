/**
 * The loaded driver's sections as the guest's kernel placed them (the
 * `section` records a SECTIONS job sends from /sys/module/<name>/sections).
 * Section names come from the driver's .ko, so they are untrusted: only plain
 * names (letters, digits, `_`, `.`, `-`, `$`) and hex addresses are kept, the rest
 * are named as refused, so nothing a driver names can reach a gdb command line.
 */
import type { GuestRecord } from '../guest/protocol.js';
import type { ModuleSection } from '../model/debug.js';

export type { ModuleSection } from '../model/debug.js';

export type ModuleSections =
  | { kind: 'found'; sections: ModuleSection[]; text: string; refused: string[] }
  /** No .text reported, or every address 0 (the guest would not show them). */
  | { kind: 'none'; why: string };

const SAFE_NAME = /^[A-Za-z0-9_.$-]{1,200}$/;
const HEX = /^0x[0-9a-fA-F]{1,16}$/;

export function moduleSections(records: readonly GuestRecord[]): ModuleSections {
  const sections: ModuleSection[] = [];
  const refused: string[] = [];
  for (const r of records) {
    if (r.t !== 'section') continue;
    if (!SAFE_NAME.test(r.name) || !HEX.test(r.addr)) {
      refused.push(JSON.stringify(r.name).slice(0, 80));
      continue;
    }
    if (!sections.some((s) => s.name === r.name)) sections.push({ name: r.name, addr: r.addr.toLowerCase() });
  }
  const text = sections.find((s) => s.name === '.text');
  if (!text) return { kind: 'none', why: sections.length ? 'the driver has no .text section in /sys/module' : 'the guest reported no sections in /sys/module' };
  if (sections.every((s) => /^0x0+$/.test(s.addr))) return { kind: 'none', why: "the guest's /sys/module shows every section at 0 (kernel pointers hidden)" };
  return { kind: 'found', sections, text: text.addr, refused };
}
