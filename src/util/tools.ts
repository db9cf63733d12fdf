/**
 * Host tools mmaplab needs, and the Debian/Ubuntu package that provides each,
 * so a missing one is reported as one actionable line.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { MmaplabError } from './errors.js';
import { systemPackages } from './packages.js';

export const TOOL_PACKAGES: Readonly<Record<string, string>> = {
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-system-i386': 'qemu-system-x86',
  'qemu-system-aarch64': 'qemu-system-arm',
  busybox: 'busybox-static',
  gcc: 'gcc',
  make: 'make',
  'apt-get': 'apt',
  'apt-cache': 'apt',
  'dpkg-deb': 'dpkg',
  xz: 'xz-utils',
  zstd: 'zstd',
  lz4: 'lz4',
  mmdebstrap: 'mmdebstrap',
  unshare: 'util-linux',
  prlimit: 'util-linux',
  bwrap: 'bubblewrap',
  pahole: 'dwarves',
  readelf: 'binutils',
  addr2line: 'binutils',
  bc: 'bc',
  flex: 'flex',
  bison: 'bison',
  perl: 'perl',
  gdb: 'gdb',
};

export function packageFor(tool: string): string | undefined {
  const base = tool.split('/').pop() ?? tool;
  if (/^gcc-\d+$/.test(base)) return base;
  return systemPackages().find((p) => p.probe === base)?.debian ?? TOOL_PACKAGES[base];
}

export function missingToolError(tool: string): MmaplabError {
  const pkg = packageFor(tool);
  return new MmaplabError('missing-tool', `${tool} not found`, {
    hint: pkg ? `install the Debian/Ubuntu package ${pkg} (sudo apt-get install ${pkg}), or run mmaplab setup` : 'install it and retry',
  });
}

/** Find an executable on PATH without running it. */
export function which(tool: string, path = process.env.PATH ?? ''): string | undefined {
  if (tool.includes('/')) return isExecutable(tool) ? tool : undefined;
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, tool);
    if (isExecutable(p)) return p;
  }
  // sbin directories are often missing from a user's PATH.
  for (const dir of ['/usr/sbin', '/sbin']) {
    const p = join(dir, tool);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function requireTool(tool: string): string {
  const p = which(tool);
  if (!p) throw missingToolError(tool);
  return p;
}
