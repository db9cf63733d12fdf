/**
 * A driver is untrusted code (test/fixtures/hostile): its build reaches
 * nothing of the host, and what it prints in the guest neither harms the host
 * nor the report. Every case runs the real CLI: a real bubblewrap sandbox
 * around a real Kbuild, real guests for what the driver does when loaded.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CheckItem, CheckReport } from '../../src/model/report.js';
import { BwrapSandbox } from '../../src/sandbox/bwrap.js';
import { probeSandbox } from '../../src/sandbox/policy.js';
import { cacheRoot } from '../../src/util/paths.js';
import { which } from '../../src/util/tools.js';
import { ROOT } from '../helpers.js';
import { processesMatching as processes, qemuProcesses, runCli } from './cli.js';
import { parseValidResults } from '../support/schema.js';

const HOSTILE = join(ROOT, 'test/fixtures/hostile');
const COMPILE_ERROR = 'test/fixtures/drivers/compile-error';

afterEach(() => {
  expect(qemuProcesses()).toEqual([]);
});


/** Every file under dir, as text: what an artefact could leak. */
function contentsOf(dir: string): string {
  let all = '';
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    all += e.isDirectory() ? contentsOf(p) : `${e.name}\n${readFileSync(p, 'latin1')}\n`;
  }
  return all;
}

/** The build logs mmaplab kept in its cache for builds of sources under `dir`. */
function buildLogsFor(dir: string): string[] {
  const builds = join(cacheRoot(), 'builds');
  return readdirSync(builds)
    .map((e) => join(builds, e, 'build.log'))
    .filter((p) => existsSync(p) && readFileSync(p, 'utf8').includes(dir))
    .map((p) => readFileSync(p, 'utf8'));
}

function report(stdout: string): { report: CheckReport; item: (id: string) => CheckItem } {
  const r = parseValidResults<CheckReport>(stdout);
  return { report: r, item: (id) => r.items.find((i) => i.id === id)! };
}

/** A fresh folder outside the project, holding a secret the build must not see. */
function workspace(): { base: string; secret: string; token: string } {
  const base = mkdtempSync(join(tmpdir(), 'mmaplab-hostile-'));
  const token = randomBytes(12).toString('hex');
  const secret = join(base, 'secret.h');
  writeFileSync(secret, `#error SECRET-${token}\n`);
  return { base, secret, token };
}

