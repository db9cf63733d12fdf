/** Ports on the loopback interface. */
import { createServer } from 'node:net';

/**
 * A TCP port of 127.0.0.1 that was free a moment ago (the kernel's choice, so
 * two callers at once get different ones). Another process may still take it
 * before its user binds it: whoever binds it retries with another on failure.
 */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => (port ? resolve(port) : reject(new Error('no port was given'))));
    });
  });
}
