import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkHostKey, fingerprint, hostFieldMatches, hostKeyFromBlob, knownHostsLine } from '../../src/ssh/known-hosts.js';
import { headersInstall, parseOsRelease, toolchainInstall } from '../../src/ssh/packages.js';
import { consoleLine, isOwnKernel } from '../../src/ssh/remote-lab.js';
import { parseTargetUrl } from '../../src/ssh/url.js';
import { parseKernelLog } from '../../src/parse/kmsg.js';
import { FIXTURES } from '../helpers.js';

const dir = join(FIXTURES, 'ssh');
const key = (name: string) => hostKeyFromBlob(Buffer.from(readFileSync(join(dir, `${name}.pub`), 'utf8').split(' ')[1]!, 'base64'));
// Written by ssh-keygen -H (hashed host names) and ssh-keygen -l (fingerprints) from OpenSSH.
const hashed = readFileSync(join(dir, 'known_hosts'), 'utf8');
const plain = readFileSync(join(dir, 'known_hosts.plain'), 'utf8');
const fingerprints = Object.fromEntries(readFileSync(join(dir, 'fingerprints.txt'), 'utf8').trim().split('\n').map((l) => l.split(' ') as [string, string]));

describe('known_hosts', () => {
  it('computes the fingerprints ssh-keygen -l prints', () => {
    for (const k of ['k1', 'k2', 'k3']) expect(fingerprint(key(k).blob)).toBe(fingerprints[k]);
    expect(key('k3').type).toBe('ecdsa-sha2-nistp256');
  });

  for (const [name, text] of [['hashed by ssh-keygen -H', hashed], ['plain', plain]] as const) {
    describe(name, () => {
      it('knows a host on port 22 by its key, and only that key', () => {
        expect(checkHostKey(text, 'lab.example.org', 22, key('k1')).kind).toBe('known');
        const v = checkHostKey(text, 'lab.example.org', 22, key('k2'));
        expect(v).toMatchObject({ kind: 'changed', knownFingerprint: fingerprints.k1 });
      });
      it('files another port under [host]:port, apart from port 22', () => {
        expect(checkHostKey(text, 'lab.example.org', 2222, key('k2')).kind).toBe('known');
        expect(checkHostKey(text, 'lab.example.org', 2222, key('k1')).kind).toBe('changed');
        expect(checkHostKey(text, 'hashed.example.org', 2200, key('k1')).kind).toBe('known');
        expect(checkHostKey(text, 'hashed.example.org', 22, key('k1')).kind).toBe('changed');
      });
      it('calls a host it has never seen unknown', () => {
        expect(checkHostKey(text, 'new.example.org', 22, key('k1'))).toEqual({ kind: 'unknown', otherTypes: [] });
        expect(checkHostKey(text, 'lab.example.org', 2223, key('k1')).kind).toBe('unknown');
      });
      it('refuses a revoked key for every host', () => {
        expect(checkHostKey(text, 'lab.example.org', 22, key('k3')).kind).toBe('revoked');
        expect(checkHostKey(text, 'anywhere.example.org', 22, key('k3')).kind).toBe('revoked');
      });
    });
  }

  it('matches wildcards and honours negation', () => {
    expect(checkHostKey(plain, 'node1.cluster.example.org', 22, key('k1')).kind).toBe('known');
    expect(checkHostKey(plain, 'bad.cluster.example.org', 22, key('k1')).kind).toBe('unknown');
    expect(hostFieldMatches('[127.0.0.1]:2222', '[127.0.0.1]:2222')).toBe(true);
    // Brackets are literal, not a character class.
    expect(hostFieldMatches('[127.0.0.1]:2222', '1:2222')).toBe(false);
  });

  it('writes the line it reads back as known', () => {
    const line = knownHostsLine('127.0.0.1', 2222, key('k2'));
    expect(line).toMatch(/^\[127\.0\.0\.1\]:2222 ssh-ed25519 AAAA/);
    expect(checkHostKey(line, '127.0.0.1', 2222, key('k2')).kind).toBe('known');
  });
});

