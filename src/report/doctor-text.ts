/** `mmaplab doctor` as text: one line per finding, what to do under each that is not ok, then the install commands. */
import type { ChalkInstance } from 'chalk';
import type { DoctorReport } from '../model/doctor.js';
import { terminalSafe } from '../util/safe-text.js';

const MARK = { ok: '✓', warn: '!', missing: '✗' } as const;

export function renderDoctorText(r: DoctorReport, style: ChalkInstance): string {
  if (r.kind === 'unsupported') return `${r.advice.map((a) => `${style.yellow('!')} ${a}`).join('\n')}\n`;
  const colour = { ok: style.green, warn: style.yellow, missing: style.red } as const;
  const lines: string[] = [];
  for (const f of r.findings) {
    lines.push(`${colour[f.status](MARK[f.status])} ${f.title}: ${terminalSafe(f.detail)}`);
    if (f.status !== 'ok' && f.fix) lines.push(style.dim(`    → ${f.fix}`));
  }
  const missing = r.findings.filter((f) => f.status === 'missing').length;
  const warnings = r.findings.filter((f) => f.status === 'warn').length;
  lines.push('');
  if (r.install.debian) {
    lines.push('To install what is missing:');
    lines.push(`  Debian/Ubuntu: npx mmaplab setup   (or: ${r.install.debian})`);
    if (r.install.fedora) lines.push(`  Fedora:        ${r.install.fedora}`);
    if (r.install.arch) lines.push(`  Arch Linux:    ${r.install.arch}`);
    lines.push('');
  }
  lines.push(
    missing > 0
      ? style.red(`mmaplab cannot work here yet: ${missing} thing(s) missing${warnings ? `, ${warnings} warning(s)` : ''}.`)
      : style.green(`mmaplab can work here${warnings ? ` (${warnings} warning(s))` : ''}.`),
  );
  return `${lines.join('\n')}\n`;
}
