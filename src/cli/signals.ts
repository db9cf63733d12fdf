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

export function handleSignals(): void {
  const onSignal = (sig: 'SIGINT' | 'SIGTERM') => {
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
