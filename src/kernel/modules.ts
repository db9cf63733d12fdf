/**
 * The kernel's own modules (virtio transport and console for the guest's job
 * channel): find them in the extracted image, resolve their dependencies from
 * each module's .modinfo, and hand them over uncompressed, in load order.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MmaplabError } from '../util/errors.js';
import { runChecked } from '../util/exec.js';

export interface KernelModule {
  name: string;
  /** Uncompressed module image. */
  data: Buffer;
}

const normalise = (n: string) => n.replace(/-/g, '_');

async function indexModules(dir: string): Promise<Map<string, string>> {
  const index = new Map<string, string>();
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else {
        const m = /^(.*)\.ko(\.xz|\.zst|\.gz)?$/.exec(e.name);
        if (m) index.set(normalise(m[1]!), p);
      }
    }
  }
  // An installed kernel keeps its modules under kernel/; a built tree has them beside its sources.
  await walk(join(dir, 'kernel'));
  if (index.size === 0) await walk(dir);
  return index;
}

async function builtins(dir: string): Promise<Set<string>> {
  try {
    const text = await readFile(join(dir, 'modules.builtin'), 'utf8');
    return new Set(text.split('\n').filter(Boolean).map((l) => normalise(l.split('/').pop()!.replace(/\.ko$/, ''))));
  } catch {
    return new Set();
  }
}

async function loadModuleFile(path: string): Promise<Buffer> {
  const tool = path.endsWith('.xz') ? 'xz' : path.endsWith('.zst') ? 'zstd' : path.endsWith('.gz') ? 'gzip' : undefined;
  if (!tool) return readFile(path);
  const r = await runChecked('guest', `${tool} -dc`, tool, ['-dc', path], { binary: true });
  return r.stdoutBytes ?? Buffer.alloc(0);
}

/** The `name=value` strings of a module's .modinfo section. */
export function modinfo(ko: Buffer, key: string): string[] {
  const needle = Buffer.from(`\0${key}=`);
  const out: string[] = [];
  let at = ko.indexOf(needle);
  while (at >= 0) {
    const start = at + needle.length;
    const end = ko.indexOf(0, start);
    out.push(ko.toString('latin1', start, end));
    at = ko.indexOf(needle, end);
  }
  return out;
}

/** CONFIG_<NAME>=y in the kernel's config, for packages that ship no modules.builtin (sid's). */
export function builtinByConfig(configText: string): Set<string> {
  const out = new Set<string>();
  for (const m of configText.matchAll(/^CONFIG_(\w+)=y$/gm)) out.add(normalise(m[1]!.toLowerCase()));
  return out;
}

/**
 * Modules `roots` need, dependencies first; modules built into the kernel are
 * skipped (by modules.builtin, else by a CONFIG_ option of the module's name).
 */
export async function resolveModules(modulesDir: string, roots: readonly string[], configText = ''): Promise<KernelModule[]> {
  const index = await indexModules(modulesDir);
  const builtin = await builtins(modulesDir);
  if (builtin.size === 0) for (const n of builtinByConfig(configText)) builtin.add(n);
  const order: KernelModule[] = [];
  const done = new Set<string>();
  async function visit(name: string): Promise<void> {
    const n = normalise(name);
    if (done.has(n) || builtin.has(n)) return;
    done.add(n);
    const path = index.get(n);
    if (!path) throw new MmaplabError('guest', `kernel module ${name} is neither built in nor in ${modulesDir}`);
    const data = await loadModuleFile(path);
    for (const dep of (modinfo(data, 'depends')[0] ?? '').split(',').filter(Boolean)) await visit(dep);
    order.push({ name: n, data });
  }
  for (const r of roots) await visit(r);
  return order;
}
