/** `mmaplab kernels list | prune` in the terminal: what the cache holds, and what pruning removed. */
import type { SnapshotUse } from '../model/report.js';
import type { CacheListing, PruneResult } from '../model/cache.js';

const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;

export function renderCacheListing(l: CacheListing): string {
  const col = (b: number) => mb(b).padStart(8);
  const lines = [`cache ${l.cacheDir}`, ''];
  if (!l.kernels.length) lines.push('no kernels cached (mmaplab kernels fetch debian:bookworm)');
  for (const k of l.kernels) {
    lines.push(`${col(k.bytes)}  ${k.release.padEnd(28)} ${k.packageVersion.padEnd(20)} ${k.specs.length ? k.specs.join(', ') : '(superseded: mmaplab kernels prune removes it)'}`);
  }
  for (const r of l.buildRoots) lines.push(`${col(r.bytes)}  build root ${r.name}`);
  for (const x of l.other) lines.push(`${col(x.bytes)}  ${x.name}`);
  lines.push(`${col(l.totalBytes)}  in all`);
  return `${lines.join('\n')}\n`;
}

export function renderPruneResult(r: PruneResult): string {
  const lines = r.removed.map((x) => `removed ${x.name} (${mb(x.bytes)})`);
  lines.push(r.removed.length ? `freed ${mb(r.freedBytes)}` : 'nothing to remove');
  return `${lines.join('\n')}\n`;
}

/** What kernels fetch says of the snapshot it made or found. */
export function fetchedSnapshot(s: SnapshotUse): string {
  switch (s.use) {
    case 'made':
      return `snapshot ${s.key} made (boot ${(s.bootMs / 1000).toFixed(2)} s; ${s.why === 'missing' ? 'none was cached' : s.why === 'stale' ? 'the cached one no longer matched' : 'the cached one was damaged'})`;
    case 'restored':
      return `snapshot ${s.key} already cached`;
    case 'failed':
      return `no snapshot (${s.reason}); runs will boot`;
    case 'off':
      return 'no snapshot';
  }
}
