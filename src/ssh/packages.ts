/**
 * Which package gives a target what a module build needs, by its
 * /etc/os-release: the error for missing headers names the package to install
 * on that distribution, not Debian's.
 */

export interface OsRelease {
  id: string;
  idLike: string[];
  versionId: string;
  prettyName: string;
}

export function parseOsRelease(text: string): OsRelease {
  const v: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) v[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, '$2');
  }
  return { id: v.ID ?? 'linux', idLike: (v.ID_LIKE ?? '').split(/\s+/).filter(Boolean), versionId: v.VERSION_ID ?? '', prettyName: v.PRETTY_NAME ?? v.NAME ?? 'Linux' };
}

type Family = 'debian' | 'fedora' | 'suse' | 'arch' | 'alpine' | 'other';

function family(os: OsRelease): Family {
  for (const id of [os.id, ...os.idLike]) {
    if (id === 'debian' || id === 'ubuntu') return 'debian';
    if (id === 'fedora' || id === 'rhel' || id === 'centos') return 'fedora';
    if (id.startsWith('opensuse') || id === 'suse' || id === 'sles') return 'suse';
    if (id === 'arch') return 'arch';
    if (id === 'alpine') return 'alpine';
  }
  return 'other';
}

/** The command that installs the running kernel's headers (/lib/modules/<release>/build). */
export function headersInstall(os: OsRelease, release: string): string {
  switch (family(os)) {
    case 'debian':
      return `sudo apt-get install linux-headers-${release}`;
    case 'fedora':
      return `sudo dnf install kernel-devel-${release}`;
    case 'suse':
      return 'sudo zypper install kernel-default-devel (matching the running kernel)';
    case 'arch':
      return 'sudo pacman -S linux-headers (matching the running kernel)';
    case 'alpine':
      return `apk add linux-${release.split('-').pop() ?? 'lts'}-dev`;
    default:
      return `install the kernel headers for ${release} from your distribution`;
  }
}

/** The command that installs a compiler and make. */
export function toolchainInstall(os: OsRelease): string {
  switch (family(os)) {
    case 'debian':
      return 'sudo apt-get install build-essential';
    case 'fedora':
      return 'sudo dnf install gcc make';
    case 'suse':
      return 'sudo zypper install gcc make';
    case 'arch':
      return 'sudo pacman -S base-devel';
    case 'alpine':
      return 'apk add build-base';
    default:
      return 'install gcc and make';
  }
}
