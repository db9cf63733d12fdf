import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exists, Hasher } from './fsx.js';
import { PACKAGE_ROOT } from './paths.js';

export const VERSION: string = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let code: Promise<string> | undefined;

/**
 * What this mmaplab is beyond its version number: a hash of its compiled code
 * and of what it puts in the guest, so results cached by one build are never
 * taken for another's (a checkout between releases keeps one version number).
 */
export function codeId(): Promise<string> {
  code ??= (async () => {
    const h = new Hasher().add('version', VERSION);
    for (const dir of ['dist', 'vm', 'userspace', 'kernel-module']) {
      const path = join(PACKAGE_ROOT, dir);
      if (await exists(path)) await h.addTree(dir, path);
    }
    return `${VERSION}+${h.digest(12)}`;
  })();
  return code;
}
