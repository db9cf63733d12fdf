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
import ssh2, { type AlgorithmList, type AuthMethod, type Client, type ClientChannel, type ConnectConfig, type ServerHostKeyAlgorithm } from 'ssh2';
import { MmaplabError } from '../util/errors.js';
import { checkHostKey, fingerprint, hostKeyFromBlob, knownHostsLine, preferredHostKeyAlgorithms, type HostKey, type HostKeyVerdict } from './known-hosts.js';
import type { SshTarget } from './url.js';

export interface ConnectOptions {
  target: SshTarget;
  /** A private key file (--identity); else ssh-agent, else ~/.ssh/id_{ed25519,ecdsa,rsa}. */
  identity: string | undefined;
  /** Default ~/.ssh/known_hosts. */
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

/** The keys and agent to try, in order; a key behind a passphrase is skipped with a note (use the agent). */
async function authMethods(opts: ConnectOptions): Promise<{ methods: AuthMethod[]; tried: string[] }> {
  const user = opts.target.user;
  const methods: AuthMethod[] = [];
  const tried: string[] = [];
  const addKey = async (path: string, explicit: boolean) => {
    let data: Buffer;
    try {
      data = await readFile(path);
    } catch (e) {
      if (explicit) throw new MmaplabError('usage', `--identity ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
      return;
    }
    const parsed = ssh2.utils.parseKey(data);
    if (parsed instanceof Error) {
      const encrypted = /passphrase|encrypted/i.test(parsed.message);
      if (explicit && !encrypted) throw new MmaplabError('usage', `--identity ${path} is not a private key mmaplab can read: ${parsed.message}`);
      if (explicit || encrypted) opts.onNote?.(`${path} is protected by a passphrase, which mmaplab never asks for: add it to ssh-agent (ssh-add ${path})`);
      return;
    }
    const first = Array.isArray(parsed) ? parsed[0] : parsed;
    if (!first?.isPrivateKey()) {
      if (explicit) throw new MmaplabError('usage', `--identity ${path} is a public key; give the private key (the file without .pub)`);
      return;
    }
    methods.push({ type: 'publickey', username: user, key: data } as AuthMethod);
    tried.push(path);
  };
  if (opts.identity) await addKey(opts.identity, true);
  if (process.env.SSH_AUTH_SOCK) {
    methods.push({ type: 'agent', username: user, agent: process.env.SSH_AUTH_SOCK } as AuthMethod);
    tried.push('ssh-agent');
  }
  if (!opts.identity) for (const k of DEFAULT_KEYS) await addKey(join(homedir(), '.ssh', k), false);
  return { methods, tried };
}

export class SshConnection {
  private lost: string | undefined;
  private readonly onLost = new Set<(reason: string) => void>();

  private constructor(
    private readonly client: Client,
    readonly target: SshTarget,
    /** The host key the connection was verified with. */
    readonly hostKey: HostKey,
  ) {
    const mark = (reason: string) => {
      if (this.lost) return;
      this.lost = reason;
      for (const f of this.onLost) f(reason);
    };
    client.on('error', (e: Error) => mark(e.message));
    client.on('close', () => mark('closed by the target or the network'));
  }

  get isLost(): boolean {
    return this.lost !== undefined;
  }

  static async connect(opts: ConnectOptions): Promise<SshConnection> {
    const { target } = opts;
    const knownHostsPath = opts.knownHosts ?? join(homedir(), '.ssh', 'known_hosts');
    const knownText = existsSync(knownHostsPath) ? await readFile(knownHostsPath, 'utf8') : '';
    const { methods, tried } = await authMethods(opts);
    if (methods.length === 0) {
      throw new MmaplabError('target', `no SSH key to log in to ${target.url} with`, {
        hint: 'pass --identity FILE, or start ssh-agent with your key (SSH_AUTH_SOCK), or create ~/.ssh/id_ed25519',
      });
    }
    const preferred = preferredHostKeyAlgorithms(knownText, target.host, target.port);
    let presented: HostKey | undefined;
    let verdict: HostKeyVerdict | undefined;
    const client = new ssh2.Client();
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      readyTimeout: opts.connectTimeoutS * 1000,
      // A machine that died under a job must be noticed in seconds, not at TCP's timeout.
      keepaliveInterval: 2000,
      keepaliveCountMax: 3,
      authHandler: methods,
      // The key types known_hosts holds for this host first (remove, then prepend: a reorder), as OpenSSH asks.
      ...(preferred.length ? { algorithms: { serverHostKey: { remove: preferred, prepend: preferred } as unknown as AlgorithmList<ServerHostKeyAlgorithm> } } : {}),
      hostVerifier: (key: Buffer) => {
        presented = hostKeyFromBlob(key);
        verdict = checkHostKey(knownText, target.host, target.port, presented);
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
      throw connectError(e, opts, presented, verdict, tried, knownHostsPath);
    });
    const conn = new SshConnection(client, target, presented!);
    if (verdict && verdict.kind !== 'known' && presented) {
      if (verdict.kind === 'unknown') {
        await mkdir(dirname(knownHostsPath), { recursive: true });
        await appendFile(knownHostsPath, `${knownHostsLine(target.host, target.port, presented)}\n`);
        opts.onNote?.(`added ${target.host}'s ${presented.type} key (${fingerprint(presented.blob)}) to ${knownHostsPath}, as --accept-host-key asked`);
      } else {
        opts.onNote?.(`${target.host}'s host key differs from ${knownHostsPath} line ${verdict.line}; accepted for this run only (--accept-host-key), the file is unchanged`);
      }
    }
    return conn;
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
  }
}

function connectError(e: Error & { level?: string; code?: string }, opts: ConnectOptions, presented: HostKey | undefined, verdict: HostKeyVerdict | undefined, tried: string[], knownHostsPath: string): MmaplabError {
  const { target } = opts;
  if (presented && verdict && verdict.kind !== 'known') {
    const fp = fingerprint(presented.blob);
    if (verdict.kind === 'revoked') {
      return new MmaplabError('target', `${target.host}'s ${presented.type} host key ${fp} is marked @revoked in ${knownHostsPath} (line ${verdict.line}); not connecting`);
    }
    const wrongAccept = opts.acceptHostKey ? ` (--accept-host-key ${opts.acceptHostKey} does not match it)` : '';
    if (verdict.kind === 'changed') {
      return new MmaplabError('target', `${target.host}'s ${presented.type} host key has CHANGED: it presents ${fp}, ${knownHostsPath} line ${verdict.line} has ${verdict.knownFingerprint}${wrongAccept}`, {
        hint: `someone may be intercepting the connection, or the machine was reinstalled; if you know it was, pass --accept-host-key ${fp} (for this run) or fix line ${verdict.line} of ${knownHostsPath}`,
      });
    }
    return new MmaplabError('target', `${target.host}'s host key is not in ${knownHostsPath}: it presents ${presented.type} ${fp}${wrongAccept}`, {
      hint: `check that fingerprint on the machine itself (ssh-keygen -lf /etc/ssh/ssh_host_${presented.type.replace(/^ssh-/, '').replace(/^ecdsa-sha2-nistp\d+$/, 'ecdsa')}_key.pub), then run again with --accept-host-key ${fp}`,
    });
  }
  if (e.level === 'client-authentication') {
    return new MmaplabError('target', `${target.url}: the server refused every key mmaplab offered for ${target.user} (${tried.join(', ')})`, {
      hint: `is the public key in ~${target.user}/.ssh/authorized_keys on ${target.host}? Pass --identity FILE for another key`,
    });
  }
  if (e.code === 'ECONNREFUSED') return new MmaplabError('target', `could not connect to ${target.host} port ${target.port}: connection refused`, { hint: 'is sshd running there, on that port?' });
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return new MmaplabError('target', `could not connect to ${target.host}: no such host`);
  if (/timed out/i.test(e.message)) return new MmaplabError('target', `could not connect to ${target.url} within ${opts.connectTimeoutS} s (${e.message})`);
  return new MmaplabError('target', `could not connect to ${target.url}: ${e.message}`);
}
