/** Kernel acquisition: from a spec to a kernel that can be booted and built against. */
import { acquireDebianKernel, type DebianFetchOptions } from './debian.js';
import { hostKernel, localKernel } from './installed.js';
import type { KernelSpec } from './spec.js';
import type { Kernel } from './types.js';

export type { Kernel } from './types.js';
export { parseKernelSpec, formatKernelSpec, expandKernelSpecs, kernelSlug, ALL_KERNELS, DEFAULT_KERNEL, DEFAULT_FLAVOUR, type KernelSpec } from './spec.js';

export type AcquireOptions = DebianFetchOptions;

export async function acquireKernel(spec: KernelSpec, opts: AcquireOptions): Promise<Kernel> {
  switch (spec.kind) {
    case 'debian':
      return acquireDebianKernel(spec, opts);
    case 'host':
      return hostKernel();
    case 'local':
      return localKernel(spec.image, spec.kdir);
  }
}
