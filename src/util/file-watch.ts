/**
 * Saves in a folder, debounced into batches: an editor's save is several
 * events (a temporary file, a rename, a write, a chmod), and a "save all" is
 * several files. Editors' own files are ignored (vim's swap, backup and 4913
 * probe files, emacs's #autosave# and .#lock, ~ backups, gedit's
 * .goutputstream), as are a build's outputs and version-control folders.
 * chokidar does the watching (inotify, new folders, atomic saves by rename).
 */
import { watch, type FSWatcher } from 'chokidar';
import { basename, relative, sep } from 'node:path';

/** Names no save of a source produces: editors' files, objects a build in the folder leaves, VCS folders. */
const IGNORED_NAME = /^(?:\..*\.sw[a-px]|.*\.sw[a-px]|.*~|#.*#|\.#.*|4913|\.goutputstream-.*|.*\.tmp|.*\.(?:o|ko|mod|mod\.c|order|symvers|cmd|a|d)|\.tmp_.*|\.cache\.mk)$/;
const IGNORED_DIR = /^(?:\.git|\.hg|\.svn|node_modules|\.vscode|\.idea|\.tmp_versions)$/;

export function ignoredPath(root: string, path: string): boolean {
  const parts = relative(root, path).split(sep).filter(Boolean);
  if (parts.some((p) => IGNORED_DIR.test(p))) return true;
  return parts.length > 0 && IGNORED_NAME.test(basename(path));
}

export interface FolderWatch {
  /** Resolves with the files saved (relative to the folder), once saves have stopped for the quiet period; undefined once closed. */
  next(): Promise<string[] | undefined>;
  close(): Promise<void>;
}

export async function watchFolder(root: string, opts: { quietMs: number }): Promise<FolderWatch> {
  const watcher: FSWatcher = watch(root, { ignoreInitial: true, ignored: (p) => ignoredPath(root, p), atomic: true, persistent: true });
  await new Promise<void>((resolve, reject) => {
    watcher.once('ready', resolve);
    watcher.once('error', reject);
  });
  let pending = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let waiting: ((files: string[] | undefined) => void) | undefined;
  let closed = false;
  const flush = () => {
    timer = undefined;
    if (!waiting || !pending.size) return;
    const files = [...pending].sort();
    pending = new Set();
    const w = waiting;
    waiting = undefined;
    w(files);
  };
  watcher.on('all', (_event, path) => {
    pending.add(relative(root, path) || basename(path));
    if (timer) clearTimeout(timer);
    timer = setTimeout(flush, opts.quietMs);
  });
  return {
    next: () =>
      closed
        ? Promise.resolve(undefined)
        : new Promise((resolve) => {
            waiting = resolve;
            // Saves made while the last check ran are the next batch at once (after the quiet period).
            if (pending.size && !timer) timer = setTimeout(flush, opts.quietMs);
          }),
    close: async () => {
      closed = true;
      if (timer) clearTimeout(timer);
      waiting?.(undefined);
      await watcher.close();
    },
  };
}
