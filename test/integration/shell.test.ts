/** mmaplab shell on a real guest: the driver loaded, a shell on the console, a clean exit. */
import { afterEach, describe, expect, it } from 'vitest';
import { qemuProcesses, startCli } from './cli.js';

afterEach(() => {
  expect(qemuProcesses()).toEqual([]);
});

describe('mmaplab shell', () => {
  it('gives a shell with the driver loaded and mmap-test at hand; exit powers the guest off', async () => {
    const p = startCli(['shell'], {}, 'pipe');
    p.stdin!.setDefaultEncoding('utf8');
    let out = '';
    let sent = false;
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!sent && out.includes('mmaplab# ')) {
        sent = true;
        p.stdin!.write('grep -c mmaplab /proc/modules; ls /dev/mmaplab0; mmap-test --device /dev/mmaplab0 --checks shared | tail -1\n');
        p.stdin!.write('exit\n');
      }
    });
    const r = await p;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(out).toMatch(/^\/dev\/mmaplab0\r?$/m);
    expect(out).toContain('{"t":"exit","check":"shared","status":0}');
    expect(String(r.stderr)).toMatch(/the guest is off; console kept in \S+console\.log/);
  }, 120_000);
});
