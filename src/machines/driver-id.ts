/**
 * Which driver a job loads: its module file's content. A guest serves one
 * driver only (a module controls its whole guest), so machines compare this
 * before they hand a guest to the next job.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

export class DriverIds {
  private readonly byPath = new Map<string, Promise<string>>();

  of(modulePath: string): Promise<string> {
    let id = this.byPath.get(modulePath);
    if (!id) {
      id = readFile(modulePath).then((d) => createHash('sha256').update(d).digest('hex'));
      this.byPath.set(modulePath, id);
    }
    return id;
  }
}
