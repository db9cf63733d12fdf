/** What mmaplab debug tells its user once the guest is ready for gdb, and when a mapping test sent from gdb ends. */
import type { ChalkInstance } from 'chalk';
import type { DebugSession, MapRun, MmapHandler } from '../model/debug.js';

function breakpointLine(h: MmapHandler): string {
  switch (h.kind) {
    case 'found':
      return `breakpoint at ${h.name} (the .${h.via === 'proc_ops' ? 'proc_mmap' : 'mmap'} of its ${h.via}, ${h.file}:${h.line})`;
    case 'several':
      return `breakpoint at ${h.name} (${h.file}:${h.line}); the sources also name ${h.others.join(', ')} as mmap handlers (break on them by hand)`;
    case 'none':
      return `no mmap handler in the driver's sources (${h.why}); once connected, gdb looks in the guest's memory for one in the module's file_operations and proc_ops, and breaks there`;
  }
}

/** The banner: what is loaded, where gdb connects, which symbols, the breakpoint, how to run the test. */
export function renderDebugBanner(s: DebugSession, style: ChalkInstance): string {
  const sections = s.sections.map((x) => `${x.name} ${x.addr}`).join(', ');
  const lines = [
    `${s.module} is loaded in ${s.kernel} (KASLR off); its device: ${s.device}; mmap-test is on the guest's PATH`,
    `gdb stub on 127.0.0.1:${s.port}; the kernel's symbols: ${s.vmlinux ?? `none (${s.noKernelSymbols ?? 'not asked'}); the module's own symbols work`}`,
    `the module's sections, from the guest's /sys/module/${s.module}/sections: ${sections}`,
    breakpointLine(s.handler),
    s.frontEnd === 'shell'
      ? `attach gdb from another terminal: ${s.gdbCommand} (run the test in this shell: mmap-test --device ${s.device} --checks shared)`
      : 'in gdb, `mmaplab-map shared` (or private, offset, ...) runs the mapping test in the guest and continues, so the breakpoint hits',
    `gdb script: ${s.script}; the guest's console: ${s.consoleLog}`,
  ];
  return lines.map((l) => style.dim(`mmaplab: ${l}\n`)).join('');
}

/** --print-gdb: the commands for gdb and the launch.json snippet for VS Code, on stdout. */
export function renderPrintGdb(s: DebugSession, script: string): string {
  return [
    `# gdb: run \`${s.gdbCommand}\`, or give gdb these commands (${s.script}):`,
    script.trimEnd(),
    '',
    `# VS Code (cppdbg), for .vscode/launch.json (also in ${s.launchJson}):`,
    s.launchText.trimEnd(),
    '',
    '# the guest keeps running until Ctrl-C',
    '',
  ].join('\n');
}

export function renderMapEnded(m: MapRun, style: ChalkInstance): string {
  const pages = m.pages === undefined ? '' : `, ${m.pagesOk ?? 0}/${m.pages} pages read right`;
  const how = m.end === 'done' ? (m.status === undefined ? 'no result from the test program' : `the test program exited ${m.status}${pages}`) : `the guest ${m.end === 'timeout' ? 'timed out' : 'stopped'} (${m.end})`;
  return style.dim(`mmaplab: the ${m.check} mapping test ended: ${how}\n`);
}
