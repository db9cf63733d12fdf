/**
 * The guest<->host job protocol, on the guest's own virtio-serial port.
 *
 * Host to guest: header lines (`JOB <id> <bytes>` + a cpio payload,
 * `POWEROFF`). Guest to host: one JSON object per line, typed by "t". Records
 * come from the agent (vm/init), the job script (vm/job.sh) and the test
 * program (userspace/mmap-test.c); this module is their one schema.
 */
import { visibleEscapes } from '../util/safe-text.js';

import type { CheckName } from '../model/checks.js';

export type { MapMode } from '../model/checks.js';

export type GuestRecord =
  | { t: 'ready'; kernel: string; uptime: string }
  | { t: 'job-end'; id: number; status: number }
  /** After SYNC: whether the clock and the RNG were set, the guest's time (ms) and 16 random bytes drawn after the reseed. */
  | { t: 'synced'; clock: boolean; rng: boolean; time: number; random: string }
  | { t: 'job-done'; id: number }
  /** After WARM: the guest ran what a job runs once (see vm/init). */
  | { t: 'warmed' }
  | { t: 'step'; step: string; status: number; output: string }
  /** off: when off, why: not asked for (the architecture is not traced), no kprobe events, no trace instance of mmaplab's own, or a probe (probe) the kernel refused. */
  | { t: 'tracing'; on: boolean; off?: '' | 'not-asked' | 'no-kprobe-events' | 'no-instance' | 'refused'; probe?: string }
  /** The lab's own test program, run as ./mmap-test <run>: each line it printed, then how it ended (stopped: mmaplab stopped it after its last result line, or at the step deadline). */
  | { t: 'lab-output'; run: string; line: string }
  | { t: 'lab-run'; run: number; status: number; stopped: '' | 'after-result' | 'deadline' }
  /** arm64 only: whether the CPU manages page-table dirty bits in hardware (the boot log's "CPU features: detected: Hardware dirty bit management"); unknown when the log no longer holds the boot. */
  | { t: 'cpu'; dirty: 'hw' | 'sw' | 'unknown' }
  /**
   * The device node the job used and how it found it: by name in /proc/devices
   * (a node made for it with mknod, whose status and error are given), given
   * (--device), the character device insmod added (new-chrdev), the node
   * devtmpfs made, or none (looked: the name it looked for).
   */
  | { t: 'device'; how: 'name' | 'given' | 'new-chrdev' | 'devtmpfs' | 'none'; path?: string; major?: number; name?: string; mknod?: number; error?: string; looked?: string }
  /** INSPECT jobs: a /proc/vmallocinfo line before insmod or after rmmod. */
  | { t: 'vmalloc'; when: 'before' | 'after'; line: string }
  | { t: 'kmsg'; line: string }
  /** A tracefs line while a check ran (kprobe events on the mapping calls). */
  | { t: 'trace'; check: CheckName; line: string }
  | { t: 'exit'; check: CheckName; status: number }
  /** Records saved by earlier versions, whose job script judged it: a vmalloc area that outlived rmmod. */
  | { t: 'vmalloc-left'; line: string }
  /** INSPECT jobs: pages rmmod freed while still marked PG_reserved. */
  | { t: 'reserved-freed'; pages: number }
  /** INSPECT jobs: /proc/sys/kernel/tainted at the end. */
  | { t: 'tainted'; value: number }
  /**
   * STATE jobs (a guest that may serve another), before insmod and after rmmod: the loaded modules
   * (space-separated); character devices ("major name"), device classes, misc devices and /proc's
   * own entries (each |-separated; absent from records before they were reported); the taint mask.
   */
  | { t: 'guest-state'; when: 'before' | 'after'; modules: string; chrdevs: string; classes?: string; misc?: string; proc?: string; tainted: number }
  /** SECTIONS jobs: one of the loaded driver's sections and its address (from /sys/module/<name>/sections). */
  | { t: 'section'; name: string; addr: string }
  // From the test program:
  | { t: 'start'; check: CheckName; device: string; pages: number; pageSize: number; pattern: string }
  | { t: 'open'; ok: boolean; mode?: string; errno?: number; err?: string; msg?: string }
  | { t: 'mmap'; ok: boolean; page: number; addr?: string; len?: number; pgoff?: number; prot?: string; flags?: string; errno?: number; err?: string; msg?: string }
  | { t: 'seed-printf'; text: string }
  /** expectIndex: null when the driver's pages carry no index (--no-index); pfn: null when unknown. */
  | { t: 'page'; page: number; addr: string; word: string; index: number; expectIndex: number | null; pfn?: string | null; ok: boolean }
  | { t: 'write'; page: number; offset: number; value: string }
  | { t: 'readback'; via: 'read' | 'shared'; ok: boolean; value?: string; matches?: boolean; err?: string }
  /** shared-write: read() at the write's offset and at 0 (bytes as hex, canary-filled first), and a second mapping's bytes there. */
  | { t: 'read-probe'; offset: number; n: number; err: string; bytes: string; n0: number; err0: string; bytes0: string; map0?: string; canary: string; again: string | null }
  /** readonly: whether the write into the read-only mapping faulted, and if not, whether the buffer showed it. */
  | { t: 'ro-write'; faulted: boolean; reached?: boolean; signal?: string; code?: string }
  /** --either-order: page 0 showed the pattern's bytes the other way round, and the check expects that word. */
  | { t: 'pattern'; word: string; from: string }
  | { t: 'mprotect'; ok: boolean; errno?: number; err?: string; msg?: string }
  | { t: 'fault'; signal: 'SIGBUS' | 'SIGSEGV'; signo: number; code: string; codeNum: number; addr: string; page: number | null }
  /** Whether a shared mapping's pages differ, tested by writing (pairs: [page, the page it shows]). */
  | { t: 'alias'; tested: boolean; pairs?: Array<[number, number]>; why?: string }
  | { t: 'done'; pagesOk: number; pages: number }
  /** A line that was not a record (a stray message); kept, never dropped. */
  | { t: 'text'; text: string };

