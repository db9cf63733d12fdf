import { it } from 'vitest';
import { existsSync, writeFileSync, rmSync } from 'node:fs';
import { acquireFor } from '../../src/commands/session.js';
import { qemuInfo } from '../../src/vm/qemu.js';
import { cacheRoot } from '../../src/util/paths.js';
import { bootTarget, ensureTargetImage } from '../support/ssh-target.js';

it('holds a target', async () => {
  rmSync('/tmp/tgt/stop', { force: true });
  const kernel = await acquireFor({ kernel: 'debian:bookworm', flavour: 'cloud-amd64', accel: 'tcg', timeoutS: 120, memoryMb: 512, outputDir: undefined, archiveUri: undefined, securityUri: undefined, refreshKernel: false }, cacheRoot(), () => {});
  const image = await ensureTargetImage(kernel, cacheRoot());
  const t = await bootTarget(await qemuInfo(), 'tcg', kernel, image, '/tmp/tgt/console.log');
  writeFileSync('/tmp/tgt/known_hosts', `${t.knownHostsLine}\n`);
  writeFileSync('/tmp/tgt/info.json', JSON.stringify({ port: t.port, identity: image.identity, url: t.url() }));
  while (!existsSync('/tmp/tgt/stop')) await new Promise((r) => setTimeout(r, 500));
  await t.vm.powerOff(10000);
}, 3600_000);
