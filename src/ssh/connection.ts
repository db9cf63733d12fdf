/**
 * One SSH connection to a target, with the ssh2 package: key or agent
 * authentication, the host key checked against known_hosts before anything
 * is sent, commands run as exec channels, files sent as a tar stream (no SFTP
 * server needed on the target), and a lost connection (a crash taking the
 * machine down, a cable pulled) noticed by keepalives and reported as such.
 */
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import ssh2, { type AlgorithmList, type AuthMethod, type Client, type ClientChannel, type ConnectConfig, type ServerHostKeyAlgorithm } from 'ssh2';
import { MmaplabError } from '../util/errors.js';
import { checkHostKey, fingerprint, hostKeyFromBlob, knownHostsLine, preferredHostKeyAlgorithms, type HostKey, type HostKeyVerdict } from './known-hosts.js';
import { hopAddress, type SshHop, type SshTarget } from './url.js';

export interface ConnectOptions {
  target: SshTarget;
  /** A private key file (--identity), for every hop; else ssh-agent, then IdentityFile or ~/.ssh/id_{ed25519,ecdsa,rsa}. */
  identity: string | undefined;
  /** --known-hosts; default each hop's UserKnownHostsFile, else ~/.ssh/known_hosts. */
  knownHosts: string | undefined;
  /** --accept-host-key: the fingerprint the user checked and trusts for this host. */
  acceptHostKey: string | undefined;
  /** Seconds to wait for the connection and handshake. */
  connectTimeoutS: number;
  onNote?: (note: string) => void;
}

/** What a command on the target gave (stdout as bytes: a downloaded .ko is binary). */
export interface RemoteResult {
  code: number | null;
  signal: string | undefined;
  stdout: Buffer;
  stderr: string;
}

export interface ExecOptions {
  stdin?: Buffer;
  onStdout?: (chunk: Buffer) => void;
  /** No answer by then: the exec is abandoned (its channel closed) and reported as a timeout. */
  timeoutMs?: number;
  pty?: boolean;
}

/** The connection went away under a command: the machine crashed, rebooted or dropped off the network. */
export class ConnectionLost extends Error {
  constructor(readonly reason: string) {
    super(`the connection was lost (${reason})`);
  }
}

export class ExecTimeout extends Error {}

const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

/** How a hop is named in messages: the host, or the alias and the host it stands for. */
export function hopLabel(h: SshHop): string {
  return h.name === h.host ? h.host : `${h.name} (${h.host})`;
}

/**
 * The keys and agent to try for one hop, in order: --identity (for every
 * hop), the agent (unless IdentitiesOnly), then the hop's IdentityFile
 * entries, else the default keys. A key behind a passphrase is skipped with a
 * note (use the agent).
 */
async function authMethods(opts: ConnectOptions, hop: SshHop): Promise<{ methods: AuthMethod[]; tried: string[] }> {
  const user = hop.user;
  const methods: AuthMethod[] = [];
  const tried: string[] = [];
  const addKey = async (path: string, source: '--identity' | 'IdentityFile' | undefined) => {
    const what = source === '--identity' ? `--identity ${path}` : `IdentityFile ${path} (for ${hop.name} in ${opts.target.sshConfig ?? 'ssh_config'})`;
    let data: Buffer;
    try {
      data = await readFile(path);
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
      if (source === '--identity') throw new MmaplabError('usage', `${what}: ${why}`);
      if (source) opts.onNote?.(`${what}: ${why}; skipped, as ssh does`);
      return;
    }
    const parsed = ssh2.utils.parseKey(data);
    if (parsed instanceof Error) {
      const encrypted = /passphrase|encrypted/i.test(parsed.message);
      if (source === '--identity' && !encrypted) throw new MmaplabError('usage', `${what} is not a private key mmaplab can read: ${parsed.message}`);
      if (source || encrypted) opts.onNote?.(encrypted ? `${path} is protected by a passphrase, which mmaplab never asks for: add it to ssh-agent (ssh-add ${path})` : `${what} is not a private key mmaplab can read (${parsed.message}); skipped`);
      return;
    }
    const first = Array.isArray(parsed) ? parsed[0] : parsed;
    if (!first?.isPrivateKey()) {
      if (source === '--identity') throw new MmaplabError('usage', `${what} is a public key; give the private key (the file without .pub)`);
      if (source) opts.onNote?.(`${what} is a public key, not the private one; skipped`);
      return;
    }
    methods.push({ type: 'publickey', username: user, key: data } as AuthMethod);
    tried.push(path);
  };
  if (opts.identity) await addKey(opts.identity, '--identity');
  if (process.env.SSH_AUTH_SOCK && !(hop.identitiesOnly && !opts.identity)) {
    methods.push({ type: 'agent', username: user, agent: process.env.SSH_AUTH_SOCK } as AuthMethod);
    tried.push('ssh-agent');
  }
  if (!opts.identity && hop.identityFiles.length) for (const f of hop.identityFiles) await addKey(f, 'IdentityFile');
  else if (!opts.identity) for (const k of DEFAULT_KEYS) await addKey(join(homedir(), '.ssh', k), undefined);
  return { methods, tried };
}

