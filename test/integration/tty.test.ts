/**
 * The live status area on a real terminal: `mmaplab run` inside tmux (a real
 * pseudo-terminal), its screen read back with capture-pane. It must leave a
 * final frame above the report, write no plain progress lines and no escaped
 * escape codes, and after Ctrl-C leave the cursor shown and no guest running.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURES, ROOT } from '../helpers.js';
import { BIN, processesMatching, qemuProcesses, STATE_DIR } from './cli.js';

const SOCKET = `mmaplab-test-${process.pid}`;
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
const screen = (s: string) => tmux('capture-pane', '-p', '-J', '-S', '-', '-t', s);

/** A session running the CLI on a 110x30 terminal, as a person would (no CI, a real TERM). */
function start(name: string, args: string[]): void {
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a}'`).join(' ');
  const cmd = `cd '${ROOT}' && env -u CI -u GITHUB_ACTIONS MMAPLAB_STATE_DIR='${STATE_DIR}' TERM=xterm-256color ${quoted}; echo EXIT=$?; sleep 300`;
  tmux('new-session', '-d', '-s', name, '-x', '110', '-y', '30', cmd);
}

async function waitFor(name: string, pattern: RegExp, ms: number): Promise<string> {
  const until = Date.now() + ms;
  for (;;) {
    const text = screen(name);
    if (pattern.test(text)) return text;
    if (Date.now() > until) throw new Error(`the terminal never showed ${pattern}:\n${text}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

afterAll(() => {
  try {
    tmux('kill-server');
  } catch {
    // No server left: nothing to clean.
  }
});

describe('the live status area in a real terminal', () => {
  it('ends with a frame per kernel above the report, with no plain progress lines and no escaped codes', async () => {
    start('run', ['run', '--strategy', 'seed,fault', '--check', 'private,shared']);
    const text = await waitFor('run', /^EXIT=\d+$/m, 200_000);
    expect(text).toMatch(/^EXIT=0$/m);
    const lines = text.split('\n');
    const frame = lines.findIndex((l) => /^✓ debian:bookworm +done +[\d.]+ s {2}passed \(2 jobs done\)$/.test(l));
    expect(frame, text).toBeGreaterThanOrEqual(0);
    // The report follows the last frame directly: nothing of the live area is left between.
    expect(lines[frame + 1]).toMatch(/^mmaplab run: 2 strategies x 2 checks on debian:bookworm$/);
    expect(text).toMatch(/^PASS: all 4 outcomes are what the lab expects$/m);
    expect(text).not.toMatch(/^\[ *[\d.]+ s /m);
    expect(text).not.toContain('\\x1b');
    expect(tmux('display', '-p', '-t', 'run', '#{cursor_flag}').trim()).toBe('1');
  });

  it('on Ctrl-C leaves the last frame marked interrupted, the cursor shown and no guest running', async () => {
    const out = mkdtempSync(join(tmpdir(), 'mmaplab-tty-'));
    // A driver whose mmap() never returns: its job runs until the deadline, so Ctrl-C always meets it running.
    start('stop', ['check', join(FIXTURES, 'drivers', 'endless-loop-mmap'), '--timeout', '100', '--output-dir', out]);
    await waitFor('stop', /^. {3}custom +job +[\d.]+ s {2}/m, 200_000);
    tmux('send-keys', '-t', 'stop', 'C-c');
    const text = await waitFor('stop', /^EXIT=\d+$/m, 60_000);
    expect(text).toMatch(/^EXIT=130$/m);
    expect(text).toMatch(/^! debian:bookworm +interrupted +[\d.]+ s {2}1 running$/m);
    expect(text).toMatch(/^! {3}custom +interrupted +[\d.]+ s {2}(\S+: )?shared, private/m);
    expect(text).toMatch(/^mmaplab: interrupted \(SIGINT\); stopping the guest/m);
    expect(tmux('display', '-p', '-t', 'stop', '#{cursor_flag}').trim()).toBe('1');
    expect(processesMatching(`qemu-system.*${out}`)).toEqual([]);
  });

  it('check --watch on a terminal: r shows the full report of the last check, q quits with its status, nothing left running', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmaplab-tty-watch-'));
    cpSync(join(FIXTURES, 'students', 'lab-vmalloc'), dir, { recursive: true });
    start('watch', ['check', '--watch', dir]);
    await waitFor('watch', /watching for saves: r = the full report of the last check, q = quit/, 200_000);
    expect(screen('watch')).not.toMatch(/^✓ the device opens/m);
    tmux('send-keys', '-t', 'watch', 'r');
    const full = await waitFor('watch', /^PASS: \d+ checks passed/m, 10_000);
    expect(full).toMatch(/^mmaplab check: .*lab_vmalloc\.ko\) on debian:bookworm$/m);
    expect(full).toMatch(/^✓ the device opens/m);
    tmux('send-keys', '-t', 'watch', 'q');
    const text = await waitFor('watch', /^EXIT=\d+$/m, 60_000);
    expect(text).toMatch(/^EXIT=0$/m);
    // The tmux session's own command line names the folder too; no process of mmaplab's may.
    expect(processesMatching(dir).filter((l) => !/^\d+ tmux /.test(l))).toEqual([]);
    expect(qemuProcesses()).toEqual([]);
  });
});