describe('--target', () => {
  it('takes ssh://user@host[:port]', () => {
    expect(parseTargetUrl('ssh://lab@10.0.0.5')).toMatchObject({ user: 'lab', host: '10.0.0.5', name: '10.0.0.5', port: 22, url: 'ssh://lab@10.0.0.5:22', address: 'ssh://lab@10.0.0.5:22', via: [] });
    expect(parseTargetUrl('ssh://lab@[::1]:2200')).toMatchObject({ host: '::1', port: 2200, url: 'ssh://lab@[::1]:2200' });
    expect(parseTargetUrl('ssh://board.local:2222').user).not.toBe('');
  });
  it('refuses other forms and any password, with the form to use', () => {
    expect(() => parseTargetUrl('lab@host')).toThrow(/not a URL/);
    expect(() => parseTargetUrl('http://lab@host')).toThrow(/only ssh:\/\//);
    expect(() => parseTargetUrl('ssh://lab:secret@host')).toThrow(/never takes one/);
    expect(() => parseTargetUrl('ssh://lab@host/tmp')).toThrow(/path/);
  });
});

describe('the own-kernel guard', () => {
  it('is decided by boot_id, whatever the address', () => {
    const id = 'bc223b7c-0b98-4cf3-8756-773f3485c83f';
    expect(isOwnKernel(id, `${id}\n`)).toBe(true);
    expect(isOwnKernel(id, '8237cc24-8c19-4b19-8a9e-78bdbcacaa47')).toBe(false);
    expect(isOwnKernel('', '')).toBe(false);
  });
});

describe('target packages', () => {
  it('names the headers package of the target distribution', () => {
    const debian = parseOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n');
    const ubuntu = parseOsRelease('ID=ubuntu\nID_LIKE=debian\n');
    const rocky = parseOsRelease('ID="rocky"\nID_LIKE="rhel centos fedora"\n');
    expect(debian.prettyName).toBe('Debian GNU/Linux 12 (bookworm)');
    expect(headersInstall(debian, '6.1.0-56-cloud-amd64')).toBe('sudo apt-get install linux-headers-6.1.0-56-cloud-amd64');
    expect(headersInstall(ubuntu, '6.8.0-45-generic')).toBe('sudo apt-get install linux-headers-6.8.0-45-generic');
    expect(headersInstall(rocky, '5.14.0-427.el9.x86_64')).toBe('sudo dnf install kernel-devel-5.14.0-427.el9.x86_64');
    expect(toolchainInstall(ubuntu)).toBe('sudo apt-get install build-essential');
    expect(headersInstall(parseOsRelease(''), '6.6.1')).toMatch(/kernel headers for 6\.6\.1/);
  });
});

describe("a target's kernel log", () => {
  it('reads /dev/kmsg records as console lines the log parser knows', () => {
    const line = consoleLine('6,1234,66972674,-;mmaplab: step insmod');
    expect(line).toBe('[   66.972674] mmaplab: step insmod');
    expect(parseKernelLog(line)[0]).toMatchObject({ text: 'mmaplab: step insmod' });
    expect(consoleLine('[   66.972674] already dmesg -w')).toBe('[   66.972674] already dmesg -w');
  });
});

describe('jobs a lost or hung target never began', () => {
  it('are not run, with the reason, and add no note of their own', async () => {
    const { assessJob } = await import('../../src/diagnose/assess.js');
    for (const [end, reason] of [
      ['connection-lost', 'the connection to the target was lost before this job'],
      ['timeout', 'an earlier job hung the target; no job runs after it'],
    ] as const) {
      const a = assessJob({ strategy: 'fault', checks: ['private', 'shared'], jobId: 3, end, records: [], console: '', boot: 1 });
      expect(a.results.map((r) => r.outcome)).toEqual([
        { kind: 'not-run', reason },
        { kind: 'not-run', reason },
      ]);
      expect(a.notes).toEqual([]);
    }
  });
});

describe('host key algorithms', () => {
  it('asks first for the key types known_hosts holds for the host, as OpenSSH does', async () => {
    const { preferredHostKeyAlgorithms } = await import('../../src/ssh/known-hosts.js');
    // lab.example.org: ed25519 (k1) and ECDSA (k3) lines, hashed or not; the @revoked line is no preference.
    expect(preferredHostKeyAlgorithms(hashed, 'lab.example.org', 22)).toEqual(['ssh-ed25519', 'ecdsa-sha2-nistp256']);
    expect(preferredHostKeyAlgorithms(plain, 'lab.example.org', 2222)).toEqual(['ssh-ed25519']);
    expect(preferredHostKeyAlgorithms('old.example.org ssh-rsa AAAAB3NzaC1yc2E=\n', 'old.example.org', 22)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    expect(preferredHostKeyAlgorithms(plain, 'new.example.org', 22)).toEqual([]);
  });
});

describe('--identity', () => {
  it('refuses a public key before connecting, naming the file to give instead', async () => {
    const { SshConnection } = await import('../../src/ssh/connection.js');
    const pub = join(dir, 'k1.pub');
    await expect(
      SshConnection.connect({ target: parseTargetUrl('ssh://lab@127.0.0.1:1'), identity: pub, knownHosts: undefined, acceptHostKey: undefined, connectTimeoutS: 5 }),
    ).rejects.toThrow(`--identity ${pub} is a public key; give the private key (the file without .pub)`);
  });
});
