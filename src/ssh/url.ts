/** `--target ssh://user@host[:port]`: the one form mmaplab takes, parsed strictly. */
import { userInfo } from 'node:os';
import { usageError } from '../util/errors.js';

export interface SshTarget {
  user: string;
  host: string;
  port: number;
  /** Normalised: ssh://user@host:port. */
  url: string;
}

const FORM = 'ssh://user@host[:port]';

export function parseTargetUrl(text: string): SshTarget {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw usageError(`--target '${text}' is not a URL`, `write it as ${FORM}`);
  }
  if (u.protocol !== 'ssh:') throw usageError(`--target '${text}': only ssh:// targets are supported`, `write it as ${FORM}`);
  if (u.password) throw usageError(`--target '${text}' carries a password: mmaplab never takes one on the command line`, 'use a key (--identity FILE) or ssh-agent (SSH_AUTH_SOCK)');
  if ((u.pathname && u.pathname !== '/') || u.search || u.hash) throw usageError(`--target '${text}' has a path or query; mmaplab wants only ${FORM}`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw usageError(`--target '${text}' names no host`, `write it as ${FORM}`);
  const user = decodeURIComponent(u.username) || userInfo().username;
  const port = u.port ? Number(u.port) : 22;
  return { user, host, port, url: `ssh://${user}@${host.includes(':') ? `[${host}]` : host}:${port}` };
}
