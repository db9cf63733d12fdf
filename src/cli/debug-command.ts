/**
 * `mmaplab debug [driver]`, and `mmaplab shell --gdb` (which shares it): the
 * options, the front end (gdb on the terminal, --gdb-batch, --print-gdb, or
 * the guest's shell), and what is printed around it.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { DebugFrontEnd } from '../commands/debug.js';
import { makeStyle } from '../report/style.js';
import { addDriverChoice, addGuestOptions, checkDriverChoice, setupOptions, usage, type GuestCliOptions } from './options.js';
import { progressPrinter, wantsLiveView } from './progress.js';
import { LiveView } from './live-view.js';
import { divertSignals } from './signals.js';
import { withTerminal } from './terminal.js';
import { expandKernelSpecs } from '../kernel/spec.js';
import type { Progress } from '../model/progress.js';

export interface DebugCliOptions extends GuestCliOptions {
  strategy: string;
  kernelSymbols: boolean;
  printGdb?: boolean;
  gdbBatch?: string;
}

/** Progress until the session is ready: a live area on a terminal (the download's bar), plain lines elsewhere; stopped before gdb takes the terminal. */
function debugProgress(o: DebugCliOptions): { progress: Progress; stop: () => void } {
  const err = makeStyle({ color: o.color === false ? false : undefined, stream: process.stderr });
  const view = !wantsLiveView() || o.verbose ? undefined : new LiveView(process.stderr, err);
  const sink = view ? view.sink('debug') : progressPrinter(err);
  // Once gdb (or the shell) has the terminal, progress says nothing more there.
  let on = true;
  return {
    progress: (phase, message, detail) => {
      if (on) sink(phase, message, detail);
    },
    stop: () => {
      on = false;
      view?.stop();
    },
  };
}

/** Run a debug session with this front end; its exit status is gdb's (gdb front end), else 0. */
export async function runDebug(driver: string | undefined, o: DebugCliOptions, frontEnd: (make: (fe: DebugFrontEnd) => Promise<number>) => Promise<number>): Promise<void> {
  const { labDebug } = await import('../commands/debug.js');
  const { renderDebugBanner, renderMapEnded, renderPrintGdb } = await import('../report/debug-text.js');
  await checkDriverChoice(driver, o.strategy);
  if (expandKernelSpecs(o.kernel).length > 1 || (o.arch?.length ?? 0) > 1) throw usage('debug opens one guest: give one --kernel and one --arch');
  // Its debug symbols package and gdb's architecture are amd64's so far.
  if (o.arch?.some((a) => a !== 'amd64')) throw usage('mmaplab debug boots amd64 guests only so far: leave out --arch (check and shell take --arch i386 and --arch arm64)');
  const err = makeStyle({ color: o.color === false ? false : undefined, stream: process.stderr });
  const shown = debugProgress(o);
  const status = await frontEnd(async (fe) => {
    const r = await labDebug({
      ...setupOptions(o, shown.progress),
      source: driver,
      strategy: o.strategy,
      kernelSymbols: o.kernelSymbols,
      frontEnd: fe,
      divertSignals,
      onReady: (s) => {
        shown.stop();
        process.stderr.write(renderDebugBanner(s, err));
        if (fe.kind === 'print') void readFile(s.script, 'utf8').then((script) => process.stdout.write(renderPrintGdb(s, script)));
      },
      onMapEnded: (m) => process.stderr.write(renderMapEnded(m, err)),
    });
    for (const n of r.notes) process.stderr.write(err.dim(`mmaplab: note: ${n}\n`));
    process.stderr.write(err.dim(`mmaplab: the guest is off; console kept in ${r.session.consoleLog}\n`));
    return r.gdbStatus ?? 0;
  });
  process.exitCode = status;
}

export function addDebug(program: Command): void {
  const debug = program
    .command('debug')
    .description("debug the driver with gdb: a guest booted for it (KASLR off, QEMU's gdb stub), the driver loaded, its symbols at their real addresses, a breakpoint at its mmap handler; `mmaplab-map shared` in gdb runs the mapping test");
  addDriverChoice(debug)
    .option('--no-kernel-symbols', "the module's symbols only: do not fetch (or use) the kernel's (Debian's linux-image-<release>-dbg, a 283 MB download once)")
    .option('--print-gdb', 'print the gdb commands and a VS Code launch.json snippet instead of starting gdb; the guest runs until Ctrl-C')
    .option('--gdb-batch <file>', "run gdb in batch mode: mmaplab's script, then the commands in <file> (end with detach)");
  addGuestOptions(debug).action(async (driver: string | undefined, o: DebugCliOptions) => {
    if (o.printGdb && o.gdbBatch) throw usage('--print-gdb and --gdb-batch: choose one');
    const batch = o.gdbBatch ? resolve(o.gdbBatch) : undefined;
    await runDebug(driver, o, (make) => {
      if (o.printGdb) return make({ kind: 'print', stopped: new Promise<void>(() => {}) });
      return make({ kind: 'gdb', run: batch ? { kind: 'batch', commands: batch } : { kind: 'interactive' } });
    });
  });
}

/** shell --gdb: the guest's shell on this terminal, booted for debugging; gdb attaches from another. */
export function shellWithGdb(driver: string | undefined, o: DebugCliOptions): Promise<void> {
  return runDebug(driver, o, (make) => withTerminal((session) => make({ kind: 'shell', session })));
}
