/**
 * Text kept within a bound whatever is pushed: its first `headBytes` and its
 * last `tailBytes`, whole lines, and a count of what was dropped between. A
 * guest that prints without end costs this much memory and no more.
 */
export class HeadTail {
  private head = '';
  private headFull = false;
  private tail: string[] = [];
  private tailLength = 0;
  private droppedBytes = 0;
  private droppedLines = 0;

  constructor(
    private readonly headBytes: number,
    private readonly tailBytes: number,
  ) {}

  /** Keep `text`; returns the part of it that went into the head (what a stream of the head writes now). */
  push(text: string): string {
    let toHead = '';
    if (!this.headFull) {
      const room = this.headBytes - this.head.length;
      if (text.length <= room) {
        this.head += text;
        return text;
      }
      // The head ends at a line's end, so the marker sits on a line of its own.
      const cut = text.lastIndexOf('\n', room - 1) + 1;
      toHead = text.slice(0, cut);
      this.head += toHead;
      this.headFull = true;
      text = text.slice(cut);
    }
    this.tail.push(text);
    this.tailLength += text.length;
    while (this.tailLength - this.tail[0]!.length >= this.tailBytes) this.drop(this.tail.shift()!);
    if (this.tailLength > this.tailBytes * 2) {
      // One huge chunk: keep its last tailBytes, from a line's start.
      const all = this.tail.join('');
      let from = all.length - this.tailBytes;
      const nl = all.indexOf('\n', from);
      if (nl >= 0 && nl < all.length - 1) from = nl + 1;
      this.drop(all.slice(0, from));
      this.tail = [all.slice(from)];
      this.tailLength = this.tail[0]!.length;
    }
    return toHead;
  }

  private drop(s: string): void {
    this.tailLength -= s.length;
    this.droppedBytes += Buffer.byteLength(s);
    for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) this.droppedLines++;
  }

  /** What was dropped, if anything. */
  get dropped(): { bytes: number; lines: number } | undefined {
    return this.droppedBytes ? { bytes: this.droppedBytes, lines: this.droppedLines } : undefined;
  }

  /** The head, a line saying what was dropped (if anything), the tail. */
  text(what = 'the guest printed'): string {
    const d = this.dropped;
    if (!d) return this.head + this.tail.join('');
    const tail = this.tail.join('');
    return `${this.head}${omissionLine(d, what)}${tail}`;
  }

  /** Everything after the head (and the omission line): what a stream that wrote the head already is still owed. */
  rest(what = 'the guest printed'): string {
    const d = this.dropped;
    return `${d ? omissionLine(d, what) : ''}${this.tail.join('')}`;
  }

  get headOnly(): string {
    return this.head;
  }
}

export function omissionLine(d: { bytes: number; lines: number }, what: string): string {
  return `[mmaplab: ${d.lines} lines (${formatBytes(d.bytes)}) ${what} here are not kept]\n`;
}

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} bytes`;
}
