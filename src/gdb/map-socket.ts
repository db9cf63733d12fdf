/**
 * The Unix socket gdb's `mmaplab-map` talks to: one request line per
 * connection (`map CHECK`, or `ready`), one reply line (`ok WHAT` or the reason it was
 * refused). What a request does is the caller's: mmaplab debug sends the
 * mapping test to the guest.
 */
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';

export type MapRequest =
  | { kind: 'map'; check: string }
  /** mmaplab's own gdb, started early, waiting for the session's script (answered `ok PATH` once the driver is loaded). */
  | { kind: 'ready' }
  | { kind: 'bad'; line: string };

export function parseMapRequest(line: string): MapRequest {
  if (line.trim() === 'ready') return { kind: 'ready' };
  const m = /^map ([a-z-]{1,40})$/.exec(line.trim());
  return m ? { kind: 'map', check: m[1]! } : { kind: 'bad', line: line.slice(0, 80) };
}

export class MapSocket {
  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {}

  /** Listen on `path`; `answer` turns each request into its reply line. */
  static async listen(path: string, answer: (r: MapRequest) => Promise<string>): Promise<MapSocket> {
    await rm(path, { force: true });
    const server = createServer((conn) => {
      conn.setEncoding('utf8');
      let got = '';
      conn.on('data', (d: string) => {
        got += d;
        const nl = got.indexOf('\n');
        if (nl < 0 && got.length < 200) return;
        conn.pause();
        void answer(parseMapRequest(got.slice(0, nl < 0 ? 200 : nl)))
          .catch((e: unknown) => `failed: ${e instanceof Error ? e.message : String(e)}`)
          .then((reply) => conn.end(`${reply.replace(/\n/g, ' ')}\n`));
      });
      conn.on('error', () => {});
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    return new MapSocket(server, path);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.path, { force: true });
  }
}