describe('the sandbox itself', () => {
  // As root where user namespaces cannot be made, the sandbox runs without one: the same isolation, root without capabilities.
  const variants = process.getuid?.() === 0 ? [true, false] : [true];
  it.each(variants)('runs a command with none of the host but its toolchain: no home, no /etc secrets, no network, an allowlisted environment, no process left (user namespace: %s)', async (userNs) => {
    const s = await probeSandbox();
    expect(s, JSON.stringify(s)).toBeInstanceOf(BwrapSandbox);
    const box = userNs ? (s as BwrapSandbox) : new BwrapSandbox(which('bwrap')!, 'test', false);
    const marker = String(50_000 + Math.floor(Math.random() * 9000));
    const script = [
      `ls -d ${homedir()} /etc/shadow /etc/passwd 2>&1`,
      'cat /proc/net/dev | tail -n +3 | cut -d: -f1',
      'env | sort',
      `setsid sh -c 'sleep ${marker}' </dev/null >/dev/null 2>&1 &`,
      // Nowhere to write but what it is given: not its own root, not /dev/shm (memory).
      'echo x > /x 2>&1 || echo root-ro',
      'echo x > /dev/shm/x 2>&1 || echo shm-ro',
      'echo done',
    ].join('\n');
    const r = await box.run(['sh', '-c', script], { readOnly: [], writable: [], cwd: '/' });
    for (const hidden of [homedir(), '/etc/shadow', '/etc/passwd']) expect(r.stdout).toMatch(new RegExp(`'?${hidden}'?: No such file or directory`));
    // Only the loopback of its own network namespace.
    expect(r.stdout.split('\n').filter((l) => /^\s+\w+$/.test(l)).map((l) => l.trim())).toEqual(['lo']);
    expect(r.stdout.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split('=')[0])).toEqual(['HOME', 'LANG', 'LC_ALL', 'PATH', 'PWD', 'TMPDIR']);
    expect(r.stdout).toContain('root-ro');
    expect(r.stdout).toContain('shm-ro');
    expect(r.stdout).toContain('done');
    expect(processes(`sleep ${marker}`)).toEqual([]);
  });

  it('stops a command that writes more than its disk limit, in all its files', async () => {
    const box = (await probeSandbox()) as BwrapSandbox;
    const dir = mkdtempSync(join(tmpdir(), 'mmaplab-disk-'));
    // It gives up by itself after 256 MiB (so a broken watch fails this test instead of filling the disk), sleeping so the watch can see it.
    const r = await box.run(['sh', '-c', 'i=0; while [ $i -lt 256 ]; do head -c 1048576 /dev/zero > f$i; i=$((i+1)); sleep 0.02; done'], { readOnly: [], writable: [dir], cwd: dir }, { ...box.limits(), diskMb: 8 });
    expect(r.ok).toBe(false);
    expect(r.stopped).toBe('disk');
    expect(readdirSync(dir).length).toBeLessThan(128);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('a hostile build', () => {
  it('reaches nothing: no file outside its folder, no connection, no process left, no secret or environment in any output', async () => {
    const { base, secret, token } = workspace();
    const envToken = randomBytes(12).toString('hex');
    const driver = join(base, 'driver');
    mkdirSync(driver);
    copyFileSync(join(HOSTILE, 'build-escape', 'hostile_build.c'), join(driver, 'hostile_build.c'));
    let connections = 0;
    const server = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const sleep = String(60_000 + Math.floor(Math.random() * 9000));
    const outside = join(base, 'outside');
    const kbuild = readFileSync(join(HOSTILE, 'build-escape', 'Kbuild.in'), 'utf8')
      .replaceAll('@OUTSIDE@', outside)
      .replaceAll('@TOKEN@', 'mark')
      .replaceAll('@PORT@', String(port))
      .replaceAll('@SLEEP@', sleep)
      .replaceAll('@SECRET@', secret);
    writeFileSync(join(driver, 'Kbuild'), kbuild);
    try {
      const r = await runCli(['check', driver, '--json'], { MMAPLAB_HOSTILE_ENV: `ENV-${envToken}` });
      // A correct driver: it builds and passes, the hostile lines did nothing.
      expect(r.exitCode, r.stderr).toBe(0);
      const { report: rep } = report(r.stdout);
      expect(rep.driver.isolation).toMatchObject({ kind: 'sandbox', tool: expect.stringMatching(/^bubblewrap /) });
      expect(existsSync(outside)).toBe(false);
      expect(existsSync(join(homedir(), 'mmaplab-hostile-mark'))).toBe(false);
      expect(connections).toBe(0);
      expect(processes(`sleep ${sleep}`)).toEqual([]);
      // The lines did run: the build log shows the secret was not there to read.
      const logs = buildLogsFor(driver).join('\n');
      expect(logs).toMatch(/secret: cat: .*secret\.h: No such file or directory/);
      const everything = [r.stdout, r.stderr, contentsOf(rep.artifacts.dir), logs].join('\n');
      expect(everything).not.toContain(token);
      expect(everything).not.toContain(envToken);
    } finally {
      server.close();
    }
  });

  it('a symlink to a host file is a failed build that names it, and nothing of the file appears', async () => {
    const { base, secret, token } = workspace();
    const driver = join(base, 'driver');
    mkdirSync(driver);
    for (const f of ['Kbuild', 'symlink_secret.c']) copyFileSync(join(HOSTILE, 'symlink-secret', f), join(driver, f));
    symlinkSync(secret, join(driver, 'secret.h'));
    const r = await runCli(['check', driver, '--json']);
    expect(r.exitCode, r.stderr).toBe(1);
    const { report: rep, item } = report(r.stdout);
    expect(item('builds')).toMatchObject({ verdict: 'fail', reason: 'secret.h is a symlink that leads outside the submission' });
    expect([r.stdout, r.stderr, contentsOf(rep.artifacts.dir)].join('\n')).not.toContain(token);
  });

  it('an #include of a host file by its absolute path fails as not found; trusted, the same driver would have read it', async () => {
    const { base, secret, token } = workspace();
    const driver = join(base, 'driver');
    mkdirSync(driver);
    for (const f of ['Kbuild', 'include_secret.c']) copyFileSync(join(HOSTILE, 'include-secret', f), join(driver, f));
    writeFileSync(join(driver, 'secret_path.h'), `#include "${secret}"\n`);
    const r = await runCli(['check', driver, '--json']);
    expect(r.exitCode, r.stderr).toBe(1);
    const { report: rep, item } = report(r.stdout);
    expect(item('builds').verdict).toBe('fail');
    expect(item('builds').details?.join('\n')).toMatch(/secret_path\.h:1:\d+: (fatal )?error: .*secret\.h: No such file or directory/);
    expect(item('builds').hint).toMatch(/^put the header in the driver's folder/);
    expect([r.stdout, r.stderr, contentsOf(rep.artifacts.dir), ...buildLogsFor(driver)].join('\n')).not.toContain(token);
    // The fixture is what it claims: without the sandbox, gcc reads the file and prints it.
    const trusted = await runCli(['check', driver, '--json', '--trust-driver']);
    expect(trusted.stdout).toContain(`SECRET-${token}`);
    expect(report(trusted.stdout).report.driver.isolation).toEqual({ kind: 'trusted', setBy: '--trust-driver' });
  });

  it('a build that never ends is stopped at its limit with every process it started, and says so', async () => {
    const r = await runCli(['check', join(HOSTILE, 'endless-build'), '--json', '--build-timeout', '3']);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(report(r.stdout).item('builds')).toMatchObject({
      verdict: 'fail',
      reason: expect.stringMatching(/^the build of .*endless-build did not finish in 3 s: it was stopped, with every process it started$/),
      hint: expect.stringContaining('--build-timeout'),
    });
    expect(processes('sleep 86400')).toEqual([]);
  });

  it('a build that prints without end is stopped at its output limit; the log kept is bounded', async () => {
    const r = await runCli(['check', join(HOSTILE, 'loud-build'), '--json']);
    expect(r.exitCode, r.stderr).toBe(1);
    const { report: rep, item } = report(r.stdout);
    expect(item('builds').reason).toMatch(/^the build of .*loud-build printed more than 4 MiB: it was stopped/);
    expect(statSync(join(rep.artifacts.dir, 'module-build.log')).size).toBeLessThan(10 << 20);
  });
});

describe('where no sandbox can be made', () => {
  /** A bwrap that fails as it does where user namespaces are forbidden (Docker's default seccomp profile). */
  function noNamespaces(): Record<string, string> {
    const bin = mkdtempSync(join(tmpdir(), 'mmaplab-nobwrap-'));
    writeFileSync(join(bin, 'bwrap'), '#!/bin/sh\n[ "$1" = --version ] && { echo "bubblewrap 0.8.0"; exit 0; }\necho "bwrap: No permissions to create a new namespace, likely because the kernel does not allow non-privileged user namespaces." >&2\nexit 1\n');
    chmodSync(join(bin, 'bwrap'), 0o755);
    return { PATH: `${bin}:${process.env.PATH ?? ''}` };
  }

  it('check refuses in one line saying what is missing and how to trust the driver instead, before fetching anything', async () => {
    const r = await runCli(['check', COMPILE_ERROR], noNamespaces());
    expect(r.exitCode).toBe(3);
    expect(r.stderr.split('\n')[0]).toMatch(/^mmaplab: error: cannot build the driver in test\/fixtures\/drivers\/compile-error in a sandbox: /);
    expect(r.stderr).toContain('--trust-driver');
    expect(r.stdout).toBe('');
  });

  it('MMAPLAB_TRUST_DRIVER=1 builds it unconfined, and MMAPLAB_SANDBOX=container lets the container be the sandbox; the report says which', async () => {
    const trusted = await runCli(['check', COMPILE_ERROR, '--json'], { ...noNamespaces(), MMAPLAB_TRUST_DRIVER: '1' });
    expect(trusted.exitCode, trusted.stderr).toBe(1);
    expect(report(trusted.stdout).report.driver.isolation).toEqual({ kind: 'trusted', setBy: 'MMAPLAB_TRUST_DRIVER=1' });
    const container = await runCli(['check', COMPILE_ERROR], { ...noNamespaces(), MMAPLAB_SANDBOX: 'container' });
    expect(container.exitCode, container.stderr).toBe(1);
    expect(container.stdout).toMatch(/^ {2}build {4}without a sandbox of its own: the container is the sandbox \(MMAPLAB_SANDBOX=container/m);
  });
});

describe("a lab's test program written to do harm in the guest", () => {
  it('cannot forge the job channel, flood the report or hang the CLI: its runs are judged on what it did, the checks stand', async () => {
    const r = await runCli(['check', join(HOSTILE, 'lab-test-hostile')]);
    expect(r.exitCode, r.stderr).toBe(0);
    for (const out of [r.stdout, r.stderr]) expect(out).not.toMatch(/[\x07\x1b\x9b]/);
    expect(r.stdout).toMatch(/^PASS: 15 checks passed$/m);
    const dir = /^artefacts {2}(\S+)$/m.exec(r.stdout)![1]!;
    const rep = parseValidResults<CheckReport>(readFileSync(join(dir, 'results.json'), 'utf8'));
    const runs = rep.labTest?.kind === 'ran' ? rep.labTest.runs : [];
    // fd 3, the agent's channel, is closed for it: its forged "lab-run ... status 0" and "job-end" went nowhere.
    expect(runs[0]).toMatchObject({ run: 1, verdict: 'fail', reason: '0/16 pages matched aa bb cc dd; it printed "write 3: Bad file descriptor"' });
    expect(runs[0]!.output.length).toBeLessThanOrEqual(40);
    expect(runs[0]!.output[1]).toBe('\\x1b[2J\\x1b]0;owned\\x07flood 0');
    // It ignores SIGTERM and hangs: killed at the step deadline, with the child it left.
    expect(runs[1]).toMatchObject({ run: 2, verdict: 'fail', reason: expect.stringMatching(/; it did not finish within the step deadline and was killed$/) });
    const records = readFileSync(join(dir, 'records.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"lab-output"'));
    expect(records.length).toBeLessThanOrEqual(2 * 200);
  });
});

describe('what a driver prints in the guest', () => {
  it('a printk flood is stopped within seconds and reported as one; the kept console and results are bounded', async () => {
    const r = await runCli(['check', join(HOSTILE, 'printk-flood'), '--json']);
    expect(r.exitCode, r.stderr).toBe(1);
    const { report: rep, item } = report(r.stdout);
    expect(item('shared')).toMatchObject({ verdict: 'fail', reason: expect.stringMatching(/^the driver printed \d+ lines in [\d.]+ s during the shared check and was stopped: the console could not keep up$/) });
    expect(item('shared').hint).toMatch(/pr_info_once|printk_ratelimited/);
    expect(rep.results[0]!.outcome.kind).toBe('flood');
    expect(statSync(rep.artifacts.resultsJson).size).toBeLessThan(2 << 20);
    expect(statSync(rep.artifacts.consoleLog!).size).toBeLessThanOrEqual(6 << 20);
    for (const x of rep.results) expect(x.kernelLog.length).toBeLessThanOrEqual(201);
  });

  it('escape sequences in a device name and in printk text reach the terminal only as visible text', async () => {
    const r = await runCli(['check', join(HOSTILE, 'escape-names')]);
    expect(r.exitCode, r.stderr).toBe(0);
    for (const out of [r.stdout, r.stderr]) {
      expect(out).not.toMatch(/[\x07\x1b\x9b]/);
    }
    // Re-read as JSON: the printk lines keep their escapes, as \xNN text.
    const dir = /^artefacts {2}(\S+)$/m.exec(r.stdout)![1]!;
    const parsed = await runCli(['parse', dir, '--json']);
    const lines = parseValidResults<CheckReport>(parsed.stdout).kernelLog.lines.map((l) => l.text).join('\n');
    expect(lines).toContain('\\x1b]52;c;');
    expect(lines).toContain('\\x1b[2J');
  });

  it('a driver that allocates until the guest has no memory is named at its allocation, in mmap() and in init', async () => {
    const inMmap = await runCli(['check', join(HOSTILE, 'oom-mmap'), '--json']);
    expect(inMmap.exitCode, inMmap.stderr).toBe(1);
    expect(report(inMmap.stdout).item('shared').reason).toMatch(/^the driver used up the guest's memory in oom_mmap\+0x[0-9a-f]+ \(.*oom_mmap\.c:\d+\)/);
    const inInit = await runCli(['check', join(HOSTILE, 'oom-init'), '--json']);
    expect(inInit.exitCode, inInit.stderr).toBe(1);
    expect(report(inInit.stdout).item('loads').reason).toMatch(/^module init used up the guest's memory in oi_init\+0x[0-9a-f]+ \(.*oom_init\.c:\d+/);
  }, 300_000);

  it('a driver that starts kernel threads without end: the step that could not start a process says the guest ran out of them', async () => {
    const r = await runCli(['check', join(HOSTILE, 'kthread-bomb'), '--json']);
    expect(r.exitCode, r.stderr).toBe(1);
    // A race (the checks' own processes come and go): rmmod finds no process left, or a command of the job script does, or rmmod succeeds and a thread still running faults in the freed module.
    const rep = report(r.stdout);
    const unloads = rep.item('unloads');
    if (unloads.verdict === 'fail') {
      // rmmod could not fork, or it did and a thread left running then ran the freed module's code.
      expect(unloads).toMatchObject({ reason: expect.stringMatching(/^(the guest had no process left to run rmmod with \(fork: Resource temporarily unavailable\)|the module's code ran after rmmod had freed it)/), hint: expect.stringContaining('kthread_stop()') });
    } else {
      expect(rep.report.notes.join('\n')).toMatch(/the guest ran out of processes during the job: its script could not start a command \(can't fork: Resource temporarily unavailable\)/);
    }
  });
});
