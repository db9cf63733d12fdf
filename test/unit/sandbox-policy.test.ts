/** Whether and how an untrusted driver's build is confined, from what the user said and what the host allows. */
import { describe, expect, it } from 'vitest';
import { kbuildFailure, moduleName } from '../../src/kbuild/kbuild.js';
import { observeJob } from '../../src/parse/job-records.js';
import { parseRecordLine } from '../../src/guest/protocol.js';
import { requestedConfinement, whyNoSandbox } from '../../src/sandbox/policy.js';
import { isMmaplabError } from '../../src/util/errors.js';

describe('requestedConfinement', () => {
  it('confines by default; --trust-driver and MMAPLAB_TRUST_DRIVER opt out, MMAPLAB_SANDBOX=container names the container', () => {
    expect(requestedConfinement({ trustDriver: false, env: {} })).toEqual({ kind: 'sandbox' });
    expect(requestedConfinement({ trustDriver: true, env: {} })).toEqual({ kind: 'trusted', setBy: '--trust-driver' });
    expect(requestedConfinement({ trustDriver: false, env: { MMAPLAB_TRUST_DRIVER: 'true' } })).toEqual({ kind: 'trusted', setBy: 'MMAPLAB_TRUST_DRIVER=true' });
    expect(requestedConfinement({ trustDriver: false, env: { MMAPLAB_TRUST_DRIVER: '0' } })).toEqual({ kind: 'sandbox' });
    expect(requestedConfinement({ trustDriver: false, env: { MMAPLAB_SANDBOX: 'container' } })).toEqual({ kind: 'container', setBy: 'MMAPLAB_SANDBOX=container' });
    expect(requestedConfinement({ trustDriver: false, env: { MMAPLAB_SANDBOX: 'bwrap' } })).toEqual({ kind: 'sandbox' });
  });

  it('an unknown MMAPLAB_SANDBOX is a usage error naming the choices', () => {
    try {
      requestedConfinement({ trustDriver: false, env: { MMAPLAB_SANDBOX: 'chroot' } });
      expect.unreachable();
    } catch (e) {
      expect(isMmaplabError(e) && e.kind).toBe('usage');
      expect(isMmaplabError(e) && e.hint).toMatch(/bwrap .*container/);
    }
  });
});

describe('whyNoSandbox', () => {
  const none = () => undefined;
  const bwrap = 'bwrap: No permissions to creating new namespace, likely because the kernel does not allow non-privileged user namespaces.';
  it('names the host setting that forbids user namespaces, with the command that allows them', () => {
    expect(whyNoSandbox(bwrap, { root: false, container: false, sysctl: (n) => (n === 'kernel/apparmor_restrict_unprivileged_userns' ? '1' : undefined) })).toMatchObject({
      reason: expect.stringContaining('AppArmor'),
      fix: expect.stringContaining('kernel.apparmor_restrict_unprivileged_userns=0'),
    });
    expect(whyNoSandbox(bwrap, { root: false, container: false, sysctl: (n) => (n === 'kernel/unprivileged_userns_clone' ? '0' : undefined) }).fix).toContain('kernel.unprivileged_userns_clone=1');
    expect(whyNoSandbox(bwrap, { root: true, container: false, sysctl: (n) => (n === 'user/max_user_namespaces' ? '0' : undefined) }).fix).toContain('user.max_user_namespaces=');
  });

  it("in a container, says that it is the container's profile and how to lift it or let the container be the sandbox", () => {
    const w = whyNoSandbox('bwrap: Creating new namespace failed: Operation not permitted', { root: true, container: true, sysctl: none });
    expect(w.reason).toMatch(/^this container forbids the namespaces a sandbox needs \(Creating new namespace failed: Operation not permitted\)/);
    expect(w.fix).toContain('--security-opt seccomp=unconfined');
    expect(w.fix).toContain('MMAPLAB_SANDBOX=container');
  });
});

describe('moduleName', () => {
  it("takes the .modinfo name only if it is a module name: it is the driver's to write", () => {
    expect(moduleName('vmmap', 'vmmap.ko')).toBe('vmmap');
    expect(moduleName('../../etc/cron.d/x', 'evil.ko')).toBe('evil');
    expect(moduleName('\x1b[2Jx', 'my-drv.ko')).toBe('my_drv');
    expect(moduleName(undefined, 'my-drv.ko')).toBe('my_drv');
  });
});

describe('what a hostile build or guest prints is not taken at its word', () => {
  it('"pahole: not found" from a Makefile is a missing tool only if the tool is missing', () => {
    const out = '/bin/sh: 1: pahole: not found\nmake: *** [Makefile] Error 127\n';
    const p = { displayDir: 'drv', release: '6.1.0-57-cloud-amd64', logPath: '/tmp/log' };
    expect(kbuildFailure(out, out, [], { ...p, hasTool: () => false }).kind).toBe('missing-tool');
    expect(kbuildFailure(out, out, [], { ...p, hasTool: () => true }).kind).toBe('build');
  });

  it('a record of the wrong shape is stray text, not a crash', () => {
    const records = ['{"t":"kmsg","line":1}', '{"t":"vmalloc","when":"seen","line":""}', '{"t":"vmalloc","when":"__proto__","line":""}'].map(parseRecordLine);
    const obs = observeJob(records, ['shared']);
    expect(obs.stray).toHaveLength(3);
  });
});
