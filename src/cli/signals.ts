/**
 * Ctrl-C or a kill: stop every machine (guests killed, their consoles kept in
 * place; targets cleaned up over SSH, at most 30 s), then leave with 128 +
 * the signal. Child processes started through execa are killed on exit too.
 */
import { signalExitCode } from '../model/exit.js';
import { interruptLiveViews } from './live-view.js';

let stopping: 'SIGINT' | 'SIGTERM' | undefined;

/** The signal, once one came: the command's own failure that follows is not worth a message. */
export function interrupted(): 'SIGINT' | 'SIGTERM' | undefined {
  return stopping;
}

/** Where signals go while a debugger (gdb, an IDE) holds the session: to it, not to the stop-everything below. */
let diverted: ((sig: 'SIGINT' | 'SIGTERM') => void) | undefined;

/**
 * Send Ctrl-C and kills to `to` instead of stopping mmaplab (gdb on the
 * terminal takes Ctrl-C for its own; --print-gdb waits for it to end the
 * session cleanly). The result gives them back.
 */
export function divertSignals(to: (sig: 'SIGINT' | 'SIGTERM') => void): () => void {
  diverted = to;
  return () => {
    if (diverted === to) diverted = undefined;
  };
}

export function handleSignals(): void {
  const onSignal = (sig: 'SIGINT' | 'SIGTERM') => {
    if (diverted) {
      diverted(sig);
      return;
    }
    if (stopping) return;
    stopping = sig;
    interruptLiveViews();
    process.stderr.write(`\nmmaplab: interrupted (${sig}); stopping the guest or cleaning up the target\n`);
    const giveUp = new Promise((r) => setTimeout(r, 30_000).unref());
    // Loaded only now: the machines' code (QEMU, SSH) is not what every command start should pay for.
    const stopAll = import('../machines/live.js').then(({ abortAll }) => abortAll());
    void Promise.race([stopAll, giveUp]).finally(() => process.exit(signalExitCode(sig)));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
