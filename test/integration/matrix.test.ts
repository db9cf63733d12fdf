/**
 * The kernel matrix for real: Debian's 5.10 (bullseye, built in a gcc-10 build
 * root), 6.1 (bookworm, the host's gcc-12), 6.12 (bookworm-backports) and 7.2
 * (sid, a gcc-16 build root), fetched, built, booted in parallel guests; the
 * outputs CI reads (JSON, JUnit, GitHub's step summary and annotations); merge;
 * local: kernels; the kernel cache commands.
 */
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MatrixReport, RunReport } from '../../src/model/report.js';
import { cacheRoot } from '../../src/util/paths.js';
import { qemuProcesses, runCli } from './cli.js';
import { parseValidResults } from '../support/schema.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'mmaplab-test-matrix-'));

/** Count elements in JUnit XML: enough structure to check what CI would show. */
function junitCounts(xml: string) {
  return {
    suites: (xml.match(/<testsuite /g) ?? []).length,
    cases: (xml.match(/<testcase /g) ?? []).length,
    failures: (xml.match(/<failure /g) ?? []).length,
    errors: (xml.match(/<error /g) ?? []).length,
  };
}

describe('run on three kernels at once', () => {
  const out = tmp();
  let doc: MatrixReport;

  it('runs the whole grid on 5.10, 6.1 and 6.12 in two guest slots, every outcome as the lab expects', async () => {
    const r = await runCli(['run', '--kernel', 'debian:bullseye', '--kernel', 'debian:bookworm', '--kernel', 'debian:bookworm-backports', '--jobs', '2', '--json', '--junit', join(out, 'junit.xml'), '--output-dir', join(out, 'run')]);
    expect(r.stderr).not.toMatch(/internal error/);
    doc = parseValidResults<MatrixReport>(r.stdout);
    expect(doc.kind).toBe('matrix');
    expect(doc.schemaVersion).toBe(2);
    expect(doc.kernels.map((k) => k.spec)).toEqual(['debian:bullseye', 'debian:bookworm', 'debian:bookworm-backports']);
    const releases = doc.kernels.map((k) => (k.kind === 'run' ? k.report.kernel.release : k.kind));
    expect(releases[0]).toMatch(/^5\.10\./);
    expect(releases[1]).toMatch(/^6\.1\./);
    expect(releases[2]).toMatch(/^6\.12\./);
    for (const k of doc.kernels) {
      if (k.kind !== 'run') throw new Error(`${k.spec}: ${JSON.stringify(k)}`);
      expect(k.report.results).toHaveLength(72);
      expect(k.report.results.filter((x) => !x.matchesExpected).map((x) => `${k.spec} ${x.strategy}/${x.check}`)).toEqual([]);
    }
    // bullseye's kernel was built with gcc-10, which this host lacks: a build root made it.
    const bullseye = doc.kernels[0]!;
    expect(bullseye.kind === 'run' && bullseye.report.module.compiler).toMatch(/^gcc-10 10\..* \(bullseye build root\)$/);
    expect(doc.differences).toEqual([]);
    expect(doc.status).toBe('pass');
    expect(r.exitCode).toBe(0);
    expect(qemuProcesses()).toEqual([]);
  }, 600_000);

  it('writes JUnit with one testcase per kernel x strategy x check, and the matrix and each kernel on disk', () => {
    const xml = readFileSync(join(out, 'junit.xml'), 'utf8');
    expect(junitCounts(xml)).toEqual({ suites: 3, cases: 3 * (1 + 72), failures: 0, errors: 0 });
    expect(xml).toContain('<testcase classname="mmaplab.bookworm.seed" name="private (MAP_PRIVATE)">');
    // The seed's MAP_PRIVATE cell carries the console lines of its check.
    expect(xml).toMatch(/Bus error \(exit status 135, SIGBUS\)/);
    const saved = parseValidResults<MatrixReport>(readFileSync(join(out, 'run', 'results.json'), 'utf8'));
    expect(saved.kernels.map((k) => k.spec)).toEqual(doc.kernels.map((k) => k.spec));
    for (const slug of ['bullseye', 'bookworm', 'bookworm-backports']) expect(existsSync(join(out, 'run', slug, 'console.log'))).toBe(true);
  });

  it('mmaplab parse re-reads the matrix directory, each kernel from its console and records', async () => {
    const r = await runCli(['parse', join(out, 'run'), '--json']);
    expect(r.exitCode).toBe(0);
    const again = parseValidResults<MatrixReport>(r.stdout);
    expect(again.kind).toBe('matrix');
    const cells = (m: MatrixReport) => m.kernels.map((k) => (k.kind === 'run' ? k.report.results.map((x) => `${x.strategy}/${x.check}:${x.outcome.kind}`) : []));
    expect(cells(again)).toEqual(cells(doc));
    expect(again.status).toBe('pass');
  });

  it('merges the kernels\' own results (as separate CI jobs write them) into the same matrix', async () => {
    const files = ['bullseye', 'bookworm', 'bookworm-backports'].map((s) => join(out, 'run', s, 'results.json'));
    const r = await runCli(['merge', ...files, '--json', '--junit', join(out, 'merged.xml')]);
    expect(r.exitCode).toBe(0);
    const merged = parseValidResults<MatrixReport>(r.stdout);
    expect(merged.kernels.map((k) => k.spec)).toEqual(doc.kernels.map((k) => k.spec));
    expect(merged.status).toBe('pass');
    expect(junitCounts(readFileSync(join(out, 'merged.xml'), 'utf8'))).toEqual({ suites: 3, cases: 219, failures: 0, errors: 0 });
    const twice = await runCli(['merge', files[0]!, files[0]!]);
    expect(twice.exitCode).toBe(2);
    expect(twice.stderr).toMatch(/kernel debian:bullseye is in both/);
  });
});

