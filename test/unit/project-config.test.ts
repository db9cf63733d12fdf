/**
 * The project config file: each format found from the current directory up,
 * read strictly (an unknown key or a wrong value is one usage error naming
 * the file and the key), paths relative to the file; and its precedence:
 * command line > environment > config file > built-in default, as the real
 * program parses a command line (the command's action replaced, no guest).
 */
import type { Command } from 'commander';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { effectiveSettings } from '../../src/cli/config-command.js';
import { buildProgram } from '../../src/cli/program.js';
import { findProjectConfig } from '../../src/cli/project-config.js';
import { requestedConfinement } from '../../src/sandbox/policy.js';

/** A fresh folder with these files (paths may have folders). */
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'mmaplab-config-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

/** The usage error findProjectConfig raises, as main prints it. */
async function usageError(p: Promise<unknown>): Promise<string> {
  const e = (await p.then(
    () => undefined,
    (err: unknown) => err,
  )) as { code?: string; exitCode?: number; message?: string } | undefined;
  expect(e?.code).toBe('mmaplab.usage');
  expect(e?.exitCode).toBe(2);
  return e?.message ?? '';
}

/** The command a command line names, parsed by the real program from `cwd` but not run. */
async function parsed(cwd: string, argv: string[]): Promise<Command> {
  const program = buildProgram({ cwd });
  let target: Command = program;
  for (const w of argv) target = target.commands.find((c) => c.name() === w) ?? target;
  let got: Command | undefined;
  target.action((...args: unknown[]) => {
    got = args[args.length - 1] as Command;
  });
  await program.parseAsync(argv, { from: 'user' });
  return got!;
}

const opts = async (cwd: string, argv: string[]) => (await parsed(cwd, argv)).opts<Record<string, unknown>>();

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

describe('finding the project config file', () => {
  it.each([
    ['mmaplab.config.json', '{"timeout": 42}'],
    ['mmaplab.config.yaml', 'timeout: 42\n'],
    ['mmaplab.config.yml', 'timeout: 42\n'],
    ['.mmaplabrc', 'timeout: 42\n'],
    ['.mmaplabrc.json', '{"timeout": 42}'],
    ['.mmaplabrc.yaml', 'timeout: 42\n'],
    ['mmaplab.config.mjs', 'export default { timeout: 40 + 2 };\n'],
    ['package.json', '{"name": "lab", "mmaplab": {"timeout": 42}}'],
  ])('reads %s', async (name, text) => {
    const dir = project({ [name]: text });
    const found = await findProjectConfig({ cwd: dir });
    expect(found.config).toEqual({ file: join(dir, name), settings: { timeout: 42 } });
  });

  it('reads an ESM mmaplab.config.js in a "type": "module" package, whose package.json has no mmaplab key', async () => {
    const dir = project({ 'package.json': '{"type": "module"}', 'mmaplab.config.js': 'export default { kernels: ["debian:trixie", "all"] };\n' });
    expect((await findProjectConfig({ cwd: dir })).config?.settings).toEqual({ kernels: ['debian:trixie', 'all'] });
  });

  it('searches upwards and stops at the first found, the nearest', async () => {
    const dir = project({ 'mmaplab.config.yaml': 'timeout: 1\n', 'lab/mmaplab.config.json': '{"timeout": 2}', 'lab/src/deep/.keep': '' });
    expect((await findProjectConfig({ cwd: join(dir, 'lab/src/deep') })).config).toEqual({ file: join(dir, 'lab/mmaplab.config.json'), settings: { timeout: 2 } });
  });

  it('--config names the file; --no-config reads none', async () => {
    const dir = project({ 'mmaplab.config.yaml': 'timeout: 1\n', 'ci/settings.yaml': 'timeout: 3\n' });
    expect((await findProjectConfig({ cwd: dir, explicit: 'ci/settings.yaml' })).config?.settings).toEqual({ timeout: 3 });
    expect(await findProjectConfig({ cwd: dir, explicit: false })).toEqual({ none: { noConfig: true }, skipped: [] });
    expect(await usageError(findProjectConfig({ cwd: dir, explicit: 'nope.yaml' }))).toBe('--config nope.yaml: no such file');
  });

  it('resolves the rubric and the skeleton against the file\'s directory, not the current one', async () => {
    const dir = project({ 'mmaplab.config.yaml': 'rubric: grading/rubric.yaml\ngrade:\n  skeleton: ../skeleton\n', 'sub/.keep': '' });
    const found = await findProjectConfig({ cwd: join(dir, 'sub') });
    expect(found.config?.settings).toEqual({ rubric: join(dir, 'grading/rubric.yaml'), grade: { skeleton: join(dir, '..', 'skeleton') } });
  });

  it('takes every setting the README lists', async () => {
    const dir = project({
      'mmaplab.config.yaml': [
        'kernels: debian:trixie',
        'timeout: 300',
        'buildTimeout: 600',
        'memory: 512',
        'jobs: 4',
        'flavour: amd64',
        'accel: tcg',
        'archiveUri: http://mirror.example/debian',
        'securityUri: http://mirror.example/debian-security',
        'snapshot: false',
        'trustDriver: false',
        'rubric: rubric.yaml',
        'grade: { kernel: "debian:bookworm@6.1.192-3", timeout: 30, buildTimeout: 60, memory: 256, jobs: 2, rubric: r2.yaml, skeleton: skel }',
        '',
      ].join('\n'),
    });
    const s = (await findProjectConfig({ cwd: dir })).config?.settings;
    expect(s).toMatchObject({ kernels: ['debian:trixie'], timeout: 300, memory: 512, accel: 'tcg', snapshot: false, rubric: join(dir, 'rubric.yaml') });
    expect(s?.grade).toEqual({ kernel: 'debian:bookworm@6.1.192-3', timeout: 30, buildTimeout: 60, memory: 256, jobs: 2, rubric: join(dir, 'r2.yaml'), skeleton: join(dir, 'skel') });
  });
});

