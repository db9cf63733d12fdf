/**
 * How a driver was built, as the report and JSON say it: in a sandbox, or
 * without one and why. A claim about what the submission's build could reach.
 */

/** The limits a sandboxed build ran under. */
export interface BuildLimits {
  /** Wall-clock time, then every process of the build is killed. */
  timeS: number;
  /** Address space per process (RLIMIT_AS). */
  memoryMb: number;
  /** Largest file it may write (RLIMIT_FSIZE). */
  fileMb: number;
  /** All it may write, its build folder and /tmp together; past it the build is stopped. */
  diskMb: number;
  /** What mmaplab keeps of its output; past this the build is stopped. */
  outputKb: number;
  /** Processes of the building user (RLIMIT_NPROC); undefined where the kernel exempts the user (root). */
  processes: number | undefined;
}

export type BuildIsolation =
  /** bubblewrap: no network, the host read-only and mostly hidden, only the build folder writable. */
  | { kind: 'sandbox'; tool: string; userNamespace: boolean; limits: BuildLimits }
  /** The user said the container mmaplab runs in is the sandbox (MMAPLAB_SANDBOX=container). */
  | { kind: 'container'; setBy: string; detected: boolean }
  /** The user trusts the driver (--trust-driver, MMAPLAB_TRUST_DRIVER=1): built as the user, unconfined. */
  | { kind: 'trusted'; setBy: string }
  /** mmaplab's own bundled driver. */
  | { kind: 'own' }
  /** Built on an SSH target, as its user there. */
  | { kind: 'target'; host: string };
