/** The kernel cache as `mmaplab kernels` reports it: what is cached, and what a prune removed. */

export interface CachedKernel {
  release: string;
  packageVersion: string;
  /** The specs (suite and flavour) that resolve to it now. */
  specs: string[];
  bytes: number;
  dir: string;
}

export interface CacheListing {
  cacheDir: string;
  kernels: CachedKernel[];
  buildRoots: Array<{ name: string; bytes: number; dir: string }>;
  /** Module and test-program builds, initramfs images. */
  other: Array<{ name: string; bytes: number }>;
  totalBytes: number;
}

export interface PruneResult {
  removed: Array<{ name: string; bytes: number }>;
  freedBytes: number;
}
