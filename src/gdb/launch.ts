/** The VS Code launch.json configuration (cppdbg) that attaches an IDE to mmaplab debug's guest. */

export interface LaunchInput {
  name: string;
  port: number;
  /** The kernel with its debug info, or else the driver's .ko. */
  program: string;
  /** The script of the symbols and breakpoint (gdb/script.ts symbolsScript). */
  symbolsScript: string;
  cwd: string;
  gdb: string;
}

export interface LaunchConfiguration {
  name: string;
  type: 'cppdbg';
  request: 'launch';
  program: string;
  cwd: string;
  MIMode: 'gdb';
  miDebuggerPath: string;
  miDebuggerServerAddress: string;
  stopAtConnect: true;
  setupCommands: Array<{ description: string; text: string; ignoreFailures: boolean }>;
}

export function launchConfiguration(i: LaunchInput): LaunchConfiguration {
  return {
    name: i.name,
    type: 'cppdbg',
    request: 'launch',
    program: i.program,
    cwd: i.cwd,
    MIMode: 'gdb',
    miDebuggerPath: i.gdb,
    miDebuggerServerAddress: `127.0.0.1:${i.port}`,
    stopAtConnect: true,
    setupCommands: [{ description: "mmaplab's symbols, sections and breakpoint", text: `source ${i.symbolsScript}`, ignoreFailures: false }],
  };
}

/** The snippet to paste into .vscode/launch.json. */
export function launchJson(i: LaunchInput): string {
  return `${JSON.stringify({ version: '0.2.0', configurations: [launchConfiguration(i)] }, null, 2)}\n`;
}
