/**
 * ~/.ssh/config for --target, resolved as OpenSSH resolves it: the file is
 * parsed by the ssh-config package (quoting, `=`, sections), and its Host
 * blocks are evaluated here in OpenSSH's order: the first value obtained for
 * a keyword wins, IdentityFile accumulates, Host patterns take `*`, `?` and
 * `!negation`, and Include splices other files in (read once, when loaded,
 * up to OpenSSH's depth of 16), conditionally when it stands in a Host block.
 *
 * The package's own compute() is not used: it runs `Match exec` commands and
 * nslookup, lets `?` match nothing, and does not follow Include. Match blocks
 * are skipped, with a note saying so.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import SSHConfig, { LineType, type Line } from 'ssh-config';
import { usageError } from '../util/errors.js';

type Node =
  | { kind: 'set'; key: string; values: string[]; text: string }
  | { kind: 'host'; patterns: string[]; body: Node[] }
  | { kind: 'match'; body: Node[] }
  | { kind: 'include'; files: Node[][] };

/** What the config says for one host, before any of it is expanded. */
export interface HostEntry {
  hostName?: string;
  user?: string;
  port?: string;
  /** Every IdentityFile, in the order the config gives them. */
  identityFiles: string[];
  identitiesOnly?: string;
  /** ProxyJump and ProxyCommand exclude each other: the first one obtained. */
  proxy?: { keyword: 'ProxyJump' | 'ProxyCommand'; value: string };
  hostKeyAlias?: string;
  userKnownHostsFile?: string[];
  /** Whether some Host block other than a bare `*` matched. */
  matched: boolean;
  /** Match blocks met on the way, which mmaplab does not evaluate. */
  skippedMatch: boolean;
}

const MAX_INCLUDE_DEPTH = 16;

function valueTokens(v: Line & { type: LineType.DIRECTIVE }): string[] {
  return typeof v.value === 'string' ? [v.value] : v.value.map((x) => x.val);
}

/** `?` is one character, `*` any run; case-insensitive, as OpenSSH lowercases the host first. */
export function patternMatches(pattern: string, name: string, caseless = true): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, caseless ? 'i' : '').test(name);
}

/** A Host line's pattern list: a negated pattern that matches rules the block out, whatever else matches. */
export function hostMatches(patterns: readonly string[], name: string): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (patternMatches(p.slice(1), name)) return false;
    } else if (patternMatches(p, name)) matched = true;
  }
  return matched;
}

/** Glob (`*`, `?`) in any path segment, sorted as glob(3) returns it. */
function globFiles(pattern: string): string[] {
  const parts = pattern.split('/').filter(Boolean);
  let found = [pattern.startsWith('/') ? '/' : '.'];
  for (const part of parts) {
    const next: string[] = [];
    for (const dir of found) {
      if (!/[*?]/.test(part)) {
        next.push(join(dir, part));
        continue;
      }
      let names: string[] = [];
      try {
        names = readdirSync(dir).filter((n) => !n.startsWith('.') || part.startsWith('.'));
      } catch {
        // A directory that is not there matches nothing, as in glob(3).
      }
      for (const n of names.sort()) if (patternMatches(part, n, false)) next.push(join(dir, n));
    }
    found = next;
  }
  return found.filter((f) => existsSync(f));
}

class Loader {
  constructor(
    private readonly home: string,
    /** Where relative Include paths start: ~/.ssh for a user's config, as OpenSSH does. */
    private readonly base: string,
  ) {}

