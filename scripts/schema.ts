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

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
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
  // The root is the union itself (not a $ref beside which draft-07 ignores the title and description).
  topRef: false,
};

/** The schema as the model gives it today, as the file holds it (two-space JSON, newline-terminated). */
export function resultsSchemaText(): string {
  const schema = createGenerator(CONFIG).createSchema(CONFIG.type);
  const doc = {
    $schema: schema.$schema,
    $comment: 'Generated from src/model/documents.ts by `npm run schema` (ts-json-schema-generator); do not edit by hand.',
    title: 'mmaplab results document',
    description: "What mmaplab prints with --json and writes as results.json: a run (command 'run'), a check (command 'check'), a matrix of kernels (kind 'matrix', from several --kernel values or `merge`) or a graded class (command 'grade'). Validate a document with the schema of the mmaplab version that wrote it: an older schema refuses a field a later version added (such fields are optional, so a newer schema accepts older documents of the same schemaVersion).",
    ...schema,
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
