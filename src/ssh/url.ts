/**
 * `--target ssh://[user@]host[:port]`, parsed strictly, then resolved through
 * ssh_config as `ssh` resolves its command line: what the URL says (user@,
 * :port) wins, the config's Host blocks give the rest (HostName, User, Port,
 * IdentityFile, ProxyJump, HostKeyAlias, UserKnownHostsFile), then the
 * defaults (this user, port 22).
 */
import { userInfo } from 'node:os';
import { usageError } from '../util/errors.js';
import { expandTokens, SshConfig, type HostEntry } from './ssh-config.js';

/** One machine to log in to: the target, or a jump host on the way. */
export interface SshHop {
  /** The host as the user (or a ProxyJump line) wrote it: an alias, or the host itself. */
  name: string;
  user: string;
  /** Where to connect: the config's HostName, else the name. */
  host: string;
  port: number;
  /** The name known_hosts files this host under instead of host (HostKeyAlias). */
  hostKeyAlias?: string;
  /** IdentityFile entries, expanded, in order; empty: the default keys. */
  identityFiles: string[];
  /** IdentitiesOnly yes: only those files, not the agent. */
  identitiesOnly: boolean;
  /** UserKnownHostsFile, expanded (the first is used). */
  knownHostsFile?: string;
  /** Whether an ssh_config Host block named this host. */
  configured: boolean;
}

export interface SshTarget extends SshHop {
  /** What reports show: the URL as the user wrote it when ssh_config resolved it (ssh://labbox), else ssh://user@host:port. */
  url: string;
  /** Where it really went: ssh://user@host:port. */
  address: string;
  /** ProxyJump hosts, first connected first. */
  via: SshHop[];
  /** The ssh_config file read (undefined: none). */
  sshConfig?: string;
  /** What the user should know about how the config was read (Match blocks skipped). */
  notes: string[];
}

const FORM = 'ssh://[user@]host[:port]';
const MAX_JUMPS = 8;

interface Spec {
  user: string | undefined;
  host: string;
  port: number | undefined;
}

/** ssh://[user@]host[:port]; `bare` also takes [user@]host[:port], as ProxyJump writes it. */
function parseSpec(text: string, what: string, bare = false): Spec {
  let u: URL;
  try {
    u = new URL(bare && !text.startsWith('ssh://') ? `ssh://${text}` : text);
  } catch {
    throw usageError(`${what} '${text}' is not a URL`, `write it as ${FORM}`);
  }
  if (u.protocol !== 'ssh:') throw usageError(`${what} '${text}': only ssh:// targets are supported`, `write it as ${FORM}`);
  if (u.password) throw usageError(`${what} '${text}' carries a password: mmaplab never takes one on the command line`, 'use a key (--identity FILE) or ssh-agent (SSH_AUTH_SOCK)');
  if ((u.pathname && u.pathname !== '/') || u.search || u.hash) throw usageError(`${what} '${text}' has a path or query; mmaplab wants only ${FORM}`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw usageError(`${what} '${text}' names no host`, `write it as ${FORM}`);
  return { user: decodeURIComponent(u.username) || undefined, host, port: u.port ? Number(u.port) : undefined };
}

const bracket = (host: string) => (host.includes(':') ? `[${host}]` : host);

export function hopAddress(h: Pick<SshHop, 'user' | 'host' | 'port'>): string {
  return `ssh://${h.user}@${bracket(h.host)}:${h.port}`;
}

function configPort(entry: HostEntry, name: string, file: string): number | undefined {
  if (entry.port === undefined) return undefined;
  const n = Number(entry.port);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw usageError(`${file}: Port '${entry.port}' for ${name} is not a port number (1 to 65535)`);
  return n;
}

/** One host through the config: the spec's own user and port first, then the config's, then the defaults. */
function resolveHop(spec: Spec, config: SshConfig): { hop: SshHop; entry: HostEntry } {
  const entry = config.lookup(spec.host);
  const file = config.path ?? 'ssh_config';
  const base = { host: spec.host, original: spec.host, port: 0, remoteUser: '' };
  const host = entry.hostName ? expandTokens(entry.hostName, base, 'HostName', config.home) : spec.host;
  const user = spec.user ?? entry.user ?? userInfo().username;
  const port = spec.port ?? configPort(entry, spec.host, file) ?? 22;
  const tokens = { host, original: spec.host, port, remoteUser: user };
  const hop: SshHop = {
    name: spec.host,
    user,
    host,
    port,
    identityFiles: entry.identityFiles.filter((f) => f.toLowerCase() !== 'none').map((f) => expandTokens(f, tokens, 'IdentityFile', config.home)),
    identitiesOnly: entry.identitiesOnly === 'yes',
    configured: entry.matched,
    ...(entry.hostKeyAlias ? { hostKeyAlias: entry.hostKeyAlias } : {}),
    ...(entry.userKnownHostsFile?.length && entry.userKnownHostsFile[0] !== 'none' ? { knownHostsFile: expandTokens(entry.userKnownHostsFile[0]!, tokens, 'UserKnownHostsFile', config.home) } : {}),
  };
  return { hop, entry };
}

/**
 * The jump hosts in front of a host whose config has ProxyJump: `a,b` goes
 * through a, then b. As `ssh -J` does, a's own ProxyJump comes first; b's is
 * overridden by the chain. ProxyCommand cannot be run by ssh2: refused.
 */
function jumpsFor(name: string, entry: HostEntry, config: SshConfig, depth: number): SshHop[] {
  const file = config.path ?? 'ssh_config';
  if (!entry.proxy || entry.proxy.value.toLowerCase() === 'none') return [];
  if (entry.proxy.keyword === 'ProxyCommand') {
    throw usageError(`${file}: ProxyCommand for ${name} is not supported (mmaplab speaks SSH itself and runs no proxy command); use ProxyJump, or --ssh-config none`);
  }
  if (depth >= MAX_JUMPS) throw usageError(`${file}: ProxyJump for ${name} leads through more than ${MAX_JUMPS} jump hosts (do they jump through each other?)`);
  const specs = entry.proxy.value.split(',').map((s) => parseSpec(s.trim(), `${file}: ProxyJump for ${name}:`, true));
  return specs.flatMap((spec, i) => {
    const r = resolveHop(spec, config);
    return i === 0 ? [...jumpsFor(spec.host, r.entry, config, depth + 1), r.hop] : [r.hop];
  });
}

/** --target, parsed and resolved through the ssh_config given (none: the URL and the defaults alone). */
export function parseTargetUrl(text: string, config: SshConfig = SshConfig.none()): SshTarget {
  const spec = parseSpec(text, '--target');
  const { hop, entry } = resolveHop(spec, config);
  const via = jumpsFor(spec.host, entry, config, 0);
  const address = hopAddress(hop);
  // A name the config resolved stays as the user wrote it; otherwise the full form, as ever.
  const resolved = entry.hostName !== undefined || (!spec.port && entry.port !== undefined) || (!spec.user && entry.user !== undefined) || via.length > 0;
  const url = resolved ? `ssh://${spec.user ? `${encodeURIComponent(spec.user)}@` : ''}${bracket(spec.host)}${spec.port ? `:${spec.port}` : ''}` : address;
  const notes = entry.skippedMatch ? [`${config.path ?? 'ssh_config'} has Match blocks, which mmaplab does not evaluate: only its Host blocks were applied to ${spec.host}`] : [];
  return { ...hop, url, address, via, ...(config.path ? { sshConfig: config.path } : {}), notes };
}
