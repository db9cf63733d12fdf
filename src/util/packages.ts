/**
 * The system packages mmaplab needs, read from bin/packages.txt: the one list
 * bin/install-deps (a shell script that runs before npm ci), `mmaplab doctor`
 * and `mmaplab setup` all read, so they cannot disagree.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from './paths.js';

export type PackageNeed = 'run' | 'optional' | 'test' | 'test-optional';

export interface SystemPackage {
  debian: string;
  need: PackageNeed;
  /** A command on PATH, an absolute path, `lib:<file>`, or undefined for none. */
  probe: string | undefined;
  fedora: string | undefined;
  arch: string | undefined;
  why: string;
}

export const PACKAGE_LIST = join(PACKAGE_ROOT, 'bin', 'packages.txt');

const NEEDS: readonly string[] = ['run', 'optional', 'test', 'test-optional'];

export function parsePackageList(text: string): SystemPackage[] {
  const out: SystemPackage[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [debian, need, probe, fedora, arch, ...why] = line.split(/\s+/);
    if (!debian || !need || !NEEDS.includes(need) || !probe || !fedora || !arch) throw new Error(`${PACKAGE_LIST}:${i + 1}: expected "debian need probe fedora arch why...", got '${line}'`);
    const dash = (v: string) => (v === '-' ? undefined : v);
    out.push({ debian, need: need as PackageNeed, probe: dash(probe), fedora: dash(fedora), arch: dash(arch), why: why.join(' ') });
  }
  return out;
}

let cached: SystemPackage[] | undefined;

export function systemPackages(): readonly SystemPackage[] {
  cached ??= parsePackageList(readFileSync(PACKAGE_LIST, 'utf8'));
  return cached;
}

/** What bin/install-deps installs: required ones and optional ones, the test suite's included unless runtime only. */
export function installSet(runtime: boolean): { required: string[]; optional: string[] } {
  const pkgs = systemPackages().filter((p) => !runtime || !p.need.startsWith('test'));
  return {
    required: pkgs.filter((p) => p.need === 'run' || p.need === 'test').map((p) => p.debian),
    optional: pkgs.filter((p) => p.need === 'optional' || p.need === 'test-optional').map((p) => p.debian),
  };
}
