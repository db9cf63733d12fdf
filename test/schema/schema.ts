/**
 * The JSON contract: schema/results.schema.json, generated from the model
 * (src/model/documents.ts, ResultsDocument) by ts-json-schema-generator, so
 * the schema says what the TypeScript types say and nothing else.
 *
 *   npm run schema            rewrite schema/results.schema.json
 *   npm run schema -- --check exit 1 when the committed file is not what the model gives
 *
 * test/unit/results-schema.test.ts regenerates it in memory and fails when
 * the committed file differs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createGenerator, type Config } from 'ts-json-schema-generator';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SCHEMA_FILE = `${ROOT}schema/results.schema.json`;

const CONFIG: Config = {
  path: `${ROOT}src/model/documents.ts`,
  tsconfig: `${ROOT}tsconfig.json`,
  type: 'ResultsDocument',
  // Tuples have exactly their length; objects no field the model does not name.
  strictTuples: true,
  additionalProperties: false,
  jsDoc: 'extended',
  sortProps: true,
  // The root is the union itself (not a $ref, beside which draft-07 ignores the title and description).
  topRef: false,
};

type Json = Record<string, unknown>;

/** A document's tag as its definition fixes it: kind (the matrix) before command, which the matrix shares with run and check. */
function tagOf(name: string, def: Json | undefined): { field: 'kind' | 'command'; value: string } {
  const props = (def?.properties ?? {}) as Record<string, { const?: unknown } | undefined>;
  for (const field of ['kind', 'command'] as const) {
    const value = props[field]?.const;
    if (typeof value === 'string') return { field, value };
  }
  throw new Error(`${name}: a results document with neither a constant kind nor a constant command; the schema's root could not tell it from the others`);
}

/**
 * The generated union as a chain of if/then on each document's tag: the same
 * documents, but a validator reports the errors of the one document a
 * document says it is, not every other document's too.
 */
function discriminated(union: ReadonlyArray<{ $ref: string }>, definitions: Record<string, Json>): Json {
  const members = union.map(({ $ref }) => {
    const name = $ref.replace('#/definitions/', '');
    return { $ref, ...tagOf(name, definitions[name]) };
  });
  members.sort((a, b) => Number(b.field === 'kind') - Number(a.field === 'kind'));
  return members.reduceRight<Json | boolean>(
    (otherwise, m) => ({ if: { type: 'object', properties: { [m.field]: { const: m.value } }, required: [m.field] }, then: { $ref: m.$ref }, else: otherwise }),
    false,
  ) as Json;
}

/** The schema as the model gives it today, as the file holds it (two-space JSON, newline-terminated). */
export function resultsSchemaText(): string {
  const { anyOf, definitions, $schema, ...rest } = createGenerator(CONFIG).createSchema(CONFIG.type) as Json & { anyOf: Array<{ $ref: string }>; definitions: Record<string, Json> };
  if (Object.keys(rest).length) throw new Error(`unexpected keywords at the schema's root: ${Object.keys(rest).join(', ')}`);
  const doc = {
    $schema,
    $comment: 'Generated from src/model/documents.ts by `npm run schema` (ts-json-schema-generator); do not edit by hand.',
    title: 'mmaplab results document',
    description: "What mmaplab prints with --json and writes as results.json: a run (command 'run'), a check (command 'check'), a matrix of kernels (kind 'matrix', from several --kernel values or `merge`) or a graded class (command 'grade'). Validate a document with the schema of the mmaplab version that wrote it: an older schema refuses a field a later version added (such fields are optional, so a newer schema accepts older documents of the same schemaVersion).",
    ...discriminated(anyOf, definitions),
    definitions,
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

function main(argv: readonly string[]): void {
  const text = resultsSchemaText();
  if (argv.includes('--check')) {
    const committed = readFileSync(SCHEMA_FILE, 'utf8');
    if (committed !== text) {
      process.stderr.write(`${SCHEMA_FILE} is not what the model gives: run npm run schema\n`);
      process.exitCode = 1;
    }
    return;
  }
  writeFileSync(SCHEMA_FILE, text);
  process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
