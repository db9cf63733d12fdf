/**
 * The entry point: signals handled, the program parsed, and one catch at the
 * top that turns every error into a one-line message and an exit code (the
 * codes come from the one exit policy, model/exit).
 */
import { CommanderError } from 'commander';
import { errorExitCode, ExitCode, signalExitCode } from '../model/exit.js';
import { isMmaplabError } from '../util/errors.js';
import { buildProgram } from './program.js';
import { reportError } from './report-error.js';
import { guardOutput } from './safe-output.js';
import { handleSignals, interrupted } from './signals.js';

export async function main(argv: string[]): Promise<number> {
  guardOutput();
  // A reader that stopped reading (`mmaplab run | head`): what is left to write goes nowhere, and the
  // command still finishes (its guests stopped, its files written) with its own exit status.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
      stream.write = () => true;
    });
  }
  handleSignals();
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (e) {
    // Reaping the guest makes the run fail; that is not worth a message of its own.
    const sig = interrupted();
    if (sig) return signalExitCode(sig);
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return ExitCode.ok;
      if (e.code === 'mmaplab.usage') process.stderr.write(`mmaplab: error: ${e.message}\n`);
      return ExitCode.usage;
    }
    if (isMmaplabError(e)) {
      reportError(e);
      return errorExitCode(e.kind);
    }
    process.stderr.write(`mmaplab: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return ExitCode.infra;
  }
}