describe('check on kernels before and after the vm_flags change', () => {
  it('passes on 5.10, does not build on 7.2, names the API change, and tells GitHub Actions', async () => {
    const out = tmp();
    const summary = join(out, 'summary.md');
    const r = await runCli(
      ['check', 'test/fixtures/drivers/old-vm-flags', '--kernel', 'debian:bullseye', '--kernel', 'debian:sid', '--json', '--junit', join(out, 'junit.xml'), '--output-dir', join(out, 'check')],
      { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summary },
    );
    const [json, ...annotations] = r.stdout.split(/\n(?=::)/);
    const doc = parseValidResults<MatrixReport>(json!);
    expect(doc.command).toBe('check');
    const [old, sid] = doc.kernels;
    expect(old?.kind === 'check' && old.report.status).toBe('pass');
    if (sid?.kind !== 'check') throw new Error(JSON.stringify(sid));
    expect(sid.report.kernel.release).toMatch(/^7\./);
    const builds = sid.report.items.find((i) => i.id === 'builds');
    expect(builds?.verdict).toBe('fail');
    expect(builds?.apiChanges?.map((a) => a.id)).toEqual(['vm-flags-read-only']);
    expect(doc.differences.map((d) => d.key)).toEqual(expect.arrayContaining(['builds', 'loads']));
    expect(doc.status).toBe('fail');
    expect(r.exitCode).toBe(1);
    expect(annotations.join('\n')).toMatch(/^::error file=test\/fixtures\/drivers\/old-vm-flags\/old_vm_flags\.c,line=22,col=\d+::assignment of read-only member .vm_flags. \(on debian:sid\)$/m);
    const md = readFileSync(summary, 'utf8');
    expect(md).toContain('## mmaplab check: ❌ FAIL');
    expect(md).toMatch(/\| builds \| pass \| ❌ fail \|/);
    const xml = readFileSync(join(out, 'junit.xml'), 'utf8');
    expect(xml).toMatch(/<testcase classname="mmaplab\.sid\.check" name="builds">\s*<failure type="builds"[^>]*>[^<]*vm_flags_set/);
    expect(qemuProcesses()).toEqual([]);
  }, 600_000);

  it('keeps going when a kernel cannot be had, and says which (exit 3)', async () => {
    const r = await runCli(['check', 'test/fixtures/drivers/old-vm-flags', '--kernel', 'debian:bookworm', '--kernel', 'local:/nonexistent/bzImage', '--json']);
    const doc = parseValidResults<MatrixReport>(r.stdout);
    expect(doc.kernels[0]?.kind === 'check' && doc.kernels[0].report.status).toBe('pass');
    expect(doc.kernels[1]).toMatchObject({ spec: 'local:/nonexistent/bzImage', kind: 'error', error: { kind: 'fetch', message: expect.stringMatching(/not there or not readable/) } });
    expect(doc.status).toBe('error');
    expect(r.exitCode).toBe(3);
  }, 300_000);
});

