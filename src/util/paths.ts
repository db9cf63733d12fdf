/** Where mmaplab keeps things: the project's own files and the per-user cache. */
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (holds kernel-module/, userspace/, vm/), whether run from src/ or dist/. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const projectPaths = {
  kernelModule: join(PACKAGE_ROOT, 'kernel-module'),
  userspace: join(PACKAGE_ROOT, 'userspace'),
  vm: join(PACKAGE_ROOT, 'vm'),
};

/** Whether path is dir or below it (both absolute and normalised). */
export function isInside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** The folders of a list that no other folder of it contains: what to bind or copy once. */
export function outermost(dirs: Iterable<string>): string[] {
  const all = [...new Set(dirs)];
  return all.filter((d) => !all.some((o) => o !== d && isInside(d, o)));
}

/** $MMAPLAB_CACHE_DIR, else $XDG_CACHE_HOME/mmaplab, else ~/.cache/mmaplab. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MMAPLAB_CACHE_DIR) return resolve(env.MMAPLAB_CACHE_DIR);
  const base = env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache');
  return join(base, 'mmaplab');
}

/** Run artefacts: $MMAPLAB_STATE_DIR, else $XDG_STATE_HOME/mmaplab, else ~/.local/state/mmaplab. */
export function stateRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MMAPLAB_STATE_DIR) return resolve(env.MMAPLAB_STATE_DIR);
  const base = env.XDG_STATE_HOME ? resolve(env.XDG_STATE_HOME) : join(homedir(), '.local', 'state');
  return join(base, 'mmaplab');
}
