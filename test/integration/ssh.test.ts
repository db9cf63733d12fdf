/**
 * mmaplab over SSH, against a real SSH server on a real kernel that is not
 * this machine's: the lab's QEMU guest with openssh-server, sudo, gcc and the
 * kernel headers from Debian's packages in its initramfs, reached through a
 * port forwarded on 127.0.0.1 (test/support/ssh-target.ts).
 */
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireFor } from '../../src/machines/setup.js';
import type { CheckReport, RunReport } from '../../src/model/report.js';
import { fingerprint, hostKeyFromBlob } from '../../src/ssh/known-hosts.js';
import { RemoteLab } from '../../src/ssh/remote-lab.js';
import { parseTargetUrl } from '../../src/ssh/url.js';
import { cacheRoot } from '../../src/util/paths.js';
import { qemuInfo } from '../../src/vm/qemu.js';
import { FIXTURES } from '../helpers.js';
import { bootTarget, ensureTargetImage, targetExec, type BootedTarget, type TargetImage } from '../support/ssh-target.js';
import { qemuProcesses, runCli, startCli, STATE_DIR } from './cli.js';
import { parseValidResults } from '../support/schema.js';

const tmp = mkdtempSync(join(tmpdir(), 'mmaplab-ssh-test-'));
let image: TargetImage;
let target: BootedTarget;
let hostFp: string;

/** What a session could leave on the target: files, the module, a device node, kprobe events, processes. */
const LEFTOVERS = [
  'ls -A /tmp',
  "grep '^mmaplab ' /proc/modules",
  'ls /dev | grep mmaplab',
  'sudo -n ls /sys/kernel/tracing/events | grep mmaplab',
  "pgrep -fa '[/]tmp/mmaplab'",
  'pgrep -xa dmesg',
].join('; ');

async function leftovers(): Promise<string> {
  return (await targetExec(target, LEFTOVERS)).stdout.trim();
}

