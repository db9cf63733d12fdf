/**
 * The JSON contract in the tests: every document mmaplab printed (--json) or
 * wrote (results.json) is held to schema/results.schema.json, the file that
 * ships in the package, with Ajv. A document is checked against the one
 * definition its command/kind names (so a failure lists that document's own
 * errors) and against the schema's root (what a CI user validates with).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { expect } from 'vitest';
import { ROOT } from '../helpers.js';

export const SCHEMA_PATH = join(ROOT, 'schema', 'results.schema.json');

/** The definitions of the schema a document can be, by what it says it is. */
export type DocumentDefinition = 'RunReport' | 'CheckReport' | 'MatrixReport' | 'GradeReport';

let compiled: { root: ValidateFunction; byKind: Map<DocumentDefinition, ValidateFunction> } | undefined;

function validators(): NonNullable<typeof compiled> {
  if (compiled) return compiled;
  const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as Record<string, unknown>;
  // strict: a keyword Ajv does not know, or a type that contradicts itself, is an error in the schema.
  const ajv = new Ajv({ allErrors: true, strict: true });
  ajv.addSchema(schema, 'results');
  const defs: DocumentDefinition[] = ['RunReport', 'CheckReport', 'MatrixReport', 'GradeReport'];
  compiled = { root: ajv.getSchema('results')!, byKind: new Map(defs.map((d) => [d, ajv.getSchema(`results#/definitions/${d}`)!])) };
  return compiled;
}

/** Which definition a document claims to be: kind 'matrix', else its command (undefined: none). */
export function definitionOf(doc: unknown): DocumentDefinition | undefined {
  if (typeof doc !== 'object' || doc === null) return undefined;
  const d = doc as { kind?: unknown; command?: unknown };
  if (d.kind === 'matrix') return 'MatrixReport';
  return d.command === 'run' ? 'RunReport' : d.command === 'check' ? 'CheckReport' : d.command === 'grade' ? 'GradeReport' : undefined;
}

const describeError = (e: ErrorObject): string => `${e.instancePath || '/'} ${e.message ?? e.keyword}${Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`;

/** What is wrong with a document by the schema: [] when it is a valid results document. */
export function schemaErrors(doc: unknown): string[] {
  const v = validators();
  const def = definitionOf(doc);
  if (!def) return ['/ is neither a run, a check, a matrix nor a grade (no command or kind the schema knows)'];
  const own = v.byKind.get(def)!;
  if (!own(doc)) return (own.errors ?? []).map((e) => `${def}: ${describeError(e)}`);
  if (!v.root(doc)) return (v.root.errors ?? []).map((e) => `root: ${describeError(e)}`);
  return [];
}

/** Fails the test, naming every field that is wrong, unless the document matches the schema; returns it as the type the test reads. */
export function expectValidResults<T = unknown>(doc: unknown): T {
  expect(schemaErrors(doc), `${definitionOf(doc) ?? 'document'} does not match ${SCHEMA_PATH}`).toEqual([]);
  return doc as T;
}

/** JSON.parse of what mmaplab printed or wrote, held to the schema. */
export function parseValidResults<T = unknown>(text: string): T {
  return expectValidResults<T>(JSON.parse(text));
}

/** Whether the schema's root alone (what a CI user validates with) accepts the document. */
export function rootAccepts(doc: unknown): boolean {
  return validators().root(doc);
}
