/**
 * mmaplab debug's facts, as the command finds them and the CLI renders them:
 * the loaded driver's sections, its mmap handler, the session gdb attaches to,
 * and each mapping test sent from gdb.
 */
import type { CheckName } from './checks.js';
import type { StrategyRun } from './outcome.js';

export interface ModuleSection {
  name: string;
  /** 0x followed by lowercase hex digits. */
  addr: string;
}

export type MmapHandler =
  | { kind: 'found'; name: string; file: string; line: number; via: 'file_operations' | 'proc_ops' }
  /** Several initializers name different functions: the first is taken, the others named. */
  | { kind: 'several'; name: string; file: string; line: number; via: 'file_operations' | 'proc_ops'; others: string[] }
  | { kind: 'none'; why: string };

export interface DebugSession {
  module: string;
  kernel: string;
  device: string;
  port: number;
  /** The gdb script (symbols, breakpoint, connection), the symbols alone, the launch.json snippet: in the run directory. */
  script: string;
  symbolsScript: string;
  launchJson: string;
  launchText: string;
  gdbCommand: string;
  vmlinux: string | undefined;
  /** Why the kernel's symbols are not used (none: they are). */
  noKernelSymbols: string | undefined;
  handler: MmapHandler;
  sections: ModuleSection[];
  consoleLog: string;
  runDir: string;
  frontEnd: 'gdb' | 'print' | 'shell';
}

export interface MapRun {
  check: CheckName;
  end: StrategyRun['end'];
  /** The test program's exit status for the check (none: it did not report one). */
  status: number | undefined;
  pagesOk: number | undefined;
  pages: number | undefined;
}