  file(path: string, depth: number): Node[] {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw usageError(`ssh_config ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, 'name another with --ssh-config FILE, or --ssh-config none');
    }
    let lines: Line[];
    try {
      lines = SSHConfig.parse(text);
    } catch (e) {
      throw usageError(`ssh_config ${path} does not parse: ${(e as Error).message}`, 'fix it, or pass --ssh-config none');
    }
    return this.nodes(lines, path, depth);
  }

  nodes(lines: readonly Line[], path: string, depth: number): Node[] {
    const out: Node[] = [];
    for (const l of lines) {
      if (l.type !== LineType.DIRECTIVE) continue;
      const key = l.param.toLowerCase();
      const values = valueTokens(l);
      if ('config' in l) {
        const body = this.nodes(l.config, path, depth);
        out.push(key === 'host' ? { kind: 'host', patterns: values.flatMap((v) => v.split(',')).filter(Boolean), body } : { kind: 'match', body });
      } else if (key === 'include') {
        if (depth >= MAX_INCLUDE_DEPTH) throw usageError(`ssh_config ${path}: Include nested deeper than ${MAX_INCLUDE_DEPTH} files (does a file include itself?)`);
        const files = values.flatMap((v) => globFiles(this.includePath(v)));
        out.push({ kind: 'include', files: files.map((f) => this.file(f, depth + 1)) });
      } else out.push({ kind: 'set', key, values, text: values.join(' ') });
    }
    return out;
  }

  private includePath(v: string): string {
    const p = v.startsWith('~/') ? join(this.home, v.slice(2)) : v;
    return isAbsolute(p) ? p : join(this.base, p);
  }
}

/** An ssh_config file with everything it includes, ready to be asked about hosts. */
export class SshConfig {
  private constructor(
    /** The file read; undefined: none (--ssh-config none, or no ~/.ssh/config). */
    readonly path: string | undefined,
    private readonly nodes: Node[],
    /** What ~ and %d stand for in the file's names. */
    readonly home: string,
  ) {}

  static none(home = homedir()): SshConfig {
    return new SshConfig(undefined, [], home);
  }

  /**
   * --ssh-config FILE, or with none given ~/.ssh/config if there is one. A
   * file that does not parse, or an Include loop, is a usage error.
   */
  static load(file: string | undefined, home = homedir()): SshConfig {
    if (file === 'none') return SshConfig.none(home);
    const path = file ? resolve(file) : join(home, '.ssh', 'config');
    if (!file && !existsSync(path)) return SshConfig.none(home);
    // Relative Includes start in ~/.ssh for the user's own config, else beside the file.
    const base = path === join(home, '.ssh', 'config') ? join(home, '.ssh') : dirname(path);
    return new SshConfig(path, new Loader(home, base).file(path, 0), home);
  }

  /** The text of an ssh_config, as if read from `path` (tests; Include paths relative to `base`). */
  static parse(text: string, path = 'ssh_config', home = homedir()): SshConfig {
    return new SshConfig(path, new Loader(home, dirname(path)).nodes(SSHConfig.parse(text), path, 0), home);
  }

  /** What the config says for `host` as the user wrote it (an alias, or a name). */
  lookup(host: string): HostEntry {
    const entry: HostEntry = { identityFiles: [], matched: false, skippedMatch: false };
    const seen = new Set<string>();
    const set = (key: string, values: string[], text: string) => {
      if (key === 'identityfile') {
        entry.identityFiles.push(text);
        return;
      }
      if (key === 'proxyjump' || key === 'proxycommand') {
        entry.proxy ??= { keyword: key === 'proxyjump' ? 'ProxyJump' : 'ProxyCommand', value: text };
        return;
      }
      if (seen.has(key)) return;
      seen.add(key);
      if (key === 'hostname') entry.hostName = text;
      else if (key === 'user') entry.user = text;
      else if (key === 'port') entry.port = text;
      else if (key === 'identitiesonly') entry.identitiesOnly = text.toLowerCase();
      else if (key === 'hostkeyalias') entry.hostKeyAlias = text;
      else if (key === 'userknownhostsfile') entry.userKnownHostsFile = values;
    };
    const walk = (nodes: readonly Node[]) => {
      for (const n of nodes) {
        if (n.kind === 'set') set(n.key, n.values, n.text);
        else if (n.kind === 'include') n.files.forEach(walk);
        else if (n.kind === 'match') entry.skippedMatch = true;
        else if (hostMatches(n.patterns, host)) {
          if (n.patterns.some((p) => p !== '*')) entry.matched = true;
          walk(n.body);
        }
      }
    };
    walk(this.nodes);
    return entry;
  }
}

/** What %-tokens stand for in IdentityFile, UserKnownHostsFile and HostName (ssh_config TOKENS). */
export interface Tokens {
  /** %h: the remote host name (HostName). */
  host: string;
  /** %n: the host as the user wrote it. */
  original: string;
  port: number;
  /** %r */
  remoteUser: string;
}

/** %-tokens and a leading ~ expanded, as ssh does for a file name; an unknown token is a usage error. */
export function expandTokens(text: string, t: Tokens, what: string, home = homedir()): string {
  const local = userInfo();
  const map: Record<string, string> = {
    '%': '%',
    h: t.host,
    n: t.original,
    p: String(t.port),
    r: t.remoteUser,
    u: local.username,
    d: home,
    i: String(local.uid),
    l: hostname(),
    L: hostname().split('.')[0] ?? '',
  };
  const out = text.replace(/%(.)?/g, (m, c: string | undefined) => {
    const v = c === undefined ? undefined : map[c];
    if (v === undefined) throw usageError(`ssh_config: ${what} '${text}' has the token ${m}, which mmaplab does not expand`, 'use %h, %n, %p, %r, %u, %d, %i, %l or %%');
    return v;
  });
  return out === '~' ? home : out.startsWith('~/') ? join(home, out.slice(2)) : out;
}
