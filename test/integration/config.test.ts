/**
 * `mmaplab config` as a user runs it, in a project folder with its config
 * file: the effective settings and where each came from, with no guest; a
 * wrong file is exit 2 with one line naming the file and the key.
 */
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EffectiveSettings } from '../../src/cli/config-command.js';
import { BIN, STATE_DIR } from './cli.js';

const mmaplab = (cwd: string, args: string[], env: Record<string, string> = {}) =>
  execa(process.execPath, [BIN, ...args], { cwd, reject: false, env: { MMAPLAB_STATE_DIR: STATE_DIR, NO_COLOR: '1', ...env }, extendEnv: true });

function lab(config: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mmaplab-config-cli-'));
  writeFileSync(join(dir, 'mmaplab.config.yaml'), config);
  mkdirSync(join(dir, 'driver'));
  writeFileSync(join(dir, 'driver', 'lab.c'), '');
  return dir;
}

describe('mmaplab config', () => {
  it('prints what check would run with: the file beats the default, a flag and the environment beat the file', async () => {
    const dir = lab('kernels: [debian:trixie]\ntimeout: 50\nmemory: 512\nsecurityUri: http://config.invalid/debian-security\nrubric: grading/rubric.yaml\n');
    const r = await mmaplab(dir, ['config', '--json', 'check', 'driver', '--memory', '1024', '--gradescope', 'results.json'], { MMAPLAB_DEBIAN_SECURITY_ARCHIVE: 'http://env.invalid/debian-security' });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const e = JSON.parse(String(r.stdout)) as EffectiveSettings;
    const file = join(dir, 'mmaplab.config.yaml');
    expect(e.command).toBe('check');
    expect(e.configFile).toBe(file);
    expect(e.settings).toMatchObject({
      kernel: { value: ['debian:trixie'], from: file },
      timeout: { value: 50, from: file },
      memory: { value: 1024, from: 'command line' },
      securityUri: { value: 'http://env.invalid/debian-security', from: 'environment: MMAPLAB_DEBIAN_SECURITY_ARCHIVE' },
      rubric: { value: join(dir, 'grading', 'rubric.yaml'), from: file },
      buildTimeout: { value: 300, from: 'default' },
    });
    expect(e.build).toEqual({ kind: 'sandbox' });
    const text = await mmaplab(dir, ['config', 'run', '-v']);
    expect(String(text.stdout)).toMatch(/^mmaplab run: settings from .*mmaplab\.config\.yaml\n {2}kernel +debian:trixie +.*mmaplab\.config\.yaml$/m);
    expect(String(text.stderr)).toBe('mmaplab: settings from mmaplab.config.yaml');
  });

  it('a wrong file is exit 2 and one line naming the file and the key', async () => {
    const r = await mmaplab(lab('timeout: 5000\n'), ['run']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toBe('mmaplab: error: mmaplab.config.yaml: timeout must be a whole number from 1 to 3600');
  });

  it("a submission's trustDriver, checked from inside it, is not read: the build stays in the sandbox", async () => {
    const dir = lab('timeout: 50\n');
    writeFileSync(join(dir, 'driver', 'mmaplab.config.json'), '{"trustDriver": true, "timeout": 3600}');
    const r = await mmaplab(join(dir, 'driver'), ['config', '--json', 'check', '.']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const e = JSON.parse(String(r.stdout)) as EffectiveSettings;
    // The project's file above the driver is read; the driver's own is not.
    expect([e.configFile, e.settings.timeout?.value, e.build]).toEqual([join(dir, 'mmaplab.config.yaml'), 50, { kind: 'sandbox' }]);
    expect(String(r.stderr)).toMatch(/^mmaplab: note: not reading mmaplab\.config\.json: it is inside the code being checked/);
  });
});
