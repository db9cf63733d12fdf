/**
 * `mmaplab setup`: on Debian/Ubuntu, installs what mmaplab needs by running the
 * package's own bin/install-deps (the script a clone runs before npm ci, so
 * both install from the one list, bin/packages.txt); elsewhere it installs
 * nothing and says what to run.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { MmaplabError } from '../util/errors.js';
import { PACKAGE_ROOT } from '../util/paths.js';

export const INSTALL_DEPS = join(PACKAGE_ROOT, 'bin', 'install-deps');

/** Debian, Ubuntu or a derivative, from /etc/os-release's ID and ID_LIKE. */
export function isDebianLike(osRelease: string): boolean {
  const field = (k: string) => new RegExp(`^${k}="?([^"\\n]*)"?$`, 'm').exec(osRelease)?.[1] ?? '';
  return /\b(debian|ubuntu)\b/.test(`${field('ID')} ${field('ID_LIKE')}`);
}

function osRelease(): string {
  try {
    return readFileSync('/etc/os-release', 'utf8');
  } catch {
    return '';
  }
}

export interface SetupPlan {
  /** The command setup runs (or would, with --dry-run). */
  argv: string[];
}

export function setupPlan(o: { tests: boolean; platform?: NodeJS.Platform; osRelease?: string }): SetupPlan {
  const platform = o.platform ?? process.platform;
  if (platform !== 'linux' || !isDebianLike(o.osRelease ?? osRelease())) {
    throw new MmaplabError('missing-tool', 'mmaplab setup installs packages on Debian and Ubuntu only', { hint: 'run mmaplab doctor: it lists what is missing with the Fedora and Arch package names, or what to use on this system' });
  }
  return { argv: ['sh', INSTALL_DEPS, ...(o.tests ? [] : ['--runtime'])] };
}

/** Runs install-deps on the user's terminal (apt's progress and sudo's prompt go straight through). */
export async function runSetup(plan: SetupPlan): Promise<void> {
  const r = await execa(plan.argv[0]!, plan.argv.slice(1), { stdio: 'inherit', reject: false });
  if (r.exitCode !== 0) throw new MmaplabError('missing-tool', `installing the packages failed (${plan.argv.join(' ')} exited with ${r.exitCode ?? r.signal})`, { hint: "apt-get's messages above say why" });
}
