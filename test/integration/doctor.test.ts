/**
 * `mmaplab doctor` and `mmaplab setup` on this machine (where bin/install-deps
 * has run), and with every tool hidden from PATH: each missing tool named with
 * its package, the install commands for three distributions, exit 1. setup's
 * packages are install-deps' own (both read bin/packages.txt).
 */
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { doctor } from '../../src/commands/doctor.js';
import { isDebianLike, setupPlan } from '../../src/commands/setup.js';
import type { DoctorReport } from '../../src/model/doctor.js';
import { installSet, systemPackages } from '../../src/util/packages.js';
import { ROOT } from '../helpers.js';
import { runCli } from './cli.js';

const linux = (r: DoctorReport) => {
  if (r.kind !== 'linux') throw new Error(`expected a Linux report, got ${r.kind}`);
  return r;
};

describe('mmaplab doctor', () => {
  it('finds everything mmaplab needs on this machine: exit 0, each needed package and the sandbox ok, KVM at most a warning', async () => {
    const r = await runCli(['doctor', '--tests', '--json']);
    expect(r.exitCode, r.stdout).toBe(0);
    const report = linux(JSON.parse(r.stdout) as DoctorReport);
    const status = (id: string) => report.findings.find((f) => f.id === id)?.status;
    for (const p of systemPackages().filter((x) => x.need === 'run' || x.need === 'test')) expect(status(`package:${p.debian}`), p.debian).toBe('ok');
    for (const id of ['qemu-version', 'sandbox', 'userns', 'archive', 'disk', 'cache']) expect(status(id), id).toBe('ok');
    expect(report.findings.some((f) => f.id.startsWith('compiler:') && f.status === 'ok')).toBe(true);
    expect(['ok', 'warn']).toContain(status('kvm'));
    expect(report.install.debian).toBeUndefined();
    const text = await runCli(['doctor']);
    expect(text.stdout).toMatch(/^mmaplab can work here/m);
  });

  it('with the tools hidden from PATH names each missing one with its package, prints the install commands, exit 1', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'mmaplab-test-nopath-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    const r = await runCli(['doctor'], { PATH: bin });
    expect(r.exitCode, r.stdout).toBe(1);
    for (const [pkg, fedora] of [['qemu-system-x86', 'qemu-system-x86-core'], ['bubblewrap', 'bubblewrap'], ['busybox-static', 'busybox'], ['make', 'make'], ['mmdebstrap', 'mmdebstrap']] as const) {
      expect(r.stdout).toMatch(new RegExp(`^✗ ${pkg}: not found; needed for .*\\n +→ install the package ${pkg} \\(Fedora: ${fedora}, `, 'm'));
    }
    expect(r.stdout).toMatch(/^✗ the build sandbox \(bubblewrap\): bwrap not found/m);
    expect(r.stdout).toMatch(/^ {2}Debian\/Ubuntu: npx mmaplab setup {3}\(or: sudo apt-get install --no-install-recommends qemu-system-x86 busybox-static gcc make /m);
    expect(r.stdout).toMatch(/^ {2}Fedora: +sudo dnf install qemu-system-x86-core busybox gcc make /m);
    expect(r.stdout).toMatch(/^ {2}Arch Linux: +sudo pacman -S --needed qemu-system-x86 busybox gcc make /m);
    expect(r.stdout).toMatch(/^mmaplab cannot work here yet: \d+ thing\(s\) missing/m);
  });

  it('on macOS and Windows says what does work instead of listing tools', async () => {
    const mac = await doctor({ cacheDir: '/nonexistent', tests: false, platform: 'darwin' });
    expect(mac).toMatchObject({ kind: 'unsupported', exitCode: 1 });
    expect(mac.kind === 'unsupported' && mac.advice.join(' ')).toMatch(/Linux VM/);
    const win = await doctor({ cacheDir: '/nonexistent', tests: false, platform: 'win32' });
    expect(win.kind === 'unsupported' && win.advice.join(' ')).toMatch(/WSL2/);
  });
});

describe('mmaplab setup', () => {
  it('installs from the list install-deps installs from: the same packages, with and without the test suite', async () => {
    const listed = async (...args: string[]) => {
      const lines = (await execa('sh', [join(ROOT, 'bin', 'install-deps'), '--list', ...args])).stdout.trim().split('\n');
      return { required: lines.filter((l) => l.endsWith(' required')).map((l) => l.split(' ')[0]), optional: lines.filter((l) => l.endsWith(' optional')).map((l) => l.split(' ')[0]) };
    };
    expect(await listed()).toEqual(installSet(false));
    expect(await listed('--runtime')).toEqual(installSet(true));
    expect(installSet(true).required).toContain('qemu-system-x86');
    expect(installSet(true).required).not.toContain('shellcheck');
    const dry = await runCli(['setup', '--dry-run']);
    expect(dry.stdout.trim()).toBe(`sh ${join(ROOT, 'bin', 'install-deps')} --runtime`);
  });

  it('runs install-deps for real (everything is installed here), then doctor; refuses other systems with what to do', async () => {
    const r = await runCli(['setup', '--tests']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('install-deps: everything is installed');
    expect(r.stdout).toMatch(/^mmaplab can work here/m);
    expect(isDebianLike('NAME="Linux Mint"\nID=linuxmint\nID_LIKE="ubuntu debian"\n')).toBe(true);
    expect(isDebianLike('ID=ubuntu\nID_LIKE=debian\n')).toBe(true);
    expect(isDebianLike('ID=fedora\n')).toBe(false);
    expect(() => setupPlan({ tests: false, osRelease: 'ID=fedora\n' })).toThrow(/Debian and Ubuntu only/);
  });
});
