/**
 * The project's settings put into a command's options, after commander has
 * read the command line and the environment: a value is taken from the file
 * only where commander still holds the built-in default. So a flag beats an
 * environment variable, which beats the file, which beats the default.
 */
import type { Command } from 'commander';
import { shownPath, findProjectConfig, type ConfigLookup, type ProjectSettings } from './project-config.js';
import { usage } from './options.js';

/** The commands that take settings from the file. */
export const CONFIGURED_COMMANDS = ['run', 'check', 'shell', 'grade', 'kernels fetch'] as const;

/** `kernels fetch`, `check`: the command as typed after mmaplab. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

const GUEST = ['timeout', 'buildTimeout', 'memory', 'jobs', 'flavour', 'accel', 'archiveUri', 'securityUri'] as const;

function pick<T extends object>(from: T | undefined, keys: ReadonlyArray<keyof T>): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, from?.[k]]));
}

/** grade checks on one kernel: the grade section's, or the file's kernels when they name exactly one. */
function gradeKernel(s: ProjectSettings, where: string): string | undefined {
  if (s.grade?.kernel !== undefined || s.kernels === undefined) return s.grade?.kernel;
  if (s.kernels.length === 1 && s.kernels[0] !== 'all') return s.kernels[0];
  throw usage(`${where}: kernels names several kernels and grade checks every submission on one: set grade.kernel`);
}

/** The option values (by attribute name) the file gives this command; undefined: the file says nothing. */
export function settingsFor(path: string, s: ProjectSettings, o: Record<string, unknown>, where: string): Record<string, unknown> {
  switch (path) {
    case 'run':
    case 'check':
    case 'shell':
      return {
        ...pick(s, GUEST),
        snapshot: s.snapshot,
        trustDriver: s.trustDriver,
        // A target runs its own kernel; the rubric is check's only with --gradescope.
        kernel: o.target ? undefined : s.kernels,
        rubric: o.gradescope ? s.rubric : undefined,
      };
    case 'grade': {
      const section = Object.fromEntries(Object.entries(pick(s.grade, ['timeout', 'buildTimeout', 'memory', 'jobs', 'skeleton'])).filter(([, v]) => v !== undefined));
      return { ...pick(s, GUEST), ...section, kernel: gradeKernel(s, where), rubric: s.grade?.rubric ?? s.rubric };
    }
    case 'kernels fetch':
      return pick(s, ['flavour', 'accel', 'memory', 'archiveUri', 'securityUri']);
    default:
      return {};
  }
}

/** The code a command checks, whose folder the file is never read from. */
function checkedPath(path: string, cmd: Command): string | undefined {
  if (path === 'run') return cmd.opts<{ moduleDir?: string }>().moduleDir;
  if (path === 'check' || path === 'shell' || path === 'grade') return cmd.processedArgs[0] as string | undefined;
  return undefined;
}

const lookups = new WeakMap<Command, ConfigLookup>();

/** What applyProjectConfig found for this command (for `mmaplab config`). */
export function lookupOf(cmd: Command): ConfigLookup | undefined {
  return lookups.get(cmd);
}

/**
 * The preAction hook: the command's project config found and its values put
 * where commander still has the default. trustDriver is taken only when
 * MMAPLAB_TRUST_DRIVER says nothing, and the report names the file.
 */
export async function applyProjectConfig(cmd: Command, cwd: string, note: (line: string) => void): Promise<void> {
  const path = commandPath(cmd);
  if (!(CONFIGURED_COMMANDS as readonly string[]).includes(path)) return;
  const o = cmd.opts<Record<string, unknown>>();
  const lookup = await findProjectConfig({ cwd, explicit: o.config as string | false | undefined, checked: checkedPath(path, cmd) });
  lookups.set(cmd, lookup);
  const shown = (f: string) => shownPath(f, cwd);
  for (const f of lookup.skipped) note(`mmaplab: note: not reading ${shown(f)}: it is inside the code being checked; project settings are read from where mmaplab runs, above that code (or name one with --config)`);
  if (o.verbose) note(lookup.config ? `mmaplab: settings from ${shown(lookup.config.file)}` : lookup.none && 'noConfig' in lookup.none ? 'mmaplab: no project settings (--no-config)' : `mmaplab: no project config file from ${lookup.none?.searchedFrom ?? cwd} up`);
  if (!lookup.config) return;
  const where = shown(lookup.config.file);
  for (const [attr, value] of Object.entries(settingsFor(path, lookup.config.settings, o, where))) {
    if (value === undefined || !cmd.options.some((opt) => opt.attributeName() === attr)) continue;
    const source = cmd.getOptionValueSource(attr);
    if (source !== undefined && source !== 'default') continue;
    if (attr === 'trustDriver') {
      // The environment's word beats the file's, either way.
      if (process.env.MMAPLAB_TRUST_DRIVER !== undefined) continue;
      if (value === true) cmd.setOptionValue('trustedBy', `trustDriver in ${lookup.config.file}`);
    }
    cmd.setOptionValueWithSource(attr, value, 'config');
  }
}
