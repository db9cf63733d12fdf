/**
 * Host key verification against OpenSSH's known_hosts: plain and hashed
 * (|1|salt|hash) host names, [host]:port for other ports, wildcards and
 * negation, @revoked. A pure function of the file's text, so every verdict is
 * tested without a network.
 */
import { createHash, createHmac } from 'node:crypto';

export interface HostKey {
  /** e.g. ssh-ed25519 */
  type: string;
  /** The key as the SSH wire format encodes it (what known_hosts holds in base64). */
  blob: Buffer;
}

export type HostKeyVerdict =
  | { kind: 'known'; line: number }
  | { kind: 'unknown'; otherTypes: string[] }
  | { kind: 'changed'; line: number; knownFingerprint: string }
  | { kind: 'revoked'; line: number };

/** The key type named at the start of a wire-format key blob. */
export function hostKeyFromBlob(blob: Buffer): HostKey {
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  return { type: blob.subarray(4, 4 + len).toString('ascii') || 'unknown', blob };
}

/** As ssh-keygen -l prints it: SHA256:<base64, unpadded>. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The name known_hosts files a host under: host, or [host]:port when the port is not 22. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(name);
}

/** Whether a known_hosts host field (comma-separated patterns) names this host. */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const p of field.split(',')) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) matched = true;
  }
  return matched;
}

/** The lines of a known_hosts file that name keys, with their optional marker (@revoked, @cert-authority). */
function* entries(knownHosts: string): Generator<{ line: number; marker: string | undefined; hosts: string; type: string; blob: Buffer }> {
  for (const [i, raw] of knownHosts.split('\n').entries()) {
    const text = raw.trim();
    if (!text || text.startsWith('#')) continue;
    let fields = text.split(/\s+/);
    const marker = fields[0]!.startsWith('@') ? fields[0] : undefined;
    if (marker) fields = fields.slice(1);
    const [hosts, type, b64] = fields;
    if (hosts && type && b64) yield { line: i + 1, marker, hosts, type, blob: Buffer.from(b64, 'base64') };
  }
}

export function checkHostKey(knownHosts: string, host: string, port: number, key: HostKey): HostKeyVerdict {
  const name = knownHostsName(host, port);
  let known: number | undefined;
  let changed: { line: number; knownFingerprint: string } | undefined;
  const otherTypes = new Set<string>();
  for (const e of entries(knownHosts)) {
    if (e.marker === '@revoked') {
      if (e.blob.equals(key.blob)) return { kind: 'revoked', line: e.line };
      continue;
    }
    if (e.marker === '@cert-authority' || !hostFieldMatches(e.hosts, name)) continue;
    if (e.type !== key.type) otherTypes.add(e.type);
    else if (e.blob.equals(key.blob)) known ??= e.line;
    else changed ??= { line: e.line, knownFingerprint: fingerprint(e.blob) };
  }
  if (known !== undefined) return { kind: 'known', line: known };
  if (changed) return { kind: 'changed', ...changed };
  return { kind: 'unknown', otherTypes: [...otherTypes] };
}

/** The line to append once the user has accepted a key. */
export function knownHostsLine(host: string, port: number, key: HostKey): string {
  return `${knownHostsName(host, port)} ${key.type} ${key.blob.toString('base64')}`;
}

/** Host key algorithms for a key type in known_hosts (an RSA key is signed with SHA-2 today). */
const ALGORITHMS: Readonly<Record<string, readonly string[]>> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/**
 * The host key algorithms to ask for first: those of the keys known_hosts
 * already holds for this host, as OpenSSH does, so a host known by its RSA
 * key is not reported unknown because it also has an ed25519 one.
 */
export function preferredHostKeyAlgorithms(knownHosts: string, host: string, port: number): string[] {
  const name = knownHostsName(host, port);
  const out: string[] = [];
  for (const e of entries(knownHosts)) {
    if (e.marker || !hostFieldMatches(e.hosts, name)) continue;
    for (const a of ALGORITHMS[e.type] ?? []) if (!out.includes(a)) out.push(a);
  }
  return out;
}
