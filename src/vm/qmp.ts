/**
 * A QMP client, as much of it as snapshots need: QEMU's machine protocol is
 * JSON lines on a Unix socket; commands are answered in order by "return" or
 * "error", and events ("RESUME", "STOP", ...) arrive in between.
 */
import { connect, type Socket } from 'node:net';
import { LineSplitter } from '../guest/protocol.js';

export class QmpError extends Error {}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class Qmp {
  private readonly pending: Pending[] = [];
  private readonly events: string[] = [];
  private readonly eventWaiters = new Set<() => void>();
  private closed = false;

  private constructor(private readonly socket: Socket) {
    const lines = new LineSplitter();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      for (const line of lines.push(chunk)) this.onLine(line);
    });
    const gone = () => {
      this.closed = true;
      for (const p of this.pending.splice(0)) p.reject(new QmpError('QEMU closed its QMP socket'));
      for (const w of [...this.eventWaiters]) w();
    };
    socket.on('close', gone);
    socket.on('error', gone);
  }

  /** Connect (QEMU creates the socket a moment after it starts: retry until the deadline) and leave negotiation mode. */
  static async connect(path: string, timeoutMs: number): Promise<Qmp> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        const qmp = new Qmp(socket);
        await qmp.execute('qmp_capabilities');
        return qmp;
      } catch (e) {
        if (performance.now() > deadline) throw new QmpError(`no QMP socket at ${path}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  private onLine(line: string): void {
    let msg: { return?: unknown; error?: { desc?: string }; event?: string; QMP?: unknown };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return;
    }
    if (msg.QMP) return; // the greeting
    if (msg.event) {
      this.events.push(msg.event);
      for (const w of [...this.eventWaiters]) w();
      return;
    }
    const p = this.pending.shift();
    if (!p) return;
    if (msg.error) p.reject(new QmpError(msg.error.desc ?? 'QMP error'));
    else p.resolve(msg.return);
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closed) return Promise.reject(new QmpError('QEMU closed its QMP socket'));
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    });
  }

  /** Resolves when the event has arrived (also one that arrived before the call); false on timeout or close. */
  waitEvent(name: string, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.events.includes(name)) finish(true);
        else if (this.closed) finish(false);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      const finish = (v: boolean) => {
        clearTimeout(timer);
        this.eventWaiters.delete(check);
        resolve(v);
      };
      this.eventWaiters.add(check);
      check();
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
