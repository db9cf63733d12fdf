/** Choosing KVM or TCG per guest architecture: KVM runs only guests of the host's own kind. */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chooseAccel, kvmRunsArch } from '../../src/vm/accel.js';
import { hostArch } from '../../src/kernel/arch.js';

const dir = mkdtempSync(join(tmpdir(), 'mmaplab-accel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('KVM per guest architecture', () => {
  it('x86 KVM runs amd64 and i386 guests, arm64 KVM arm64 ones', () => {
    expect([kvmRunsArch('amd64', 'amd64'), kvmRunsArch('i386', 'amd64'), kvmRunsArch('arm64', 'amd64')]).toEqual([true, true, false]);
    expect([kvmRunsArch('arm64', 'arm64'), kvmRunsArch('amd64', 'arm64')]).toEqual([true, false]);
  });

  it.runIf(hostArch() === 'amd64')('an arm64 guest on an x86 host is emulated without a probe, and --accel kvm for it is a usage error', async () => {
    let probed = false;
    const probe = async () => {
      probed = true;
      return undefined;
    };
    const auto = await chooseAccel({ requested: 'auto', cacheDir: dir, qemuVersion: '10.0.2', arch: 'arm64', probe });
    expect(auto).toEqual({ accel: 'tcg', reason: "TCG: KVM runs only guests of this machine's own architecture (amd64), so the arm64 guest is emulated", probed: false });
    expect(probed).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
    await expect(chooseAccel({ requested: 'kvm', cacheDir: dir, qemuVersion: '10.0.2', arch: 'arm64', probe })).rejects.toThrow(/--accel kvm, but KVM runs only guests of this machine's own architecture/);
  });
});
