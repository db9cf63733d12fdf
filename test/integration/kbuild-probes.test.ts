/**
 * The recorded answers to Kbuild's compiler probes change nothing in what is
 * built: the same driver, built by the same make in the same folder with the
 * compiler and with the wrapper, is the same module, byte for byte; and the
 * wrapper answered the probes (the compiler ran fewer times).
 */
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireKernel, parseKernelSpec } from '../../src/kernel/index.js';
import { toolchainFor } from '../../src/kbuild/compiler.js';
import { probeAnswers } from '../../src/kbuild/probe-cache.js';
import { runInRoot } from '../../src/kbuild/build-root.js';
import { buildArchive } from '../../src/machines/setup.js';
import { run } from '../../src/util/exec.js';
import { cacheRoot } from '../../src/util/paths.js';

const scratch = mkdtempSync(join(tmpdir(), 'mmaplab-probes-'));
const cacheDir = mkdtempSync(join(tmpdir(), 'mmaplab-probe-cache-'));
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
  rmSync(cacheDir, { recursive: true, force: true });
});

// 6.1 builds in M= from the kernel's tree; 7.2 (like every kernel from 6.13) from inside M=, in a gcc-16 build root.
describe.each(['debian:bookworm', 'debian:sid'])("Kbuild's compiler probes answered from mmaplab's record, on %s", (spec) => {
  it('build the same module as the compiler answering them itself, with one compiler run fewer per recorded probe', async () => {
    const kernel = await acquireKernel(parseKernelSpec(spec, 'cloud-amd64'), { cacheDir: cacheRoot(), archiveUri: undefined, securityUri: undefined, refresh: false });
    const archive = buildArchive({ archiveUri: undefined, securityUri: undefined });
    const tc = await toolchainFor(kernel, { cacheDir: cacheRoot(), archive: archive.uri, keyring: archive.keyring });
    // As kbuild runs a trusted step: in the build root, the tree's folder (the recorder beside it) and the kernel bound in.
    const step = (argv: string[], tree: string) => (tc.root ? runInRoot(tc.root.dir, [kernel.dir, join(tree, '..'), scratch], argv) : run(argv[0]!, argv.slice(1)));
    // A cache of its own: the record is made here, by this test.
    const probes = await probeAnswers({ kernel, cc: tc.cc, describe: tc.describe, cacheDir, identity: 'test', record: step });
    expect(probes, 'the probe module builds and Kbuild probes the compiler').toBeDefined();
    expect(probes!.probes).toBeGreaterThan(10);
    // The compiler behind a shim that counts its runs, and the recorded answers in front of the shim.
    const counted = join(scratch, 'counted');
    const shim = join(scratch, 'cc-shim');
    writeFileSync(shim, `#!/bin/sh\necho run >> '${counted}'\nexec '${tc.cc}' "$@"\n`);
    const wrapper = join(scratch, 'cc-answered');
    writeFileSync(wrapper, readFileSync(probes!.wrapper, 'utf8').replace(/^exec .*$/m, `exec '${shim}' "$@"`));
    for (const f of [shim, wrapper]) chmodSync(f, 0o755);
    const tree = join(scratch, `misc-${spec.replace(/\W/g, '-')}`);
    const build = async (cc: string) => {
      rmSync(tree, { recursive: true, force: true });
      rmSync(counted, { force: true });
      cpSync('test/fixtures/drivers/misc-device', tree, { recursive: true });
      writeFileSync(join(tree, 'Kbuild'), 'obj-m := miscmap.o\n');
      const r = await step(['make', '-C', kernel.headersDir, `M=${tree}`, `CC=${cc}`, 'modules'], tree);
      expect(r.ok, r.all.slice(-2000)).toBe(true);
      return { ko: createHash('sha256').update(readFileSync(join(tree, 'miscmap.ko'))).digest('hex'), runs: readFileSync(counted, 'utf8').split('\n').length - 1 };
    };
    const plain = await build(shim);
    const answered = await build(wrapper);
    expect(answered.ko).toBe(plain.ko);
    // Every recorded probe was answered without the compiler.
    expect(plain.runs - answered.runs).toBe(probes!.probes);
  });
});