/** One hop logged in to: its client and the host key it was verified with. */
interface HopSession {
  client: Client;
  hostKey: HostKey;
}

/** Where a hop's host key is looked up: --known-hosts, its UserKnownHostsFile, ~/.ssh/known_hosts; under HostKeyAlias if set. */
function hostKeyPlace(opts: ConnectOptions, hop: SshHop): { path: string; name: string } {
  return { path: opts.knownHosts ?? hop.knownHostsFile ?? join(homedir(), '.ssh', 'known_hosts'), name: hop.hostKeyAlias ?? hop.host };
}

/** Log in to one hop, over `sock` (a channel forwarded by the hop before it) or TCP. */
async function connectHop(opts: ConnectOptions, hop: SshHop, sock: Duplex | undefined): Promise<HopSession> {
  const kh = hostKeyPlace(opts, hop);
  const knownText = existsSync(kh.path) ? await readFile(kh.path, 'utf8') : '';
  const { methods, tried } = await authMethods(opts, hop);
  if (methods.length === 0) {
    throw new MmaplabError('target', `no SSH key to log in to ${hop === opts.target ? opts.target.url : `the jump host ${hopAddress(hop)}`} with`, {
      hint: 'pass --identity FILE, or start ssh-agent with your key (SSH_AUTH_SOCK), or create ~/.ssh/id_ed25519',
    });
  }
  const preferred = preferredHostKeyAlgorithms(knownText, kh.name, hop.port);
  let presented: HostKey | undefined;
  let verdict: HostKeyVerdict | undefined;
  const client = new ssh2.Client();
  const config: ConnectConfig = {
    ...(sock ? { sock } : { host: hop.host, port: hop.port }),
    username: hop.user,
    readyTimeout: opts.connectTimeoutS * 1000,
    // A machine that died under a job must be noticed in seconds, not at TCP's timeout.
    keepaliveInterval: 2000,
    keepaliveCountMax: 3,
    authHandler: methods,
    // The key types known_hosts holds for this host first (remove, then prepend: a reorder), as OpenSSH asks.
    ...(preferred.length ? { algorithms: { serverHostKey: { remove: preferred, prepend: preferred } as unknown as AlgorithmList<ServerHostKeyAlgorithm> } } : {}),
    hostVerifier: (key: Buffer) => {
      presented = hostKeyFromBlob(key);
      verdict = checkHostKey(knownText, kh.name, hop.port, presented);
      if (verdict.kind === 'known') return true;
      if (verdict.kind === 'revoked') return false;
      return opts.acceptHostKey === fingerprint(presented.blob);
    },
  };
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', (e: Error & { level?: string; code?: string }) => reject(e));
    client.connect(config);
  }).catch((e: Error & { level?: string; code?: string }) => {
    client.end();
    throw connectError(e, { opts, hop, presented, verdict, tried, knownHostsPath: kh.path });
  });
  if (verdict && verdict.kind !== 'known' && presented) await noteAccepted(opts, hop, kh, verdict, presented);
  return { client, hostKey: presented! };
}

/** A key the user accepted by its fingerprint: an unknown one is added to known_hosts, a changed one only trusted this once. */
async function noteAccepted(opts: ConnectOptions, hop: SshHop, kh: { path: string; name: string }, verdict: HostKeyVerdict, presented: HostKey): Promise<void> {
  if (verdict.kind === 'unknown') {
    await mkdir(dirname(kh.path), { recursive: true });
    await appendFile(kh.path, `${knownHostsLine(kh.name, hop.port, presented)}\n`);
    opts.onNote?.(`added ${kh.name}'s ${presented.type} key (${fingerprint(presented.blob)}) to ${kh.path}, as --accept-host-key asked`);
  } else if (verdict.kind === 'changed') {
    opts.onNote?.(`${kh.name}'s host key differs from ${kh.path} line ${verdict.line}; accepted for this run only (--accept-host-key), the file is unchanged`);
  }
}

