/**
 * A private apt: its own sources list, lists and cache directories, so that
 * fetching kernels of any Debian release needs no root and leaves the host's
 * apt state untouched.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MmaplabError } from '../util/errors.js';
import type { ByteCount } from '../model/progress.js';
import { run, runChecked, type ExecResult } from '../util/exec.js';

export interface AptLine {
  uri: string;
  suite: string;
  components: string[];
  signedBy: string | undefined;
}

export class PrivateApt {
  private constructor(
    readonly dir: string,
    private readonly opts: string[],
  ) {}

  /** arches: the packages' architectures, the first the native one (names without :arch are of it). */
  static async create(dir: string, lines: readonly AptLine[], extraOptions: readonly string[] = [], arches: readonly string[] = ['amd64']): Promise<PrivateApt> {
    await mkdir(join(dir, 'lists', 'partial'), { recursive: true });
    await mkdir(join(dir, 'cache', 'archives', 'partial'), { recursive: true });
    const list = lines
      .map((l) => `deb [arch=${arches.join(',')}${l.signedBy ? ` signed-by=${l.signedBy}` : ''}] ${l.uri} ${l.suite} ${l.components.join(' ')}`)
      .join('\n');
    await writeFile(join(dir, 'sources.list'), `${list}\n`);
    await writeFile(join(dir, 'status'), '');
    const o = (k: string, v: string) => ['-o', `${k}=${v}`];
    const opts = [
      ...o('Dir::Etc::SourceList', join(dir, 'sources.list')),
      ...o('Dir::Etc::SourceParts', '/dev/null'),
      ...o('Dir::Etc::Preferences', '/dev/null'),
      ...o('Dir::Etc::PreferencesParts', '/dev/null'),
      ...o('Dir::State::Lists', join(dir, 'lists')),
      ...o('Dir::State::status', join(dir, 'status')),
      ...o('Dir::Cache', join(dir, 'cache')),
      ...o('Debug::NoLocking', '1'),
      ...o('APT::Architecture', arches[0]!),
      // A list option: each architecture appended.
      ...arches.flatMap((a) => o('APT::Architectures::', a)),
      ...o('Acquire::Languages', 'none'),
      ...o('Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled', 'false'),
      // As root apt would drop to _apt, which cannot write into a user's cache.
      ...(process.getuid?.() === 0 ? o('APT::Sandbox::User', 'root') : []),
      ...extraOptions,
    ];
    return new PrivateApt(dir, opts);
  }

  async update(): Promise<void> {
    const r = await run('apt-get', [...this.opts, '-q', 'update'], { timeoutMs: 180_000 });
    // apt-get update exits 0 on some fetch failures; treat its warnings as failures too.
    const failed = !r.ok || /^(E:|W: Failed to fetch|Err:)/m.test(r.all);
    if (failed) {
      throw new MmaplabError('fetch', 'apt-get update of the private kernel sources failed', {
        details: r.all.trimEnd().split('\n').filter((l) => /^(E:|W:|Err:)/.test(l)).slice(0, 10),
        hint: 'check the network, or give another archive with --archive-uri / MMAPLAB_DEBIAN_ARCHIVE',
      });
    }
  }

  async candidate(pkg: string): Promise<string | undefined> {
    const r = await runChecked('fetch', 'apt-cache policy', 'apt-cache', [...this.opts, 'policy', pkg]);
    const v = /Candidate:\s*(\S+)/.exec(r.stdout)?.[1];
    return v && v !== '(none)' ? v : undefined;
  }

  /** The Depends field of pkg=version, as package names (alternatives flattened, versions dropped). */
  async depends(pkg: string, version?: string): Promise<string[]> {
    const r = await this.show(pkg, version);
    if (!r.ok) return [];
    const field = /^Depends:\s*(.*)$/m.exec(r.stdout)?.[1] ?? '';
    return field
      .split(',')
      .flatMap((alt) => alt.split('|'))
      .map((d) => d.trim().split(/[\s(]/)[0]!)
      .filter(Boolean);
  }

  async has(pkg: string): Promise<boolean> {
    const r = await this.show(pkg);
    return r.ok && /^Package:/m.test(r.stdout);
  }

  /** The packages' download size in bytes (0 when apt does not say). */
  private async sizeOf(pkgs: readonly string[]): Promise<number> {
    // One apt-cache for all: each reads every list again.
    const r = await run('apt-cache', [...this.opts, 'show', '--no-all-versions', ...pkgs]);
    return [...r.stdout.matchAll(/^Size:\s*(\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
  }

  private show(pkg: string, version?: string): Promise<ExecResult> {
    return run('apt-cache', [...this.opts, 'show', '--no-all-versions', version ? `${pkg}=${version}` : pkg]);
  }

  /** The packages' .debs into a folder; onBytes follows the download (apt's own status lines, scaled to the packages' sizes). */
  async download(pkgs: readonly string[], into: string, onBytes?: (b: ByteCount) => void): Promise<void> {
    await mkdir(into, { recursive: true });
    const total = onBytes ? await this.sizeOf(pkgs) : 0;
    const status = onBytes && total > 0 ? ['-o', 'APT::Status-Fd=1'] : [];
    await runChecked('fetch', 'apt-get download', 'apt-get', [...this.opts, ...status, '-q', 'download', ...pkgs], {
      cwd: into,
      ...(status.length
        ? {
            stdoutLines: (line: string) => {
              const percent = /^dlstatus:[^:]*:([\d.]+):/.exec(line)?.[1];
              if (percent === undefined) return true;
              onBytes!({ done: Math.min(total, Math.round((Number(percent) / 100) * total)), total });
              return false;
            },
          }
        : {}),
      timeoutMs: 600_000,
      hint: 'check the network; a killed download leaves nothing behind, so simply retry',
    });
    // apt reports only on its periodic pulse, so its last word may be short of the whole.
    if (status.length) onBytes!({ done: total, total });
  }
}
