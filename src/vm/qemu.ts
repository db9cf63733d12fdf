/** Facts about the host's QEMU. */
import { existsSync } from 'node:fs';
import { runChecked } from '../util/exec.js';
import { requireTool } from '../util/tools.js';

export interface QemuInfo {
  binary: string;
  version: string;
  /** qboot skips SeaBIOS: about 0.1-0.2 s less per boot. */
  firmware: string | undefined;
}

const QBOOT = ['/usr/share/qemu/qboot.rom', '/usr/share/qboot/bios.bin'];

export async function qemuInfo(): Promise<QemuInfo> {
  const binary = requireTool('qemu-system-x86_64');
  const r = await runChecked('missing-tool', 'qemu-system-x86_64 --version', binary, ['--version']);
  const version = /version\s+(\S+)/.exec(r.stdout)?.[1] ?? 'unknown';
  return { binary, version, firmware: QBOOT.find((p) => existsSync(p)) };
}