describe('a wrong config file is one usage error naming the file and the key', () => {
  it.each([
    ['timout: 60\n', /^mmaplab\.config\.yaml: unknown setting 'timout' \(known: kernels, timeout, /],
    ['timeout: 5000\n', /^mmaplab\.config\.yaml: timeout must be a whole number from 1 to 3600$/],
    ['timeout: "60"\n', /^mmaplab\.config\.yaml: timeout must be a whole number from 1 to 3600$/],
    ['memory: 64\n', /^mmaplab\.config\.yaml: memory must be a whole number from 96 to 16384 \(the lab's kernels do not boot in less than 96 MiB\)$/],
    ['snapshot: "no"\n', /^mmaplab\.config\.yaml: snapshot must be true or false$/],
    ['accel: hvf\n', /^mmaplab\.config\.yaml: accel must be one of auto, kvm, tcg$/],
    ['kernels: [debian:jessie]\n', /^mmaplab\.config\.yaml: kernels: unknown Debian suite 'jessie' in 'debian:jessie'/],
    ['kernels: []\n', /^mmaplab\.config\.yaml: kernels must be a kernel spec or a list of them$/],
    ['grade: { kernel: all }\n', /^mmaplab\.config\.yaml: grade\.kernel: unknown kernel spec 'all'/],
    ['grade: { trustDriver: true }\n', /^mmaplab\.config\.yaml: unknown setting 'grade\.trustDriver' \(known: grade\.kernel, /],
    ['- timeout\n', /^mmaplab\.config\.yaml: the file must hold an object of settings/],
    ['timeout: [\n', /^mmaplab\.config\.yaml: cannot be read: /],
  ])('%j', async (text, message) => {
    const dir = project({ 'mmaplab.config.yaml': text });
    expect(await usageError(findProjectConfig({ cwd: dir }))).toMatch(message);
  });

  it("names package.json's keys under mmaplab", async () => {
    const dir = project({ 'package.json': '{"mmaplab": {"jobs": 0}}' });
    expect(await usageError(findProjectConfig({ cwd: dir }))).toBe('package.json: mmaplab.jobs must be a whole number from 1 to 64');
  });

  it('is exit 2 from the CLI, before anything runs', async () => {
    const dir = project({ 'mmaplab.config.json': '{"buildTimeout": 0}' });
    expect(await usageError(parsed(dir, ['run']))).toBe('mmaplab.config.json: buildTimeout must be a whole number from 1 to 7200');
  });
});

describe('config precedence: command line > environment > config file > default', () => {
  const dir = project({ 'mmaplab.config.yaml': 'timeout: 50\nmemory: 512\nkernels: [debian:trixie, debian:sid]\narchiveUri: http://from-config/debian\nsnapshot: false\n' });

  it('the config file beats the default; the default stays where the file says nothing', async () => {
    const o = await opts(dir, ['run']);
    expect(o).toMatchObject({ timeout: 50, memory: 512, kernel: ['debian:trixie', 'debian:sid'], snapshot: false, buildTimeout: 300, accel: 'auto' });
  });

  it('a flag beats the config file', async () => {
    const o = await opts(dir, ['run', '--timeout', '7', '--kernel', 'debian:bullseye', '--snapshot']);
    expect(o).toMatchObject({ timeout: 7, memory: 512, kernel: ['debian:bullseye'], snapshot: true });
    expect((await opts(dir, ['run', '--no-snapshot'])).snapshot).toBe(false);
  });

  it('an environment variable beats the config file, and a flag beats both', async () => {
    vi.stubEnv('MMAPLAB_DEBIAN_ARCHIVE', 'http://from-env/debian');
    expect((await opts(dir, ['check', '/nonexistent/driver'])).archiveUri).toBe('http://from-env/debian');
    expect((await opts(dir, ['check', '/nonexistent/driver', '--archive-uri', 'http://from-flag/debian'])).archiveUri).toBe('http://from-flag/debian');
    vi.unstubAllEnvs();
    expect((await opts(dir, ['check', '/nonexistent/driver'])).archiveUri).toBe('http://from-config/debian');
  });

  it('says where each value came from', async () => {
    vi.stubEnv('MMAPLAB_DEBIAN_ARCHIVE', 'http://from-env/debian');
    const e = effectiveSettings(await parsed(dir, ['run', '--memory', '1024']));
    expect(e.configFile).toBe(join(dir, 'mmaplab.config.yaml'));
    expect(e.settings.timeout).toEqual({ value: 50, from: join(dir, 'mmaplab.config.yaml') });
    expect(e.settings.memory).toEqual({ value: 1024, from: 'command line' });
    expect(e.settings.archiveUri).toEqual({ value: 'http://from-env/debian', from: 'environment: MMAPLAB_DEBIAN_ARCHIVE' });
    expect(e.settings.buildTimeout).toEqual({ value: 300, from: 'default' });
  });

  it('--no-config and --config', async () => {
    expect((await opts(dir, ['run', '--no-config'])).timeout).toBe(120);
    const other = project({ 'other.json': '{"timeout": 9}' });
    expect((await opts(dir, ['run', '--config', join(other, 'other.json')])).timeout).toBe(9);
  });

  it('kernels are not applied with --target (it runs its own kernel)', async () => {
    expect((await opts(dir, ['run', '--target', 'ssh://lab@box'])).kernel).toEqual([]);
  });

  it('kernels fetch takes the flavour, archive, accelerator and memory', async () => {
    expect(await opts(dir, ['kernels', 'fetch', 'debian:sid'])).toMatchObject({ memory: 512, archiveUri: 'http://from-config/debian', snapshot: true });
  });
});

describe("the rubric, grade's section, and trust", () => {
  it("the file's rubric is check --gradescope's and grade's; check without --gradescope takes none", async () => {
    const dir = project({ 'mmaplab.config.yaml': 'rubric: rubric.yaml\ntimeout: 90\ngrade:\n  timeout: 30\n  skeleton: skel\n' });
    expect((await opts(dir, ['check', '/nonexistent/driver', '--gradescope', 'r.json'])).rubric).toBe(join(dir, 'rubric.yaml'));
    expect((await opts(dir, ['check', '/nonexistent/driver'])).rubric).toBeUndefined();
    expect(await opts(dir, ['grade', '/nonexistent/class'])).toMatchObject({ rubric: join(dir, 'rubric.yaml'), timeout: 30, skeleton: join(dir, 'skel'), kernel: 'debian:bookworm' });
    expect((await opts(dir, ['grade', '/nonexistent/class', '--rubric', 'mine.yaml'])).rubric).toBe('mine.yaml');
  });

  it("grade takes the file's kernels when they name one, and asks for grade.kernel when they name several", async () => {
    expect((await opts(project({ 'mmaplab.config.yaml': 'kernels: debian:trixie\n' }), ['grade', '/nonexistent/class'])).kernel).toBe('debian:trixie');
    const several = project({ 'mmaplab.config.yaml': 'kernels: [debian:trixie, debian:sid]\n' });
    expect(await usageError(parsed(several, ['grade', '/nonexistent/class']))).toBe('mmaplab.config.yaml: kernels names several kernels and grade checks every submission on one: set grade.kernel');
  });

  it("the project's trustDriver builds unconfined and the report names the file; MMAPLAB_TRUST_DRIVER beats it", async () => {
    const dir = project({ 'mmaplab.config.json': '{"trustDriver": true}', 'driver/lab.c': '' });
    const o = await opts(dir, ['check', join(dir, 'driver')]);
    expect(o).toMatchObject({ trustDriver: true, trustedBy: `trustDriver in ${join(dir, 'mmaplab.config.json')}` });
    expect(requestedConfinement({ trustDriver: true, trustedBy: o.trustedBy as string, env: {} })).toEqual({ kind: 'trusted', setBy: `trustDriver in ${join(dir, 'mmaplab.config.json')}` });
    vi.stubEnv('MMAPLAB_TRUST_DRIVER', '0');
    expect((await opts(dir, ['check', join(dir, 'driver')])).trustDriver).toBeUndefined();
  });
});

describe('a config file in the code being checked is never read', () => {
  /** A submission that would turn its own sandbox off, score itself, and run code when its config is imported. */
  const submission = () =>
    project({
      'sub/mmaplab.config.json': '{"trustDriver": true, "rubric": "free-points.yaml", "timeout": 3600}',
      'sub/mmaplab.config.mjs': `import { writeFileSync } from 'node:fs';\nwriteFileSync(new URL('./IMPORTED', import.meta.url), '');\nexport default { trustDriver: true };\n`,
      'sub/lab.c': '',
      'elsewhere/.keep': '',
    });

  it('checked from a different directory: not read, the build stays sandboxed', async () => {
    const dir = submission();
    const cmd = await parsed(join(dir, 'elsewhere'), ['check', join(dir, 'sub'), '--gradescope', 'r.json']);
    const o = cmd.opts<Record<string, unknown>>();
    expect([o.timeout, o.trustDriver, o.rubric]).toEqual([120, undefined, undefined]);
    expect(effectiveSettings(cmd).build).toEqual({ kind: 'sandbox' });
  });

  it('checked from inside it: the search starts above it, says what it left unread, imports none of it', async () => {
    const dir = submission();
    const notes = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    for (const argv of [['check', '.'], ['check', 'lab.c'], ['shell', '.'], ['run', '--module-dir', '.']]) {
      const cmd = await parsed(join(dir, 'sub'), argv);
      expect(cmd.opts().trustDriver, argv.join(' ')).toBeUndefined();
      expect(effectiveSettings(cmd).configFile).toBeNull();
    }
    expect(existsSync(join(dir, 'sub', 'IMPORTED'))).toBe(false);
    expect(String(notes.mock.calls[0]?.[0])).toBe('mmaplab: note: not reading mmaplab.config.json: it is inside the code being checked; project settings are read from where mmaplab runs, above that code (or name one with --config)\n');
  });

  it("grade: nothing in the class folder is read, the teacher's file above it is", async () => {
    const dir = project({ 'mmaplab.config.yaml': 'grade: { timeout: 45 }\n', 'class/alice/mmaplab.config.yaml': 'grade: { timeout: 3600 }\n', 'class/mmaplab.config.yaml': 'grade: { timeout: 3000 }\n' });
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect((await opts(join(dir, 'class', 'alice'), ['grade', join(dir, 'class')])).timeout).toBe(45);
    expect((await opts(dir, ['grade', 'class'])).timeout).toBe(45);
  });
});