function knownHosts(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

const args = (user: 'lab' | 'student', kh: string) => ['--target', target.url(user), '--identity', image.identity, '--known-hosts', kh];

beforeAll(async () => {
  const kernel = await acquireFor(
    { kernel: 'debian:bookworm', flavour: 'cloud-amd64', accel: 'tcg', timeoutS: 120, memoryMb: 256, outputDir: undefined, archiveUri: undefined, securityUri: undefined, refreshKernel: false },
    cacheRoot(),
    () => {},
  );
  image = await ensureTargetImage(kernel, cacheRoot());
  hostFp = fingerprint(hostKeyFromBlob(Buffer.from(image.hostKey.split(' ')[1]!, 'base64')).blob);
  target = await bootTarget(await qemuInfo(), 'tcg', kernel, image, join(tmp, 'target-console.log'));
}, 900_000);

afterAll(async () => {
  await target?.vm.powerOff(10_000);
  expect(qemuProcesses()).toEqual([]);
});

describe('mmaplab over SSH', () => {
  it('refuses an unknown host key and a changed one, naming the fingerprint, before anything is sent', async () => {
    const empty = knownHosts('empty', '');
    const r = await runCli(['run', ...args('lab', empty), '--strategy', 'seed']);
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toContain(`127.0.0.1's host key is not in ${empty}: it presents ssh-ed25519 ${hostFp}`);
    expect(r.stderr).toContain(`--accept-host-key ${hostFp}`);
    expect(readFileSync(empty, 'utf8')).toBe('');

    const other = readFileSync(join(FIXTURES, 'ssh', 'k1.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    const changed = knownHosts('changed', `[127.0.0.1]:${target.port} ${other}\n`);
    const c = await runCli(['run', ...args('lab', changed), '--strategy', 'seed']);
    expect(c.exitCode, c.stderr).toBe(3);
    expect(c.stderr).toMatch(new RegExp(`host key has CHANGED: it presents ${hostFp.replace(/[+/]/g, '\\$&')}, .* line 1 has SHA256:kj9AZnujcvfaakNXm2u/B/nhtForRyi5SQg9Jh4l3Bs`));
    expect(await leftovers()).toBe('');
  });

  it('stops with a clear error when sudo wants a password, leaving nothing behind', async () => {
    const r = await runCli(['run', ...args('student', knownHosts('kh-student', `${target.knownHostsLine}\n`)), '--strategy', 'seed']);
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toContain('sudo on 127.0.0.1 wants a password for student (sudo -n: sudo: a password is required)');
    expect(r.stderr).toContain('NOPASSWD');
    expect(await leftovers()).toBe('');
  });

  it('logs in with the key in ssh-agent when no --identity is given, and says so when there is no key at all', async () => {
    const sock = join(tmp, 'agent.sock');
    const agent = execa('ssh-agent', ['-D', '-a', sock], { reject: false });
    try {
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
      await execa('ssh-add', [image.identity], { env: { SSH_AUTH_SOCK: sock } });
      const kh = knownHosts('kh-agent', `${target.knownHostsLine}\n`);
      // HOME without keys: the agent is the only way in. Logged in, the run gets as far as sudo.
      const r = await runCli(['run', '--target', target.url('student'), '--known-hosts', kh, '--strategy', 'seed'], { SSH_AUTH_SOCK: sock, HOME: tmp });
      expect(r.stderr).toContain('sudo on 127.0.0.1 wants a password for student');
      const none = await runCli(['run', '--target', target.url('lab'), '--known-hosts', kh, '--strategy', 'seed'], { SSH_AUTH_SOCK: '', HOME: tmp });
      expect(none.exitCode).toBe(3);
      expect(none.stderr).toContain(`no SSH key to log in to ${target.url('lab')}`);
    } finally {
      agent.kill();
      await agent;
    }
  });

  it('runs the whole lab on the target: built there, both modes, the same verdicts, the target recorded, nothing left', async () => {
    // Trusting the key by its fingerprint adds it to known_hosts.
    const kh = knownHosts('kh-accept', '');
    const out = join(tmp, 'run');
    const r = await runCli(['run', ...args('lab', kh), '--accept-host-key', hostFp, '--json', '--output-dir', out]);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = parseValidResults<RunReport>(r.stdout);
    const facts = (await targetExec(target, 'uname -r; cat /proc/sys/kernel/random/boot_id')).stdout.trim().split('\n');
    expect(report.status).toBe('pass');
    expect(report.kernel).toMatchObject({ spec: target.url(), release: facts[0] });
    expect(report.machine).toMatchObject({ kind: 'ssh', target: target.url(), hostKey: hostFp, bootId: facts[1], leftBehind: [] });
    expect(facts[1]).not.toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    expect(report.results).toHaveLength(72);
    // The seed's failure, reproduced on the target's own kernel.
    const seedPrivate = report.results.find((x) => x.strategy === 'seed' && x.check === 'private')!;
    expect(seedPrivate.outcome).toMatchObject({ kind: 'sigbus', page: 0 });
    expect(seedPrivate.traced.find((t) => t.fn === 'remap_pfn_range')?.returns).toEqual({ '-22': 16 });
    expect(report.module.compiler).toMatch(/gcc-12/);
    expect(readFileSync(kh, 'utf8')).toBe(`${target.knownHostsLine}\n`);
    expect(readFileSync(join(out, 'console.log'), 'utf8')).toMatch(/mmaplab: target session \w+ begin[^]*mmaplab: job 8 end/);
    expect(existsSync(join(out, 'mmaplab.ko'))).toBe(true);
    // The target's directory reads back as the report it wrote (its followed kernel log is its console).
    const parsed = await runCli(['parse', out, '--json']);
    expect(parsed.exitCode, parsed.stderr).toBe(0);
    expect(parseValidResults(parsed.stdout)).toEqual(report);
    expect(await leftovers()).toBe('');
  }, 400_000);

  it('shell on the target: the driver loaded, a shell in its directory; Ctrl-C unloads it and cleans up', async () => {
    // A driver of one file builds in a third of the lab's time on the emulated target.
    const p = startCli(['shell', join(FIXTURES, 'drivers', 'misc-device'), ...args('lab', knownHosts('kh-shell', `${target.knownHostsLine}\n`)), '-v'], {}, 'pipe');
    let out = '';
    let loaded = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!loaded && out.includes('exit to unload it')) {
        loaded = 'asked';
        p.stdin!.write('grep -c "^miscmap " /proc/modules; ls /dev/miscmap; command -v mmap-test\n');
      }
    });
    // Once the shell has answered, the user presses Ctrl-C instead of typing exit.
    for (let i = 0; i < 1200 && !/^\/tmp\/mmaplab\.\w+\/files\/test\/mmap-test\r?$/m.test(out); i++) await new Promise((r) => setTimeout(r, 100));
    expect(out).toMatch(/^(\$ )?1\r?$/m);
    expect(out).toMatch(/^\/dev\/miscmap\r?$/m);
    expect((await targetExec(target, 'grep -c "^miscmap " /proc/modules')).stdout.trim()).toBe('1');
    p.kill('SIGINT');
    const r = await p;
    expect(r.exitCode, String(r.stderr)).toBe(130);
    expect(String(r.stderr)).toContain('interrupted (SIGINT)');
    expect(await leftovers()).toBe('');
  }, 300_000);

  it('refuses the very kernel it runs on (same boot_id), unless told', async () => {
    const bootId = (await targetExec(target, 'cat /proc/sys/kernel/random/boot_id')).stdout.trim();
    const opts = {
      target: parseTargetUrl(target.url()),
      identity: image.identity,
      knownHosts: knownHosts('kh-own', `${target.knownHostsLine}\n`),
      acceptHostKey: undefined,
      connectTimeoutS: 30,
      // As if mmaplab ran on the target itself: the decision is the boot_id's, not the address's.
      ownBootId: bootId,
      kernelLogPath: join(tmp, 'own.log'),
    };
    await expect(RemoteLab.open({ ...opts, allowOwnKernel: false })).rejects.toThrow(`is this very machine (same boot_id ${bootId})`);
    const lab = await RemoteLab.open({ ...opts, allowOwnKernel: true });
    expect(lab.dir).toMatch(/^\/tmp\/mmaplab\./);
    expect(await lab.cleanup()).toEqual([]);
    expect(await leftovers()).toBe('');
  });

  it('resolves an ssh_config Host alias as ssh does: HostName, Port, User and IdentityFile from the file, the alias kept in the report; a driver that does not compile there shows its own file:line', async () => {
    const kh = knownHosts('kh-alias', '');
    const config = join(tmp, 'ssh_config-alias');
    // The first value obtained wins: labbox's block comes before the catch-all that would send it nowhere.
    writeFileSync(config, `Host labbox\n  HostName 127.0.0.1\n  Port ${target.port}\n  User lab\n  IdentityFile ${image.identity}\n  IdentitiesOnly yes\n\nHost *\n  User student\n  Port 1\n  UserKnownHostsFile ${kh}\n`);
    // HostName and Port: the alias reaches the test sshd, whose key is not known yet.
    const refused = await runCli(['check', join(FIXTURES, 'drivers', 'api-drift'), '--target', 'ssh://labbox', '--ssh-config', config], { SSH_AUTH_SOCK: '' });
    expect(refused.exitCode, refused.stderr).toBe(3);
    expect(refused.stderr).toContain(`it presents ssh-ed25519 ${hostFp}`);
    // User and IdentityFile: logged in, the driver built there (a build failure is the quickest full round trip).
    writeFileSync(kh, `${target.knownHostsLine}\n`);
    const r = await runCli(['check', join(FIXTURES, 'drivers', 'api-drift'), '--target', 'ssh://labbox', '--ssh-config', config, '--json'], { SSH_AUTH_SOCK: '' });
    expect(r.exitCode, r.stderr).toBe(1);
    const report = parseValidResults<CheckReport>(r.stdout);
    expect(report.kernel.spec).toBe('ssh://labbox');
    const builds = report.items.find((i) => i.id === 'builds')!;
    expect(builds.verdict).toBe('fail');
    // The report names the target as the user did.
    expect(builds.reason).toMatch(/does not compile for \S+ on labbox /);
    // Check on the target: a driver that does not compile there shows its own file:line (gcc ran
    // there, in a directory of the target's; the path is the user's). This had a test of its own,
    // which only made this very build fail again (a minute on the emulated target).
    expect(builds.details).toContain("test/fixtures/drivers/api-drift/api_drift.c:24:29: error: 'struct mm_struct' has no member named 'mmap'");
    expect(await leftovers()).toBe('');
  }, 300_000);

  it('goes through ProxyJump hosts of the ssh_config, checking each host key (the test sshd is its own jump host)', async () => {
    const kh = knownHosts('kh-jump', `${target.knownHostsLine}\n`);
    const config = join(tmp, 'ssh_config-jump');
    // inner: the target's sshd seen from inside the target, reached through a channel the jump host forwards.
    writeFileSync(config, `Host inner\n  HostName 127.0.0.1\n  Port 22\n  HostKeyAlias mmaplab-inner\n  ProxyJump jumpbox\n\nHost jumpbox\n  HostName 127.0.0.1\n  Port ${target.port}\n\nHost *\n  User lab\n  IdentityFile ${image.identity}\n  UserKnownHostsFile ${kh}\n`);
    // The inner host's key is not known yet under its HostKeyAlias: refused, naming it.
    const refused = await runCli(['run', '--target', 'ssh://inner', '--ssh-config', config, '--strategy', 'seed'], { SSH_AUTH_SOCK: '' });
    expect(refused.exitCode, refused.stderr).toBe(3);
    expect(refused.stderr).toContain(`mmaplab-inner's host key is not in ${kh}: it presents ssh-ed25519 ${hostFp}`);
    writeFileSync(kh, `${target.knownHostsLine}\nmmaplab-inner ${image.hostKey}\n`);
    // Through the jump, a driver built, loaded and checked there: a driver of one file, so the
    // connection is what costs (the whole lab on a target is the test above).
    const r = await runCli(['check', join(FIXTURES, 'drivers', 'misc-device'), '--target', 'ssh://inner', '--ssh-config', config, '--json'], { SSH_AUTH_SOCK: '' });
    expect(r.exitCode, r.stderr).toBe(0);
    const report = parseValidResults<CheckReport>(r.stdout);
    const facts = (await targetExec(target, 'uname -r; cat /proc/sys/kernel/random/boot_id')).stdout.trim().split('\n');
    expect(report.status).toBe('pass');
    expect(report.kernel).toMatchObject({ spec: 'ssh://inner', release: facts[0] });
    // The report keeps the alias, the address it resolved to and the hop it went through.
    expect(report.machine).toMatchObject({ kind: 'ssh', target: 'ssh://inner', address: 'ssh://lab@127.0.0.1:22', via: [target.url('lab')], hostKey: hostFp, bootId: facts[1], leftBehind: [] });
    expect(facts[1]).not.toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    expect(report.items.find((i) => i.id === 'builds')?.verdict).toBe('pass');
    expect(await leftovers()).toBe('');
  }, 400_000);

  // Last: it kills the target.
  it('reports a target that goes down mid-run as a lost connection, with the kernel log so far', async () => {
    const out = join(tmp, 'lost');
    // A driver of one file with two strategies (the lab's own takes minutes to build on the emulated
    // target): "good" runs in full, and the target is killed as the second one ("crash") begins, before
    // it can load; what is proven is the run's, not the driver's.
    const p = startCli(['run', '--module-dir', join(FIXTURES, 'drivers', 'crashing-strategy'), ...args('lab', knownHosts('kh-lost', `${target.knownHostsLine}\n`)), '--strategy', 'good,crash', '--check', 'private,shared,oversize', '--json', '-v', '--output-dir', out]);
    let killedAt = 0;
    p.stderr.on('data', (d: Buffer) => {
      if (!killedAt && / job\] crash/.test(d.toString())) {
        killedAt = performance.now();
        void target.vm.kill();
      }
    });
    const r = await p;
    expect(killedAt, String(r.stderr)).toBeGreaterThan(0);
    // Noticed at once (the forwarded port closes) or by keepalives within seconds; never a hang.
    expect(performance.now() - killedAt).toBeLessThan(30_000);
    expect(r.exitCode, String(r.stderr)).toBe(1);
    const report = parseValidResults<RunReport>(String(r.stdout));
    expect(report.strategies.map((s) => s.end)).toEqual(['done', 'connection-lost']);
    const good = report.results.filter((x) => x.strategy === 'good');
    expect(good.length).toBeGreaterThan(0);
    expect(good.every((x) => x.matchesExpected)).toBe(true);
    for (const x of report.results.filter((y) => y.strategy === 'crash')) {
      expect(['lost', 'not-run']).toContain(x.outcome.kind);
      expect(JSON.stringify(x.outcome)).toMatch(/connection to the target was lost|stopped answering/);
      expect(x.matchesExpected).toBe(false);
    }
    expect(report.machine).toMatchObject({ kind: 'ssh', leftBehind: [expect.stringMatching(/connection to 127\.0\.0\.1 was lost: \/tmp\/mmaplab\.\S+ and the module crashing may remain/)] });
    // The log received until the end is kept: the first strategy's job in full.
    expect(readFileSync(join(out, 'console.log'), 'utf8')).toMatch(/mmaplab: job 1 begin[^]*mmaplab: job 1 end/);
    expect(existsSync(join(out, 'results.json'))).toBe(true);
    // The directory reads back as the report the run wrote, the lost job included.
    const parsed = await runCli(['parse', out, '--json']);
    expect(parsed.exitCode, parsed.stderr).toBe(1);
    expect(parseValidResults(parsed.stdout)).toEqual(report);
    // Nothing of mmaplab's left running here either.
    expect(qemuProcesses()).toEqual([]);
    expect(STATE_DIR).toBeTruthy();
  }, 400_000);
});
