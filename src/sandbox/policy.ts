/**
 * Whether an untrusted driver's build is confined, and how: bubblewrap where
 * it works; the container itself when the user says it is the sandbox; no
 * sandbox only when the user says the code is trusted. Where none can be made
 * and nothing was said, the build is refused with what is missing and how to
 * enable it. The probe runs a real sandbox once per process.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { BuildIsolation, BuildLimits } from '../model/isolation.js';
import { MmaplabError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { which } from '../util/tools.js';
import { BwrapSandbox } from './bwrap.js';

export type BuildConfinement =
  | { kind: 'sandbox'; sandbox: BwrapSandbox }
  /** Built as the user, unconfined: trusted, mmaplab's own driver, or the container is the sandbox. */
  | { kind: 'unconfined'; isolation: BuildIsolation };

/** mmaplab's own driver: built as before, unconfined. */
export const OWN_DRIVER: BuildConfinement = { kind: 'unconfined', isolation: { kind: 'own' } };

/** What the report says of a build so confined, with the limits it runs under. */
export function isolationOf(c: BuildConfinement, limits?: Partial<BuildLimits>): BuildIsolation {
  return c.kind === 'sandbox' ? c.sandbox.isolation(c.sandbox.limits(limits)) : c.isolation;
}

export interface ConfinementRequest {
  /** --trust-driver, or trustDriver in the project's config file. */
  trustDriver: boolean;
  /** Who said so, when it was not --trust-driver (e.g. "trustDriver in /lab/mmaplab.config.yaml"). */
  trustedBy?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

const YES = /^(1|true|yes|on)$/i;

/** What the user said, from the flag and the environment: trusted, the container, or confine it (the default). */
export function requestedConfinement(req: ConfinementRequest): { kind: 'trusted'; setBy: string } | { kind: 'container'; setBy: string } | { kind: 'sandbox' } {
  const env = req.env ?? process.env;
  if (req.trustDriver) return { kind: 'trusted', setBy: req.trustedBy ?? '--trust-driver' };
  const trust = env.MMAPLAB_TRUST_DRIVER;
  if (trust !== undefined && YES.test(trust)) return { kind: 'trusted', setBy: `MMAPLAB_TRUST_DRIVER=${trust}` };
  const mode = env.MMAPLAB_SANDBOX;
  if (mode === undefined || mode === '' || mode === 'bwrap') return { kind: 'sandbox' };
  if (mode === 'container') return { kind: 'container', setBy: 'MMAPLAB_SANDBOX=container' };
  throw new MmaplabError('usage', `MMAPLAB_SANDBOX=${mode} is not a sandbox mmaplab knows`, { hint: 'use bwrap (the default) or container (the container mmaplab runs in is the sandbox)' });
}

/** Signs of a container: Docker's and Podman's marker files, or a container runtime in PID 1's cgroup. */
export function inContainer(): boolean {
  if (existsSync('/.dockerenv') || existsSync('/run/.containerenv')) return true;
  const cgroup = readIf('/proc/1/cgroup');
  return /docker|containerd|kubepods|libpod|lxc/.test(cgroup);
}

function readIf(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/** Why bwrap cannot make its namespaces here, and what turns them on; from bwrap's words and the host's settings. */
export function whyNoSandbox(bwrapError: string, facts: { root: boolean; container: boolean; sysctl: (name: string) => string | undefined }): { reason: string; fix: string } {
  const first = bwrapError.trim().split('\n').find((l) => l.trim()) ?? 'bwrap failed';
  if (facts.sysctl('user/max_user_namespaces') === '0') return { reason: 'user namespaces are switched off (user.max_user_namespaces = 0)', fix: 'sudo sysctl -w user.max_user_namespaces=10000' };
  if (!facts.root && facts.sysctl('kernel/unprivileged_userns_clone') === '0') {
    return { reason: 'unprivileged user namespaces are switched off (kernel.unprivileged_userns_clone = 0)', fix: 'sudo sysctl -w kernel.unprivileged_userns_clone=1' };
  }
  if (!facts.root && facts.sysctl('kernel/apparmor_restrict_unprivileged_userns') === '1') {
    return { reason: "AppArmor forbids unprivileged user namespaces (Ubuntu's kernel.apparmor_restrict_unprivileged_userns = 1)", fix: 'sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or give bwrap an AppArmor profile that allows userns' };
  }
  if (facts.container) {
    return {
      reason: `this container forbids the namespaces a sandbox needs (${first.replace(/^bwrap: /, '')}); Docker's default seccomp profile does`,
      fix: 'run the container with --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined (see the README), or set MMAPLAB_SANDBOX=container if the container is the sandbox',
    };
  }
  return { reason: first, fix: 'see the README (Sandboxed builds) for what bubblewrap needs' };
}

function sysctl(name: string): string | undefined {
  const v = readIf(`/proc/sys/${name}`).trim();
  return v === '' ? undefined : v;
}

let probed: Promise<BwrapSandbox | { reason: string; fix: string }> | undefined;

/** A working bubblewrap sandbox, or why there is none; probed once per process by running `true` in it. */
export function probeSandbox(): Promise<BwrapSandbox | { reason: string; fix: string }> {
  probed ??= (async () => {
    const bwrap = which('bwrap');
    if (!bwrap) return { reason: 'bwrap not found', fix: 'install the Debian/Ubuntu package bubblewrap (sudo apt-get install bubblewrap), or run mmaplab setup' };
    const version = await bwrapVersion(bwrap);
    const root = process.getuid?.() === 0;
    const withUserNs = new BwrapSandbox(bwrap, version, true);
    const r = await withUserNs.run(['true'], { readOnly: [], writable: [], cwd: '/' }, { ...withUserNs.limits(), timeS: 20 });
    if (r.ok) return withUserNs;
    // Root where user namespaces cannot be made: the other namespaces still can, and the build runs without capabilities.
    if (root) {
      const plain = new BwrapSandbox(bwrap, version, false);
      const r2 = await plain.run(['true'], { readOnly: [], writable: [], cwd: '/' }, { ...plain.limits(), timeS: 20 });
      if (r2.ok) return plain;
    }
    return whyNoSandbox(r.stderr || r.all, { root, container: inContainer(), sysctl });
  })();
  return probed;
}

async function bwrapVersion(bwrap: string): Promise<string> {
  const r = await run(bwrap, ['--version']);
  return /bubblewrap\s+(\S+)/.exec(r.stdout)?.[1] ?? 'unknown';
}

/**
 * How the builds of an untrusted driver are confined, or the one-line refusal.
 * `what` names the driver in the refusal ("the driver in ./my-driver").
 */
export async function confineBuilds(req: ConfinementRequest, what: string): Promise<BuildConfinement> {
  const wanted = requestedConfinement(req);
  if (wanted.kind === 'trusted') return { kind: 'unconfined', isolation: wanted };
  if (wanted.kind === 'container') return { kind: 'unconfined', isolation: { ...wanted, detected: inContainer() } };
  const s = await probeSandbox();
  if (s instanceof BwrapSandbox) return { kind: 'sandbox', sandbox: s };
  throw new MmaplabError('sandbox', `cannot build ${what} in a sandbox: ${s.reason}`, {
    hint: `${s.fix}; or, if you trust this code, pass --trust-driver (MMAPLAB_TRUST_DRIVER=1 in CI)`,
  });
}
