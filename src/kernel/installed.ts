/**
 * Kernels that are not fetched: the one this machine runs (`host`: its image
 * and /lib/modules/<release>/build) and one the user built (`local:<bzImage>
 * [,<tree>]`). Nothing is copied; the guest boots the image where it is.
 */
import { constants } from 'node:fs';
import { access, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { release as osRelease } from 'node:os';
import { MmaplabError } from '../util/errors.js';
import { exists } from '../util/fsx.js';
import { archOfConfig } from './arch.js';
import type { Kernel } from './types.js';

async function readable(p: string): Promise<boolean> {
  try {
    await access(p, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** The distribution's package names for a release's image and headers, for hints. */
function packages(release: string): { image: string; headers: string } {
  return { image: `linux-image-${release}`, headers: `linux-headers-${release}` };
}

/** Where the running kernel's files are; tests point these at folders of their own. */
export interface HostLayout {
  release: string;
  bootDir: string;
  modulesRoot: string;
}

export async function hostKernel(layout: HostLayout = { release: osRelease(), bootDir: '/boot', modulesRoot: '/lib/modules' }): Promise<Kernel> {
  const { release } = layout;
  const image = join(layout.bootDir, `vmlinuz-${release}`);
  const modulesDir = join(layout.modulesRoot, release);
  const headersDir = join(modulesDir, 'build');
  const pkg = packages(release);
  if (!(await exists(image))) {
    throw new MmaplabError('fetch', `the running kernel's image ${image} is not there`, {
      hint: `install ${pkg.image} (or use a Debian kernel: --kernel debian:<suite>); containers and some VMs boot a kernel that is not on their disk`,
    });
  }
  if (!(await readable(image))) {
    throw new MmaplabError('fetch', `the running kernel's image ${image} is not readable by this user`, {
      hint: `Ubuntu keeps /boot/vmlinuz-* readable by root only: run 'sudo chmod a+r ${image}', or use --kernel debian:<suite>`,
    });
  }
  if (!(await exists(join(headersDir, 'Makefile')))) {
    throw new MmaplabError('fetch', `no headers for the running kernel in ${headersDir}`, { hint: `install ${pkg.headers}` });
  }
  return describeInstalled({ spec: 'host', image, headersDir, release, modulesDirs: [modulesDir] });
}

export async function localKernel(imageArg: string, kdirArg: string | undefined): Promise<Kernel> {
  const image = resolve(imageArg);
  if (!(await readable(image))) throw new MmaplabError('fetch', `local kernel image ${imageArg} is not there or not readable`, { hint: 'give the bzImage your build made, e.g. local:arch/x86/boot/bzImage' });
  // A tree's own bzImage sits at <tree>/arch/x86/boot/bzImage.
  const guess = /\/arch\/x86(?:_64)?\/boot\/bzImage$/.test(image) ? resolve(dirname(image), '../../..') : undefined;
  const kdir = kdirArg ? resolve(kdirArg) : guess;
  if (!kdir) {
    throw new MmaplabError('fetch', `local:${imageArg}: which kernel tree goes with it?`, { hint: `give it as local:${imageArg},<kernel tree or headers directory> (the tree must hold .config and Module.symvers)` });
  }
  if (!(await exists(join(kdir, 'Makefile'))) || !(await exists(join(kdir, '.config')))) {
    throw new MmaplabError('fetch', `${kdir} is not a configured kernel tree (no Makefile or .config)`, { hint: 'build the kernel there first (make olddefconfig bzImage modules), or give its headers directory' });
  }
  if (!(await exists(join(kdir, 'Module.symvers')))) {
    throw new MmaplabError('fetch', `${kdir} has no Module.symvers: external modules cannot be built against it yet`, { hint: "run 'make modules' (or 'make modules_prepare' and a full build) in the tree first" });
  }
  // The tree's release as modules built there will carry it (vermagic); Debian's include/config/kernel.release holds the upstream version instead.
  const uts = /UTS_RELEASE\s+"([^"]+)"/.exec(await readFile(join(kdir, 'include/generated/utsrelease.h'), 'utf8').catch(() => ''))?.[1];
  const imageRelease = await bzImageRelease(image);
  const release = imageRelease ?? uts;
  if (!release) throw new MmaplabError('fetch', `cannot tell the release of ${imageArg} or of the tree ${kdir}`, { hint: "run 'make prepare' in the tree" });
  if (uts && imageRelease && uts !== imageRelease) {
    throw new MmaplabError('fetch', `${imageArg} is kernel ${imageRelease}, but the tree ${kdir} is for ${uts}: a module built there would not load`, { hint: 'give the tree the image was built from' });
  }
  // The guest's virtio modules: in the built tree itself, next to an installed tree's build link, or installed.
  const real = await realpath(kdir);
  const installedBeside = basename(kdir) === 'build' ? [dirname(kdir)] : [];
  return describeInstalled({ spec: `local:${imageArg}${kdirArg ? `,${kdirArg}` : ''}`, image, headersDir: real, release, modulesDirs: [real, ...installedBeside, join('/lib/modules', release)] });
}

/** The release a bzImage announces in its setup header (the kernel_version string), if it is one. */
export async function bzImageRelease(path: string): Promise<string | undefined> {
  const head = await readFile(path).then((b) => b.subarray(0, 0x8000)).catch(() => undefined);
  if (!head || head.length < 0x210 || head.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  const at = 0x200 + head.readUInt16LE(0x20e);
  const end = head.indexOf(0, at);
  if (at >= head.length || end < 0) return undefined;
  return head.toString('latin1', at, end).split(' ')[0] || undefined;
}

async function hasModules(dir: string): Promise<boolean> {
  if (await exists(join(dir, 'modules.builtin'))) return true;
  try {
    const top = await readdir(dir);
    return top.includes('kernel') || top.includes('drivers');
  } catch {
    return false;
  }
}

async function describeInstalled(p: { spec: string; image: string; headersDir: string; release: string; modulesDirs: string[] }): Promise<Kernel> {
  const config = (await exists(join(p.headersDir, '.config'))) ? join(p.headersDir, '.config') : join(dirname(p.image), `config-${p.release}`);
  const configText = await readFile(config, 'utf8').catch(() => '');
  let modulesDir: string | undefined;
  for (const d of p.modulesDirs) {
    if (await hasModules(d)) {
      modulesDir = d;
      break;
    }
  }
  const st = await stat(p.image);
  const systemMap = join(dirname(p.image), `System.map-${p.release}`);
  return {
    spec: p.spec,
    release: p.release,
    // Caches (initramfs, builds) are keyed by this: a rebuilt image is a new kernel.
    packageVersion: `local-${Math.round(st.mtimeMs)}-${st.size}`,
    suite: '',
    flavour: '',
    arch: archOfConfig(configText) ?? 'amd64',
    dir: await realpath(p.headersDir),
    image: p.image,
    config,
    systemMap: (await exists(systemMap)) ? systemMap : (await exists(join(p.headersDir, 'System.map'))) ? join(p.headersDir, 'System.map') : undefined,
    // Where no modules are found, the virtio drivers must be built in (checked against the config when the initramfs is made).
    modulesDir: modulesDir ?? p.modulesDirs[0]!,
    headersDir: p.headersDir,
    compilerText: /^CONFIG_CC_VERSION_TEXT="(.*)"$/m.exec(configText)?.[1] ?? 'unknown',
  };
}
