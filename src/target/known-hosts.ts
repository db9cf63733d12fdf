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

export function checkHostKey(knownHosts: string, host: string, port: number, key: HostKey): HostKeyVerdict {
  const name = knownHostsName(host, port);
  let known: number | undefined;
  let changed: { line: number; knownFingerprint: string } | undefined;
  const otherTypes = new Set<string>();
  const lines = knownHosts.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    let fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]!.startsWith('@')) {
      marker = fields[0];
      fields = fields.slice(1);
    }
    const [hosts, type, b64] = fields;
    if (!hosts || !type || !b64) continue;
    const blob = Buffer.from(b64, 'base64');
    if (marker === '@revoked') {
      if (blob.equals(key.blob)) return { kind: 'revoked', line: i + 1 };
      continue;
    }
    if (marker === '@cert-authority' || !hostFieldMatches(hosts, name)) continue;
    if (type !== key.type) otherTypes.add(type);
    else if (blob.equals(key.blob)) known ??= i + 1;
    else changed ??= { line: i + 1, knownFingerprint: fingerprint(blob) };
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
  for (const raw of knownHosts.split('\n')) {
    const fields = raw.trim().split(/\s+/);
    if (!fields[0] || fields[0].startsWith('#') || fields[0].startsWith('@')) continue;
    if (fields.length < 3 || !hostFieldMatches(fields[0], name)) continue;
    for (const a of ALGORITHMS[fields[1]!] ?? []) if (!out.includes(a)) out.push(a);
  }
  return out;
}