/**
 * One record from the guest. Its strings are the guest's (device names,
 * command output, kernel lines the driver wrote): their control characters
 * but newline and tab are shown as \xNN before anything else reads them.
 */
export function parseRecordLine(line: string): GuestRecord {
  const trimmed = line.replace(/\r$/, '');
  if (trimmed.startsWith('{')) {
    try {
      const v = JSON.parse(trimmed, (_k, x: unknown) => (typeof x === 'string' ? visibleEscapes(x) : x)) as { t?: unknown };
      if (v && typeof v === 'object' && typeof v.t === 'string') return v as GuestRecord;
    } catch {
      /* fall through: keep it as text */
    }
  }
  return { t: 'text', text: visibleEscapes(trimmed) };
}

/** Lines from a stream, none longer than maxLine (a longer one is cut: a guest that never ends a line costs no more). */
export class LineSplitter {
  private rest = '';
  constructor(private readonly maxLine = 64 * 1024) {}
  push(chunk: string): string[] {
    const text = this.rest + chunk;
    const lines = text.split('\n');
    this.rest = lines.pop() ?? '';
    if (this.rest.length > this.maxLine) {
      lines.push(this.rest.slice(0, this.maxLine));
      this.rest = '';
    }
    return lines.map((l) => (l.length > this.maxLine ? l.slice(0, this.maxLine) : l));
  }
  flush(): string[] {
    const r = this.rest;
    this.rest = '';
    return r ? [r] : [];
  }
}

export function jobHeader(id: number, payloadBytes: number): string {
  return `JOB ${id} ${payloadBytes}\n`;
}

/** Refresh a restored guest's clock (host time, ns) and randomness (host seed, hex). */
export function syncHeader(nowNs: bigint, seedHex: string): string {
  return `SYNC ${nowNs} ${seedHex}\n`;
}

export const POWEROFF = 'POWEROFF\n';
export const WARM = 'WARM\n';
export const SHELL = 'SHELL\n';