describe('local: and the kernel cache', () => {
  it('boots a kernel given as an image and the headers of an installed tree (local:<bzImage>,<kdir>)', async () => {
    const alias = JSON.parse(readFileSync(join(cacheRoot(), 'kernels/debian/aliases/bookworm_cloud-amd64.json'), 'utf8')) as { release: string };
    const root = join(cacheRoot(), 'kernels/debian', alias.release, 'root');
    const spec = `local:${join(root, 'boot', `vmlinuz-${alias.release}`)},${join(root, 'lib/modules', alias.release, 'build')}`;
    const r = await runCli(['run', '--kernel', spec, '--strategy', 'seed,fault', '--json']);
    const doc = parseValidResults<{ status: string; kernel: { spec: string; release: string }; results: Array<{ matchesExpected: boolean }> }>(r.stdout);
    expect(doc.kernel).toMatchObject({ spec, release: alias.release });
    expect(doc.results).toHaveLength(18);
    expect(doc.status).toBe('pass');
    expect(r.exitCode).toBe(0);
    // The unpacked kernel goes to the cache, never into the tree (Kbuild would take it for the tree's own).
    expect(existsSync(join(root, 'usr/src', `linux-headers-${alias.release}`, 'vmlinux'))).toBe(false);
  }, 300_000);

  it('boots the bzImage when the unpacked kernel does not boot, and keeps doing so', async () => {
    const cache = tmp();
    const alias = JSON.parse(readFileSync(join(cacheRoot(), 'kernels/debian/aliases/bookworm_cloud-amd64.json'), 'utf8')) as { release: string };
    const root = join(cacheRoot(), 'kernels/debian', alias.release, 'root');
    const image = join(root, 'boot', `vmlinuz-${alias.release}`);
    const spec = `local:${image},${join(root, 'lib/modules', alias.release, 'build')}`;
    // A vmlinux that is not a kernel, where mmaplab keeps a local kernel's unpacked image.
    const { statSync, writeFileSync, mkdirSync: mkdir } = await import('node:fs');
    const st = statSync(image);
    mkdir(join(cache, 'vmlinux'), { recursive: true });
    const bad = join(cache, 'vmlinux', `${alias.release}-local-${Math.round(st.mtimeMs)}-${st.size}`);
    writeFileSync(bad, Buffer.alloc(4096));
    const r = await runCli(['run', '--kernel', spec, '--strategy', 'seed', '--check', 'private', '--json'], { MMAPLAB_CACHE_DIR: cache });
    const doc = parseValidResults<{ status: string; machine: { bootImage: string; bootAttempts: number }; notes: string[] }>(r.stdout);
    expect(doc.status).toBe('pass');
    expect(doc.machine).toMatchObject({ bootImage: 'bzimage', bootAttempts: 2 });
    expect(doc.notes).toContainEqual(expect.stringMatching(/the uncompressed kernel \(PVH boot\) did not reach init on boot attempt 1; booted the bzImage instead/));
    expect(existsSync(`${bad}.none`)).toBe(true);
    expect(existsSync(bad)).toBe(false);
    // The snapshot was made from the bzImage; booting again goes straight to the bzImage too.
    const again = parseValidResults<typeof doc>((await runCli(['run', '--kernel', spec, '--strategy', 'seed', '--check', 'private', '--json'], { MMAPLAB_CACHE_DIR: cache })).stdout);
    expect(again.machine).toMatchObject({ bootImage: 'bzimage', snapshot: { use: 'restored' } });
    const booted = parseValidResults<typeof doc>((await runCli(['run', '--kernel', spec, '--strategy', 'seed', '--check', 'private', '--json', '--no-snapshot'], { MMAPLAB_CACHE_DIR: cache })).stdout);
    expect(booted.machine).toMatchObject({ bootImage: 'bzimage', bootAttempts: 1 });
  }, 300_000);

  it('fetches the kernels of a matrix at once into an empty cache; then fetches ahead, lists with sizes, and prunes', async () => {
    const cache = tmp();
    const env = { MMAPLAB_CACHE_DIR: cache };
    // Two kernels downloading in one process at the same moment must not share apt's work area.
    const m = await runCli(['run', '--kernel', 'debian:bookworm', '--kernel', 'debian:bookworm-backports', '--strategy', 'seed', '--check', 'private', '--json'], env);
    const matrix = parseValidResults<MatrixReport>(m.stdout);
    expect(matrix.kernels.map((k) => `${k.spec} ${k.kind === 'error' ? JSON.stringify(k.error) : k.report.status}`)).toEqual(['debian:bookworm pass', 'debian:bookworm-backports pass']);
    const f = await runCli(['kernels', 'fetch', 'debian:bookworm'], env);
    expect(f.exitCode).toBe(0);
    expect(f.stdout).toMatch(/^debian:bookworm: 6\.1\.\S+ \(\S+\), modules built with gcc-12 /m);
    // The run above made its snapshot; another memory size is another snapshot, which fetch makes, so the first run after it only restores.
    expect(f.stdout).toMatch(/; snapshot [0-9a-f]{16} already cached$/m);
    const ahead = await runCli(['kernels', 'fetch', 'debian:bookworm-backports', '--memory', '320'], env);
    expect(ahead.stdout, ahead.stderr).toMatch(/^debian:bookworm-backports: 6\.12\.\S+ .*; snapshot [0-9a-f]{16} made \(boot [\d.]+ s; none was cached\)$/m);
    const first = parseValidResults<RunReport>((await runCli(['run', '--kernel', 'debian:bookworm-backports', '--memory', '320', '--strategy', 'seed', '--check', 'private', '--json'], env)).stdout);
    expect(first.machine.kind !== 'ssh' && first.machine.snapshot).toMatchObject({ use: 'restored' });
    const l = await runCli(['kernels', 'list', '--json'], env);
    const listing = JSON.parse(l.stdout) as { kernels: Array<{ release: string; specs: string[]; bytes: number }>; totalBytes: number };
    expect(listing.kernels.map((k) => k.specs)).toEqual([['debian:bookworm (cloud-amd64)'], ['debian:bookworm-backports (cloud-amd64)']]);
    expect(listing.kernels[0]!.bytes).toBeGreaterThan(50e6);
    // Offline now: a run on the fetched kernel needs no archive at all.
    const offline = await runCli(['run', '--strategy', 'seed', '--check', 'private', '--archive-uri', 'http://127.0.0.1:9/none'], env);
    expect(offline.exitCode).toBe(0);
    const p = await runCli(['kernels', 'prune', 'debian:bookworm'], env);
    expect(p.stdout).toMatch(/^removed kernel 6\.1\./m);
    expect(p.stdout).toMatch(/^removed initramfs /m);
    const after = JSON.parse((await runCli(['kernels', 'list', '--json'], env)).stdout) as { kernels: Array<{ release: string }> };
    expect(after.kernels.map((k) => k.release)).toEqual([expect.stringMatching(/^6\.12\./)]);
  }, 300_000);
});
