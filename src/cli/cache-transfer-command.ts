/**
 * `mmaplab kernels export | import`: a cache's kernels and build roots moved
 * to another machine, for grades that must be made again on exactly the
 * kernel they recorded (debian:<suite>@<version>) where the archive no longer
 * serves it, or offline.
 */
import { Option, type Command } from 'commander';
import { resolve } from 'node:path';
import { cacheRoot } from '../util/paths.js';
import { archOption, flavourOption, usage, valueError } from './options.js';
import type { Arch } from '../kernel/arch.js';
import { archAndFlavour } from '../kernel/spec.js';

export function addCacheTransfer(kernels: Command): void {
  kernels
    .command('export')
    .description("write the cached kernels, their build roots, initramfs and snapshots to one .tar.gz, for another machine's cache")
    .argument('<file>', 'the archive to write, e.g. mmaplab-kernels.tar.gz')
    .argument('[spec...]', 'only these kernels (debian:<suite> or debian:<suite>@<version>; fetched first if not cached), with their build roots; default: every cached kernel')
    .addOption(archOption()).addOption(flavourOption(' of the specs'))
    .addOption(new Option('--archive-uri <uri>', "Debian archive, for a spec not cached yet (default: from this host's apt sources)").env('MMAPLAB_DEBIAN_ARCHIVE'))
    .addOption(new Option('--security-uri <uri>', "Debian security archive (default: from this host's apt sources)").env('MMAPLAB_DEBIAN_SECURITY_ARCHIVE'))
    .action(async (file: string, specs: string[], o: { flavour?: string; arch?: Arch; archiveUri?: string; securityUri?: string }) => {
      const { exportCache } = await import('../commands/cache-transfer.js');
      const { acquireKernel, parseKernelSpec } = await import('../kernel/index.js');
      const kernels = [];
      for (const s of specs) {
        let spec;
        try {
          const af = archAndFlavour(o.arch, o.flavour);
          spec = parseKernelSpec(s, af.flavour, af.arch);
        } catch (e) {
          throw usage(valueError(e));
        }
        if (spec.kind !== 'debian') throw usage(`kernels export takes Debian kernels (debian:<suite>), not '${s}'`);
        kernels.push(await acquireKernel(spec, { cacheDir: cacheRoot(), archiveUri: o.archiveUri, securityUri: o.securityUri, refresh: false }));
      }
      const r = await exportCache(cacheRoot(), resolve(file), specs.length ? kernels : undefined);
      process.stdout.write(`${r.file}: ${r.kernels.join(', ')} (${r.files} files, ${(r.bytes / 2 ** 20).toFixed(1)} MiB)\n`);
    });
  kernels
    .command('import')
    .description('add what an archive `kernels export` wrote to this cache (what is here already is kept; a snapshot restores where QEMU is the same)')
    .argument('<file>', 'the archive')
    .action(async (file: string) => {
      const { importCache } = await import('../commands/cache-transfer.js');
      const r = await importCache(cacheRoot(), resolve(file));
      process.stdout.write(`imported: ${r.kernels.join(', ') || 'none'}${r.snapshots.length ? `; snapshots: ${r.snapshots.join(', ')}` : ''}${r.kept.length ? `; already cached, kept: ${r.kept.join(', ')}` : ''}\n`);
    });
}
