/**
 * Checks already done, by what decides their outcome: the submission's
 * files, the kernel's exact package, this mmaplab's code, and the options a
 * check depends on. A grade run again (or after an interruption) re-checks
 * only submissions whose key is new. The rubric is not part of the key: a
 * new rubric re-scores the stored checks without a guest.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckReport } from '../model/report.js';
import { validateResults } from '../rundir/run-dir.js';
import type { TrustSign } from '../model/grade.js';
import { Hasher, writeFileAtomic } from '../util/fsx.js';

export interface CheckKey {
  content: string;
  kernel: { release: string; packageVersion: string; flavour: string };
  mmaplab: string;
  /** accel as requested: 'auto' is not resolved here (the KVM verdict is the machine's, cached with it). */
  options: { pages: number; timeoutS: number; buildTimeoutS: number; memoryMb: number; accel: string };
}

/** A check as stored: its report, and the trust signs read from its module (which the cache does not keep). */
export interface Cached {
  report: CheckReport;
  trust: TrustSign[];
}

export class CheckCache {
  constructor(private readonly dir: string) {}

  static key(k: CheckKey): string {
    return new Hasher().add('key', JSON.stringify(k)).digest(32);
  }

  private path(key: string): string {
    return join(this.dir, `${key}.json`);
  }

  /** The stored check, or undefined (none, or one this mmaplab cannot read). */
  async get(key: string): Promise<Cached | undefined> {
    const text = await readFile(this.path(key), 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      const entry = JSON.parse(text) as { report?: unknown; trust?: unknown };
      const doc = validateResults(entry.report, this.path(key));
      return doc.kind === 'check' && Array.isArray(entry.trust) ? { report: doc.report, trust: entry.trust as TrustSign[] } : undefined;
    } catch {
      return undefined;
    }
  }

  /** Written whole or not at all: an interrupted grade leaves only finished checks. */
  async put(key: string, entry: Cached): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.path(key), `${JSON.stringify(entry)}\n`);
  }
}

/** The hash of a staged submission's files (names and bytes). */
export async function contentHash(root: string): Promise<string> {
  return (await new Hasher().addTree('submission', root)).digest(32);
}