/** A channel from a jump host to the next hop, for the next client to speak SSH over (ProxyJump). */
function forwardTo(jump: HopSession, from: SshHop, to: SshHop): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    jump.client.forwardOut('127.0.0.1', 0, to.host, to.port, (err, ch) => {
      if (err) reject(new MmaplabError('target', `the jump host ${hopLabel(from)} could not reach ${to.host} port ${to.port} for ProxyJump (${err.message})`, { hint: 'does its sshd allow TCP forwarding (AllowTcpForwarding), and can it reach that address?' }));
      else resolve(ch);
    });
  });
}

export class SshConnection {
  private lost: string | undefined;
  private readonly onLost = new Set<(reason: string) => void>();

  private constructor(
    private readonly client: Client,
    readonly target: SshTarget,
    /** The host key the connection was verified with. */
    readonly hostKey: HostKey,
    /** ProxyJump hosts' connections, first hop first: closed after the target's. */
    private readonly jumps: Client[],
  ) {
    const mark = (reason: string) => {
      if (this.lost) return;
      this.lost = reason;
      for (const f of this.onLost) f(reason);
    };
    client.on('error', (e: Error) => mark(e.message));
    client.on('close', () => mark('closed by the target or the network'));
    for (const j of jumps) {
      j.on('error', (e: Error) => mark(`a jump host's connection failed: ${e.message}`));
      j.on('close', () => mark('the connection to a jump host closed'));
    }
  }

  get isLost(): boolean {
    return this.lost !== undefined;
  }

  /** Log in to the target, through its ProxyJump hosts if it has any, each host key checked against known_hosts. */
  static async connect(opts: ConnectOptions): Promise<SshConnection> {
    for (const n of opts.target.notes) opts.onNote?.(n);
    const hops = [...opts.target.via, opts.target];
    const sessions: HopSession[] = [];
    try {
      let sock: Duplex | undefined;
      for (const [i, hop] of hops.entries()) {
        const s = await connectHop(opts, hop, sock);
        sessions.push(s);
        const next = hops[i + 1];
        if (next) sock = await forwardTo(s, hop, next);
      }
    } catch (e) {
      for (const s of sessions.reverse()) s.client.end();
      throw e;
    }
    const last = sessions.pop()!;
    return new SshConnection(last.client, opts.target, last.hostKey, sessions.map((s) => s.client));
  }

  /** Called once if the connection is lost. */
  whenLost(f: (reason: string) => void): void {
    if (this.lost) f(this.lost);
    else this.onLost.add(f);
  }

