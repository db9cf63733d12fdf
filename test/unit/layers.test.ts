/**
 * The import graph of src/: every import points down the layers (a folder may
 * import its own files and the folders below it, never one above), and no
 * two modules import each other, however indirectly. Imports are read with
 * TypeScript's own pre-processor, so `import type` and `import()` count too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';

/** Lowest first: a folder may import only from folders before it (and itself). */
export const LAYERS = [
  'util',
  'model',
  'kernel',
  'sandbox',
  'kbuild',
  'guest',
  'parse',
  'rundir',
  'vm',
  'gdb',
  'ssh',
  'machines',
  'diagnose',
  'matrix',
  'grade',
  'report',
  'commands',
  'cli',
] as const;

const SRC = join(ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** file -> the project files it imports (relative specifiers only; packages are not layers). */
export function importGraph(files: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const info = ts.preProcessFile(readFileSync(f, 'utf8'), true, true);
    graph.set(
      f,
      info.importedFiles.map((i) => i.fileName).filter((s) => s.startsWith('.')).map((s) => resolve(dirname(f), s.replace(/\.js$/, '.ts'))),
    );
  }
  return graph;
}

const layerOf = (file: string): string => relative(SRC, file).split('/')[0]!;

/** Each import that points up or sideways to a later layer, as "from -> to". */
export function upwardImports(graph: ReadonlyMap<string, readonly string[]>, layers: readonly string[]): string[] {
  const bad: string[] = [];
  for (const [from, tos] of graph) {
    for (const to of tos) {
      const a = layers.indexOf(layerOf(from));
      const b = layers.indexOf(layerOf(to));
      if (a < 0 || b < 0 || b > a) bad.push(`${relative(SRC, from)} -> ${relative(SRC, to)}`);
    }
  }
  return bad;
}

/** Every cycle found by a depth-first walk, each as the files around it. */
export function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const t of graph.get(f) ?? []) {
      if (state.get(t) === 'open') found.push([...stack.slice(stack.indexOf(t)), t].map((x) => relative(SRC, x)));
      else if (!state.has(t)) visit(t);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return found;
}

describe('the layers of src/', () => {
  const graph = importGraph(sources(SRC));

  it('has a layer for every folder', () => {
    const folders = [...new Set([...graph.keys()].map(layerOf))];
    expect(folders.filter((f) => !(LAYERS as readonly string[]).includes(f))).toEqual([]);
  });

  it('imports only downwards', () => {
    expect(upwardImports(graph, LAYERS)).toEqual([]);
  });

  it('has no import cycle', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('catches an upward import and a cycle when there is one', () => {
    // The checks themselves, on a graph made to fail them.
    const f = (p: string) => join(SRC, p);
    const bad = new Map([
      [f('model/a.ts'), [f('report/b.ts')]],
      [f('report/b.ts'), [f('model/a.ts')]],
    ]);
    expect(upwardImports(bad, LAYERS)).toEqual(['model/a.ts -> report/b.ts']);
    expect(cycles(bad)).toEqual([['model/a.ts', 'report/b.ts', 'model/a.ts']]);
  });
});
