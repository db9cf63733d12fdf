/** A kernel ready to boot and to build modules against. */
import type { Arch } from './arch.js';

export interface Kernel {
  /** The spec it was resolved from, e.g. debian:bookworm. */
  spec: string;
  /** `uname -r` inside the guest, e.g. 6.1.0-56-cloud-amd64. */
  release: string;
  /** Debian package version, e.g. 6.1.192-2. */
  packageVersion: string;
  suite: string;
  flavour: string;
  /** The machine it runs on (kernels cached before mmaplab knew other architectures are amd64's). */
  arch: Arch;
  /** Cache entry holding everything below. */
  dir: string;
  /** bzImage to boot. */
  image: string;
  /** The same kernel uncompressed, for a faster PVH boot; set once made (kernel/vmlinux.ts). */
  vmlinux?: string | undefined;
  config: string;
  systemMap: string | undefined;
  /** lib/modules/<release> with the kernel's own modules (virtio, ...). */
  modulesDir: string;
  /** The Kbuild directory to pass as `make -C`. */
  headersDir: string;
  /** CONFIG_CC_VERSION_TEXT: the compiler the kernel was built with. */
  compilerText: string;
}
