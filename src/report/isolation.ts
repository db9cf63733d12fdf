/** How the driver was built, in one line: what its build could reach. */
import type { BuildIsolation } from '../model/isolation.js';

export function describeIsolation(i: BuildIsolation): string {
  switch (i.kind) {
    case 'sandbox': {
      const l = i.limits;
      const user = i.userNamespace ? 'unprivileged user' : 'root without capabilities';
      return `in a sandbox (${i.tool}: no network; of this machine only the toolchain and the kernel's headers, read-only; as an ${user}; limits ${l.timeS} s, ${l.memoryMb} MiB per process, ${l.outputKb / 1024} MiB of output${l.processes ? `, ${l.processes} processes` : ''})`;
    }
    case 'container':
      return `without a sandbox of its own: the container is the sandbox (${i.setBy}${i.detected ? '' : '; mmaplab sees no sign of a container'})`;
    case 'trusted':
      return `without a sandbox, as you (${i.setBy}: the driver is trusted)`;
    case 'own':
      return "mmaplab's own driver, without a sandbox";
    case 'target':
      return `on ${i.host}, as the SSH user there`;
  }
}
