/**
 * The project's settings file: mmaplab.config.{json,yaml,yml,js,mjs},
 * .mmaplabrc(.json|.yaml|.yml) or a "mmaplab" key in package.json, found by
 * lilconfig from the directory mmaplab runs in upwards, the first one found
 * being the one read. It is read strictly (an unknown key or a wrong value is
 * a usage error naming the file and the key), with the very parsers the
 * flags use.
 *
 * The file is the project's, never the code mmaplab checks: no directory
 * inside the driver (or the class folder) being checked is searched, so a
 * submission that brings its own mmaplab.config cannot set its rubric or
 * turn its sandbox off.
 */
import { CommanderError, InvalidArgumentError } from 'commander';
import { defaultLoaders, lilconfig, type LilconfigResult, type Loader } from 'lilconfig';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ACCELS, kernelListValue, kernelSpecValue, parseBuildTimeout, parseJobs, parseMemory, parseTimeout, usage } from './options.js';

/** Where the file is looked for in each directory, in this order. */
export const SEARCH_PLACES = [
  'package.json',
  'mmaplab.config.json',
  'mmaplab.config.yaml',
  'mmaplab.config.yml',
  'mmaplab.config.js',
  'mmaplab.config.mjs',
  '.mmaplabrc',
  '.mmaplabrc.json',
  '.mmaplabrc.yaml',
  '.mmaplabrc.yml',
];

export interface GradeSettings {
  kernel?: string;
  rubric?: string;
  skeleton?: string;
  timeout?: number;
  buildTimeout?: number;
  memory?: number;
  jobs?: number;
}

/** The settings, checked; paths absolute (relative ones are the file's directory's). */
export interface ProjectSettings {
  kernels?: string[];
  timeout?: number;
  buildTimeout?: number;
  memory?: number;
  jobs?: number;
  flavour?: string;
  accel?: (typeof ACCELS)[number];
  archiveUri?: string;
  securityUri?: string;
  snapshot?: boolean;
  trustDriver?: boolean;
  rubric?: string;
  grade?: GradeSettings;
}

export interface ProjectConfig {
  /** The file, absolute. */
  file: string;
  settings: ProjectSettings;
}

/** What the search found, and what it did not read. */
export interface ConfigLookup {
  config?: ProjectConfig;
  /** Why there is none: --no-config, or the directory the search started from. */
  none?: { noConfig: true } | { searchedFrom: string };
  /** Config files not read because they are inside the code being checked. */
  skipped: string[];
}

/** One setting's check: the value as it is used, or an InvalidArgumentError saying what would be right. */
type Check = (value: unknown, dir: string) => unknown;

/** A whole number, by the flag's own parser: anything but a number fails the flag's rule. */
const whole =
  (parser: (v: string) => number): Check =>
  (v) =>
    parser(typeof v === 'number' ? String(v) : 'NaN');

const text: Check = (v) => {
  if (typeof v !== 'string' || v.trim() === '') throw new InvalidArgumentError('must be a non-empty string');
  return v.trim();
};

const flag: Check = (v) => {
  if (typeof v !== 'boolean') throw new InvalidArgumentError('must be true or false');
  return v;
};

const path: Check = (v, dir) => resolve(dir, text(v, dir) as string);

const accel: Check = (v) => {
  if (typeof v !== 'string' || !(ACCELS as readonly string[]).includes(v)) throw new InvalidArgumentError(`must be one of ${ACCELS.join(', ')}`);
  return v;
};

/** A kernel spec or a list of them, as --kernel takes them (all included). */
const kernels: Check = (v, dir) => {
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0 || list.some((k) => typeof k !== 'string')) throw new InvalidArgumentError('must be a kernel spec or a list of them');
  return list.map((k) => kernelListValue(text(k, dir) as string));
};

const GRADE_KEYS: Record<keyof GradeSettings, Check> = {
  kernel: (v, dir) => kernelSpecValue(text(v, dir) as string),
  rubric: path,
  skeleton: path,
  timeout: whole(parseTimeout),
  buildTimeout: whole(parseBuildTimeout),
  memory: whole(parseMemory),
  jobs: whole(parseJobs),
};

const KEYS: Record<keyof ProjectSettings, Check> = {
  kernels,
  timeout: whole(parseTimeout),
  buildTimeout: whole(parseBuildTimeout),
  memory: whole(parseMemory),
  jobs: whole(parseJobs),
  flavour: text,
  accel,
  archiveUri: text,
  securityUri: text,
  snapshot: flag,
  trustDriver: flag,
  rubric: path,
  grade: () => undefined, // checked as a section of its own
};

