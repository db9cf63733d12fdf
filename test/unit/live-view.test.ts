/** The live status area and the plain progress lines, from the progress events the commands send. */
import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import { LiveView } from '../../src/cli/live-view.js';
import { progressPrinter } from '../../src/cli/progress.js';
import { byteBar, renderLive, type LiveLine } from '../../src/report/live-text.js';

const plain = new Chalk({ level: 0 });
const strip = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

function view(columns = 100, rows = 20) {
  let out = '';
  let t = 0;
  const v = new LiveView({ columns, rows }, plain, { write: (s) => (out += s), now: () => t });
  return { v, tick: (ms: number) => (t += ms), out: () => out };
}

describe('the live status area', () => {
  it('draws a download as a bar with its megabytes', () => {
    expect(byteBar({ done: 10e6, total: 40e6 })).toBe('[████░░░░░░░░░░░░] 10.0/40.0 MB');
    expect(byteBar({ done: 0, total: 0 })).toBe('[░░░░░░░░░░░░░░░░] 0.0/0.0 MB');
  });

  it('keeps every line within the terminal, and counts the lines that do not fit', () => {
    const lines: LiveLine[] = [
      { depth: 0, name: 'debian:bookworm', phase: 'fetch', message: `downloading ${'linux-image-x, '.repeat(20)}`, elapsedMs: 1234, state: 'running', bytes: { done: 1e6, total: 4e6 } },
      ...Array.from({ length: 10 }, (_, i): LiveLine => ({ depth: 1, name: `s${i}`, phase: 'job', message: 'private, shared', elapsedMs: 100, state: 'running' })),
    ];
    const text = renderLive(lines, { width: 80, height: 6, frame: 0 }, plain).split('\n');
    // One line less than the terminal: log-update's last newline takes it.
    expect(text).toHaveLength(5);
    for (const l of text) expect(l.length).toBeLessThanOrEqual(80);
    expect(text[0]).toMatch(/^⠋ debian:bookworm fetch +1\.2 s {2}downloading ?… \[████░{12}\] 1\.0\/4\.0 MB$/);
    expect(text[1]).toMatch(/^⠋ {3}s0 +job +0\.1 s {2}private, shared$/);
    expect(text[4]).toBe('  … 7 more jobs');
    // Narrower, the bar gives way to the message.
    const narrow = renderLive(lines.slice(0, 1), { width: 50, height: 6, frame: 0 }, plain);
    expect(narrow).toMatch(/^⠋ debian:bookworm fetch +1\.2 s {2}downl.*…$/);
    expect(narrow.length).toBeLessThanOrEqual(50);
  });

  it('shows every kernel of a matrix, however many jobs do not fit', () => {
    const lines: LiveLine[] = ['bullseye', 'bookworm', 'trixie'].flatMap((k): LiveLine[] => [
      { depth: 0, name: `debian:${k}`, phase: 'job', message: '8 running', elapsedMs: 0, state: 'running' },
      ...Array.from({ length: 8 }, (_, i): LiveLine => ({ depth: 1, name: `s${i}`, phase: 'job', message: 'x', elapsedMs: 0, state: 'running' })),
    ]);
    const text = renderLive(lines, { width: 80, height: 12, frame: 0 }, plain).split('\n');
    expect(text).toHaveLength(11);
    expect(text.filter((l) => /debian:/.test(l))).toHaveLength(3);
    expect(text.at(-1)).toBe('  … 17 more jobs');
  });

  it('measures a name or message after making it safe, and keeps it to one line', () => {
    const { v, out } = view(60);
    v.sink('k')('fetch', `failed:\n${'\x07'.repeat(40)}`);
    v.stop();
    for (const l of strip(out()).split('\n').filter(Boolean)) expect(l.length).toBeLessThanOrEqual(60);
  });

  it('shows the jobs running under their kernel, folds the ended ones into its count, and leaves a final frame', () => {
    const { v, tick, out } = view();
    const p = v.sink('debian:bookworm');
    p('fetch', 'kernel debian:bookworm (cloud-amd64)');
    // As the commands and machines send them: the job queued, its guest restored, then its checks.
    p('job', 'private, shared', { lane: 'seed' });
    p('restore', 'job 1: restoring', { lane: 'seed' });
    p('job', 'private, shared', { lane: 'seed' });
    p('job', 'private, shared', { lane: 'fault' });
    tick(1500);
    p('job', 'done', { lane: 'seed', finished: true });
    tick(500);
    v.finish('debian:bookworm', 'done', 'passed');
    v.stop();
    const frames = strip(out()).trimEnd().split('\n');
    // The last frame: the kernel done with its ended job counted, the job it never saw end marked with it.
    expect(frames.slice(-2)).toEqual([expect.stringMatching(/^✓ debian:bookworm done +2\.0 s {2}passed \(1 job done\)$/), expect.stringMatching(/^✓ {3}fault +done +2\.0 s {2}private, shared$/)]);
    expect(out().startsWith('\x1b[?25l')).toBe(true);
    expect(out().endsWith('\x1b[?25h')).toBe(true);
  });

  it('marks what was running as interrupted when stopped by Ctrl-C', () => {
    const { v, out } = view();
    const p = v.sink('debian:trixie');
    p('boot', 'booting 6.12 under TCG');
    p('job', 'private', { lane: 'seed' });
    v.stop('interrupted');
    const text = strip(out());
    expect(text).toMatch(/! debian:trixie interrupted +0\.0 s {2}1 running/);
    expect(text).toMatch(/! {3}seed +interrupted +0\.0 s {2}private/);
    expect(out().endsWith('\x1b[?25h')).toBe(true);
  });

  it('is text made safe: a job name cannot move the cursor', () => {
    const { v, out } = view();
    v.sink('k')('job', 'x', { lane: 'evil\x1b]52;c;aGk=\x07' });
    v.stop();
    expect(out()).not.toContain('\x1b]52');
    expect(out()).toContain('\\x1b]52');
  });
});

describe('plain progress lines', () => {
  it('give a download one line, when it completes, with its bar', () => {
    const lines: string[] = [];
    const p = progressPrinter(plain, 'bookworm ', (t) => lines.push(t));
    p('fetch', 'downloading linux-image');
    for (const done of [0, 10e6, 20e6, 40e6, 40e6]) p('fetch', 'downloading linux-image', { bytes: { done, total: 40e6 } });
    p('job', 'private, shared', { lane: 'seed' });
    expect(lines.map((l) => l.replace(/^\[ *[\d.]+ s /, '['))).toEqual([
      '[bookworm fetch] downloading linux-image\n',
      '[bookworm fetch] downloading linux-image [████████████████] 40.0/40.0 MB\n',
      '[bookworm job] seed: private, shared\n',
    ]);
  });
});
