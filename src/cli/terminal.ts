/**
 * The user's terminal for `mmaplab shell`: raw mode on a TTY (keys go to the
 * guest as typed), and Ctrl-] (0x1d) as the way out even when the shell on
 * the other side does not answer.
 */
import type { ShellSession } from '../machines/machine.js';
import { writeRaw } from './safe-output.js';

export async function withTerminal<T>(use: (session: Omit<ShellSession, 'moduleName'>) => Promise<T>): Promise<T> {
  const tty = process.stdin.isTTY === true;
  let leave: () => void = () => {};
  const detach = new Promise<void>((r) => (leave = r));
  const watch = (d: Buffer) => {
    if (d.includes(0x1d)) leave();
  };
  process.stdin.on('data', watch);
  if (tty) process.stdin.setRawMode(true);
  try {
    return await use({
      input: process.stdin,
      output: (text: string) => writeRaw(text),
      detach,
      terminal: { rows: process.stdout.rows ?? 24, cols: process.stdout.columns ?? 80 },
    });
  } finally {
    if (tty) process.stdin.setRawMode(false);
    process.stdin.off('data', watch);
    process.stdin.pause();
  }
}