  /** Run a command; resolves when it exits (non-zero is not an error), rejects with ConnectionLost or ExecTimeout. */
  exec(command: string, opts: ExecOptions = {}): Promise<RemoteResult> {
    if (this.lost) return Promise.reject(new ConnectionLost(this.lost));
    return new Promise((resolve, reject) => {
      this.client.exec(command, opts.pty ? { pty: true } : {}, (err, ch) => {
        if (err) return reject(this.lost ? new ConnectionLost(this.lost) : err);
        const out: Buffer[] = [];
        let stderr = '';
        let exit: { code: number | null; signal: string | undefined } = { code: null, signal: undefined };
        let timer: NodeJS.Timeout | undefined;
        const lostHandler = (reason: string) => finish(new ConnectionLost(reason));
        const finish = (e?: Error) => {
          if (timer) clearTimeout(timer);
          this.onLost.delete(lostHandler);
          if (e) {
            ch.close();
            reject(e);
          } else resolve({ ...exit, stdout: Buffer.concat(out), stderr });
        };
        this.onLost.add(lostHandler);
        if (opts.timeoutMs) timer = setTimeout(() => finish(new ExecTimeout(`no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
        ch.on('data', (d: Buffer) => {
          out.push(d);
          opts.onStdout?.(d);
        });
        ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        ch.on('exit', (code: number | null, signal?: string) => {
          exit = { code, signal };
        });
        ch.on('close', () => (this.lost ? finish(new ConnectionLost(this.lost)) : finish()));
        if (opts.stdin) ch.end(opts.stdin);
        else if (!opts.pty) ch.end();
      });
    });
  }

  /** A command on a pseudo-terminal, wired to the user's terminal (mmaplab shell). */
  interactive(command: string, input: NodeJS.ReadableStream, output: (text: string) => void, term: { rows: number; cols: number }, onOpen?: () => void): Promise<void> {
    if (this.lost) return Promise.reject(new ConnectionLost(this.lost));
    return new Promise((resolve, reject) => {
      this.client.exec(command, { pty: { term: process.env.TERM ?? 'xterm', rows: term.rows, cols: term.cols } }, (err, ch: ClientChannel) => {
        if (err) return reject(err);
        const onInput = (d: Buffer) => ch.write(d);
        input.on('data', onInput);
        // Only now is typed input forwarded: say "ready" no earlier.
        onOpen?.();
        ch.on('data', (d: Buffer) => output(d.toString()));
        ch.stderr.on('data', (d: Buffer) => output(d.toString()));
        ch.on('close', () => {
          input.off('data', onInput);
          if (this.lost) reject(new ConnectionLost(this.lost));
          else resolve();
        });
      });
    });
  }

  close(): void {
    this.onLost.clear();
    this.lost ??= 'closed by mmaplab';
    this.client.end();
    for (const j of [...this.jumps].reverse()) j.end();
  }
}

interface ConnectFailure {
  opts: ConnectOptions;
  hop: SshHop;
  presented: HostKey | undefined;
  verdict: HostKeyVerdict | undefined;
  tried: string[];
  knownHostsPath: string;
}

/** Why a hop could not be logged in to, as one line (and a hint); a jump host says that it is one. */
function connectError(e: Error & { level?: string; code?: string }, f: ConnectFailure): MmaplabError {
  const { opts, hop, presented, verdict, knownHostsPath } = f;
  const isTarget = hop === opts.target;
  const url = isTarget ? opts.target.url : `the jump host ${hopAddress(hop)}`;
  const host = hop.hostKeyAlias ?? hop.host;
  const jump = isTarget ? '' : ' (a ProxyJump host)';
  if (presented && verdict && verdict.kind !== 'known') {
    const fp = fingerprint(presented.blob);
    if (verdict.kind === 'revoked') {
      return new MmaplabError('target', `${host}'s${jump} ${presented.type} host key ${fp} is marked @revoked in ${knownHostsPath} (line ${verdict.line}); not connecting`);
    }
    const wrongAccept = opts.acceptHostKey ? ` (--accept-host-key ${opts.acceptHostKey} does not match it)` : '';
    if (verdict.kind === 'changed') {
      return new MmaplabError('target', `${host}'s${jump} ${presented.type} host key has CHANGED: it presents ${fp}, ${knownHostsPath} line ${verdict.line} has ${verdict.knownFingerprint}${wrongAccept}`, {
        hint: `someone may be intercepting the connection, or the machine was reinstalled; if you know it was, pass --accept-host-key ${fp} (for this run) or fix line ${verdict.line} of ${knownHostsPath}`,
      });
    }
    return new MmaplabError('target', `${host}'s${jump} host key is not in ${knownHostsPath}: it presents ${presented.type} ${fp}${wrongAccept}`, {
      hint: `check that fingerprint on the machine itself (ssh-keygen -lf /etc/ssh/ssh_host_${presented.type.replace(/^ssh-/, '').replace(/^ecdsa-sha2-nistp\d+$/, 'ecdsa')}_key.pub), then run again with --accept-host-key ${fp}`,
    });
  }
  if (e.level === 'client-authentication') {
    return new MmaplabError('target', `${url}: the server refused every key mmaplab offered for ${hop.user} (${f.tried.join(', ')})`, {
      hint: `is the public key in ~${hop.user}/.ssh/authorized_keys on ${hop.host}? Pass --identity FILE for another key`,
    });
  }
  if (e.code === 'ECONNREFUSED') return new MmaplabError('target', `could not connect to ${hopLabel(hop)}${jump} port ${hop.port}: connection refused`, { hint: 'is sshd running there, on that port?' });
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return new MmaplabError('target', `could not connect to ${hopLabel(hop)}${jump}: no such host${unknownAlias(hop, opts.target.sshConfig)}`);
  if (/timed out/i.test(e.message)) return new MmaplabError('target', `could not connect to ${url} within ${opts.connectTimeoutS} s (${e.message})`);
  return new MmaplabError('target', `could not connect to ${url}: ${e.message}`);
}

/** A name that resolves nowhere: say whether ssh_config knew it, since an alias is the likely intent. */
function unknownAlias(hop: SshHop, sshConfig: string | undefined): string {
  if (hop.name !== hop.host) return '';
  if (!sshConfig) return '';
  return hop.configured ? `; the Host entry for it in ${sshConfig} gives no HostName` : `, and no Host entry in ${sshConfig} names it`;
}
