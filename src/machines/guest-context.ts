/** What the guest machines of one command share: the kernel, QEMU, the accelerator, the run directory. */
import type { Initramfs } from '../guest/initramfs.js';
import type { Kernel } from '../kernel/types.js';
import type { RunDir } from '../rundir/run-dir.js';
import type { Slots } from '../util/limiter.js';
import type { BootOptions } from '../vm/boot.js';
import type { Accel } from '../vm/qemu-args.js';
import type { QemuInfo } from '../vm/qemu.js';
import type { Progress } from '../model/progress.js';

export interface GuestContext {
  qemu: QemuInfo;
  accel: { accel: Accel; reason: string };
  kernel: Kernel;
  initramfs: Pick<Initramfs, 'path' | 'preloaded'>;
  boot: BootOptions;
  runDir: RunDir;
  /** The run's notes: what the machine did on the user's behalf (a flake retried, a fallback). */
  notes: string[];
  progress: Progress;
  /** Guests that may run at once (a matrix shares its --jobs across kernels). */
  slots: Slots;
}
