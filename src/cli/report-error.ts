/** Errors as the user sees them: one line on stderr, the details, a hint. */
import { githubAnnotations } from '../report/annotations.js';
import { makeStyle } from '../report/style.js';
import type { MmaplabError } from '../util/errors.js';

/** The one-line error, its details and hint on stderr; under GitHub Actions also its annotations. */
export function reportError(e: MmaplabError, annotate = true): void {
  if (annotate && process.env.GITHUB_ACTIONS === 'true') for (const a of githubAnnotations(e.locations)) process.stdout.write(`${a}\n`);
  const c = makeStyle({ color: process.argv.includes('--no-color') ? false : undefined, stream: process.stderr });
  process.stderr.write(`${c.red.bold('mmaplab: error:')} ${e.message}\n`);
  for (const d of e.details) process.stderr.write(`  ${d}\n`);
  if (e.hint) process.stderr.write(`${c.yellow('hint:')} ${e.hint}\n`);
}

