/**
 * Every byte mmaplab writes to stdout and stderr passes through terminalSafe:
 * text from the guest or the driver (printk lines, device and file names,
 * gcc's diagnostics of the submission) cannot move the cursor, clear the
 * screen, set the clipboard or answer a query on the user's terminal. Only
 * `mmaplab shell` writes raw (the user is at the guest's console there), and
 * the live status area its cursor moves around text it made safe.
 */
import { terminalSafe } from '../util/safe-text.js';

type Write = typeof process.stdout.write;

const raw: { stdout: Write; stderr: Write } = { stdout: process.stdout.write.bind(process.stdout), stderr: process.stderr.write.bind(process.stderr) };

function guarded(original: Write): Write {
  const write = original as (chunk: unknown, ...rest: unknown[]) => boolean;
  return ((chunk: unknown, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? terminalSafe(chunk) : chunk instanceof Uint8Array ? terminalSafe(Buffer.from(chunk).toString('utf8')) : chunk;
    return write(text, ...rest);
  });
}

let installed = false;
export function guardOutput(): void {
  if (installed) return;
  installed = true;
  process.stdout.write = guarded(raw.stdout);
  process.stderr.write = guarded(raw.stderr);
}

/** stderr as it is, for the live status area's own cursor moves (its text is made safe before). */
export function writeRawStderr(text: string): boolean {
  return raw.stderr(text);
}

/** The terminal as it is, for the guest's console in `mmaplab shell`. */
export function writeRaw(text: string): boolean {
  return raw.stdout(text);
}