/** The file's name as messages give it: relative to the current directory when below it. */
export function shownPath(file: string, cwd: string): string {
  const rel = relative(cwd, file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A section's keys checked one by one; the first wrong one is the error, named as `prefix.key`. */
function checkSection(raw: Record<string, unknown>, checks: Record<string, Check>, dir: string, prefix: string, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const name = `${prefix}${key}`;
    const check = Object.hasOwn(checks, key) ? checks[key] : undefined;
    if (!check) throw usage(`${where}: unknown setting '${name}' (known: ${Object.keys(checks).map((k) => `${prefix}${k}`).join(', ')})`);
    try {
      out[key] = check(value, dir);
    } catch (e) {
      const message = (e instanceof Error ? e.message : String(e)).replace(/^--[a-z-]+ /, '');
      throw usage(`${where}: ${name}${message.startsWith('must ') ? ' ' : ': '}${message}`);
    }
  }
  return out;
}

/** The file's contents checked: every key known, every value right, paths made absolute. */
export function validateSettings(raw: unknown, file: string, cwd: string): ProjectSettings {
  const inPackage = basename(file) === 'package.json';
  const where = shownPath(file, cwd);
  const prefix = inPackage ? 'mmaplab.' : '';
  if (raw === undefined || raw === null) return {};
  if (!isObject(raw)) throw usage(`${where}: ${inPackage ? 'the mmaplab key' : 'the file'} must hold an object of settings (see the README: Project settings)`);
  const dir = dirname(file);
  const settings = checkSection(raw, KEYS, dir, prefix, where) as ProjectSettings;
  if (raw.grade !== undefined) {
    if (!isObject(raw.grade)) throw usage(`${where}: ${prefix}grade must be an object of grade's settings (${Object.keys(GRADE_KEYS).join(', ')})`);
    settings.grade = checkSection(raw.grade, GRADE_KEYS, dir, `${prefix}grade.`, where);
  }
  return settings;
}

/** Resolved through symlinks when it exists, so "inside" compares real folders. */
function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}

export function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** The folder of the code being checked: the driver's folder (a single .c file's too), or the class folder. */
export function checkedFolder(checked: string, cwd: string): string {
  const p = resolve(cwd, checked);
  const info = statSync(p, { throwIfNoEntry: false });
  return real(info?.isFile() ? dirname(p) : p);
}

/** Config files in the folders from `from` up to `top` (both included): what a search from inside the checked code would have found. */
function configFilesBetween(from: string, top: string): string[] {
  const found: string[] = [];
  for (let dir = from; isInside(dir, top); dir = dirname(dir)) {
    for (const place of SEARCH_PLACES) {
      const f = join(dir, place);
      if (!existsSync(f)) continue;
      if (place === 'package.json' && !hasMmaplabKey(f)) continue;
      found.push(f);
    }
    if (dir === top || dirname(dir) === dir) break;
  }
  return found;
}

function hasMmaplabKey(pkg: string): boolean {
  try {
    const v = JSON.parse(readFileSync(pkg, 'utf8')) as unknown;
    return isObject(v) && v.mmaplab !== undefined;
  } catch {
    return false;
  }
}

/** lilconfig's loaders (YAML for .mmaplabrc, which takes JSON too), each failure a usage error naming its file. */
function loaders(shown: (f: string) => string): Record<string, Loader> {
  const named =
    (load: Loader): Loader =>
    async (file, content) => {
      try {
        return (await load(file, content)) as unknown;
      } catch (e) {
        throw usage(`${shown(file)}: cannot be read: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
      }
    };
  const yaml = named((_file, content) => parseYaml(content) as unknown);
  return { ...Object.fromEntries(Object.entries(defaultLoaders).map(([ext, load]) => [ext, named(load)])), '.yaml': yaml, '.yml': yaml, noExt: yaml };
}

/**
 * The project's config: the file named (--config), none (--no-config), or
 * the first found from `cwd` upwards, starting above the checked code's
 * folder when `cwd` is inside it.
 */
export async function findProjectConfig(o: { cwd: string; explicit?: string | false; checked?: string }): Promise<ConfigLookup> {
  if (o.explicit === false) return { none: { noConfig: true }, skipped: [] };
  const cwd = real(o.cwd);
  const shown = (f: string) => shownPath(f, cwd);
  const searcher = lilconfig('mmaplab', { searchPlaces: SEARCH_PLACES, cache: false, loaders: loaders(shown) });
  let found: LilconfigResult;
  let skipped: string[] = [];
  let from = cwd;
  if (o.explicit !== undefined) {
    const file = resolve(cwd, o.explicit);
    if (!existsSync(file)) throw usage(`--config ${o.explicit}: no such file`);
    found = await searcher.load(file).catch((e: unknown) => {
      // A name lilconfig has no loader for (config.toml, say).
      throw e instanceof CommanderError ? e : usage(`--config ${o.explicit}: ${e instanceof Error ? e.message : String(e)}; use .json, .yaml, .yml, .js or .mjs`);
    });
  } else {
    const top = o.checked === undefined ? undefined : checkedFolder(o.checked, cwd);
    if (top !== undefined && isInside(cwd, top)) {
      skipped = configFilesBetween(cwd, top);
      from = dirname(top);
    }
    found = await searcher.search(from);
  }
  if (!found) return { none: { searchedFrom: from }, skipped };
  return { config: { file: found.filepath, settings: validateSettings(found.config, found.filepath, cwd) }, skipped };
}
