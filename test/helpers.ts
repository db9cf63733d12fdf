import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

export const ROOT = new URL('..', import.meta.url).pathname;
export const FIXTURES = join(ROOT, 'test', 'fixtures');

export function fixture(...parts: string[]): string {
  return readFileSync(join(FIXTURES, ...parts), 'utf8');
}

/**
 * Compare with a golden file under test/fixtures/golden; MMAPLAB_UPDATE_GOLDEN=1
 * rewrites it (after re-capturing consoles with test/capture-fixtures.sh).
 */
export async function expectGolden(name: string, value: unknown): Promise<void> {
  const { writeFileSync, existsSync, mkdirSync } = await import('node:fs');
  const path = join(FIXTURES, 'golden', `${name}.json`);
  const text = `${JSON.stringify(value, null, 2)}\n`;
  if (process.env.MMAPLAB_UPDATE_GOLDEN === '1' || !existsSync(path)) {
    if (process.env.CI && !existsSync(path)) throw new Error(`golden file ${path} is missing`);
    mkdirSync(join(FIXTURES, 'golden'), { recursive: true });
    writeFileSync(path, text);
    return;
  }
  expect(text).toBe(readFileSync(path, 'utf8'));
}
