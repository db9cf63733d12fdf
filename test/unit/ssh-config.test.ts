import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expandTokens, hostMatches, SshConfig } from '../../src/ssh/ssh-config.js';
import { parseTargetUrl } from '../../src/ssh/url.js';

const home = mkdtempSync(join(tmpdir(), 'mmaplab-ssh-config-'));
const cfg = (text: string) => SshConfig.parse(text, join(home, '.ssh', 'config'), home);

const LAB = `
# The lab's machines
Host labbox
  HostName 10.1.2.3
  User lab
  Port 2222
  IdentityFile ~/.ssh/lab_%h_%r
  IdentityFile "/keys/with space"

Host *.lab.example.org !gw.lab.example.org
  User student
  Port 2200

Host board? 
  HostName %h.local

Host *
  User everyone
  Port 2022
  IdentityFile ~/.ssh/id_all
`;

describe('ssh_config Host patterns', () => {
  it('match with *, ? (one character) and !negation, case-insensitively', () => {
    expect(hostMatches(['*.lab.example.org'], 'pc1.lab.example.org')).toBe(true);
    expect(hostMatches(['*.lab.example.org', '!gw.lab.example.org'], 'gw.lab.example.org')).toBe(false);
    expect(hostMatches(['board?'], 'board7')).toBe(true);
    expect(hostMatches(['board?'], 'board')).toBe(false);
    expect(hostMatches(['board?'], 'board12')).toBe(false);
    expect(hostMatches(['LabBox'], 'labbox')).toBe(true);
    expect(hostMatches(['!labbox'], 'other')).toBe(false);
  });
});

describe('ssh_config resolution of --target', () => {
  const config = cfg(LAB);

  it('takes an alias to its HostName, User, Port and every IdentityFile in order, %h and ~ expanded', () => {
    const t = parseTargetUrl('ssh://labbox', config);
    expect(t).toMatchObject({ name: 'labbox', host: '10.1.2.3', user: 'lab', port: 2222, url: 'ssh://labbox', address: 'ssh://lab@10.1.2.3:2222', via: [], configured: true });
    // IdentityFile accumulates across blocks, in the order obtained; the first value wins for the rest.
    expect(t.identityFiles).toEqual([join(home, '.ssh', 'lab_10.1.2.3_lab'), '/keys/with space', join(home, '.ssh', 'id_all')]);
  });

  it('lets the URL override User and Port, as ssh does with its command line', () => {
    const t = parseTargetUrl('ssh://root@labbox:22', config);
    expect(t).toMatchObject({ user: 'root', port: 22, host: '10.1.2.3', url: 'ssh://root@labbox:22', address: 'ssh://root@10.1.2.3:22' });
    // %r is the user the URL named.
    expect(t.identityFiles[0]).toBe(join(home, '.ssh', 'lab_10.1.2.3_root'));
  });

  it('gives the first value obtained: an earlier wildcard block beats a later catch-all, a negated name falls through', () => {
    expect(parseTargetUrl('ssh://pc1.lab.example.org', config)).toMatchObject({ user: 'student', port: 2200, host: 'pc1.lab.example.org' });
    expect(parseTargetUrl('ssh://gw.lab.example.org', config)).toMatchObject({ user: 'everyone', port: 2022 });
    // HostName %h: the name as written.
    expect(parseTargetUrl('ssh://board7', config)).toMatchObject({ host: 'board7.local', user: 'everyone', port: 2022, url: 'ssh://board7' });
  });

  it('keeps the full ssh://user@host:port form when no config applies', () => {
    const t = parseTargetUrl('ssh://lab@10.0.0.5', SshConfig.none());
    expect(t).toMatchObject({ url: 'ssh://lab@10.0.0.5:22', address: 'ssh://lab@10.0.0.5:22', identityFiles: [], configured: false });
    expect(parseTargetUrl('ssh://me@other', cfg('Host labbox\n  User lab\n'))).toMatchObject({ url: 'ssh://me@other:22', user: 'me' });
    // A catch-all whose values the URL overrides changes nothing: still the full form.
    expect(parseTargetUrl('ssh://me@10.0.0.5:2200', cfg('Host *\n  User lab\n  Port 22\n'))).toMatchObject({ url: 'ssh://me@10.0.0.5:2200', address: 'ssh://me@10.0.0.5:2200' });
  });

  it('reads keywords case-insensitively and key=value lines', () => {
    expect(parseTargetUrl('ssh://x', cfg('host x\n  hostname=10.9.9.9\n  PORT 2201\n  user lab\n'))).toMatchObject({ host: '10.9.9.9', port: 2201, user: 'lab' });
  });

  it('reads HostKeyAlias, UserKnownHostsFile (the first file) and IdentitiesOnly', () => {
    const t = parseTargetUrl('ssh://x', cfg('Host x\n  HostKeyAlias lab-alias\n  UserKnownHostsFile ~/.ssh/known_%h /other\n  IdentitiesOnly yes\n'));
    expect(t).toMatchObject({ hostKeyAlias: 'lab-alias', knownHostsFile: join(home, '.ssh', 'known_x'), identitiesOnly: true });
  });

  it('skips Match blocks, and says so in a note', () => {
    const t = parseTargetUrl('ssh://x', cfg('Match host x exec "false"\n  User matched\nHost x\n  User lab\n'));
    expect(t.user).toBe('lab');
    expect(t.notes).toEqual([expect.stringMatching(/has Match blocks, which mmaplab does not evaluate: only its Host blocks were applied to x/)]);
  });

  it('refuses a Port that is not one, and a token it does not know, in one line', () => {
    expect(() => parseTargetUrl('ssh://x', cfg('Host x\n  Port ssh\n'))).toThrow(/Port 'ssh' for x is not a port number/);
    expect(() => parseTargetUrl('ssh://x', cfg('Host x\n  IdentityFile ~/.ssh/%C\n'))).toThrow(/IdentityFile '~\/.ssh\/%C' has the token %C/);
  });
});

describe('ssh_config Include', () => {
  it('splices included files in place (globbed, relative to ~/.ssh), a Host block of theirs ending with the file', () => {
    mkdirSync(join(home, '.ssh', 'config.d'), { recursive: true });
    writeFileSync(join(home, '.ssh', 'config.d', '10-lab'), 'Host labbox\n  HostName 10.7.7.7\n');
    writeFileSync(join(home, '.ssh', 'config.d', '20-more'), 'Host labbox\n  HostName 10.8.8.8\n  User fromfile\n');
    writeFileSync(join(home, '.ssh', 'config'), 'Include config.d/*\nHost labbox\n  Port 2345\n  User lab\n');
    const t = parseTargetUrl('ssh://labbox', SshConfig.load(undefined, home));
    expect(t).toMatchObject({ host: '10.7.7.7', user: 'fromfile', port: 2345 });
  });

  it('in a Host block, applies only to that host', () => {
    writeFileSync(join(home, 'inner.conf'), 'User inner\n');
    const config = cfg(`Host a\n  Include ${join(home, 'inner.conf')}\nHost *\n  User outer\n`);
    expect(parseTargetUrl('ssh://a', config).user).toBe('inner');
    expect(parseTargetUrl('ssh://b', config).user).toBe('outer');
  });

  it('stops an Include loop in one line', () => {
    writeFileSync(join(home, 'loop.conf'), `Include ${join(home, 'loop.conf')}\n`);
    expect(() => SshConfig.load(join(home, 'loop.conf'), home)).toThrow(/Include nested deeper than 16 files/);
  });

  it('takes --ssh-config none, and refuses a file that is not there', () => {
    expect(SshConfig.load('none', home).path).toBeUndefined();
    expect(SshConfig.load(undefined, join(home, 'nohome')).path).toBeUndefined();
    expect(() => SshConfig.load(join(home, 'missing'), home)).toThrow(/ssh_config \S+missing: no such file/);
  });
});

describe('ssh_config ProxyJump', () => {
  const JUMPS = `
Host target
  HostName 192.168.50.10
  ProxyJump gw,ops@inner:2201
Host gw
  HostName gw.example.org
  User jumper
  ProxyJump outer
Host inner
  ProxyJump ignored-by-the-chain
Host outer
  HostName 203.0.113.1
  Port 443
Host direct
  ProxyJump none
  ProxyCommand ssh -W %h:%p never
Host viacommand
  ProxyCommand ssh -W %h:%p gw
  ProxyJump gw
Host loop
  ProxyJump loop
`;
  const config = cfg(JUMPS);

  it('resolves each jump host through the config too; the first hop\'s own ProxyJump first, as ssh -J does', () => {
    const t = parseTargetUrl('ssh://lab@target', config);
    expect(t.via.map((h) => `${h.name}=${h.user}@${h.host}:${h.port}`)).toEqual([
      `outer=${userInfo().username}@203.0.113.1:443`,
      'gw=jumper@gw.example.org:22',
      'inner=ops@inner:2201',
    ]);
    expect(t).toMatchObject({ url: 'ssh://lab@target', address: 'ssh://lab@192.168.50.10:22' });
  });

  it('takes ProxyJump none as none, the first of ProxyJump and ProxyCommand as the one that counts', () => {
    expect(parseTargetUrl('ssh://direct', config).via).toEqual([]);
    expect(() => parseTargetUrl('ssh://viacommand', config)).toThrow(/ProxyCommand for viacommand is not supported .*use ProxyJump, or --ssh-config none$/);
  });

  it('takes ssh:// jump hosts and refuses a loop in one line', () => {
    expect(parseTargetUrl('ssh://x', cfg('Host x\n  ProxyJump ssh://j@[::1]:2200\n')).via).toMatchObject([{ user: 'j', host: '::1', port: 2200 }]);
    expect(() => parseTargetUrl('ssh://loop', config)).toThrow(/ProxyJump for loop leads through more than 8 jump hosts/);
    expect(() => parseTargetUrl('ssh://x', cfg('Host x\n  ProxyJump j@h/x\n'))).toThrow(/ProxyJump for x: 'j@h\/x' has a path/);
  });
});

describe('token expansion', () => {
  it('expands %% %h %n %p %r %u %d and a leading ~', () => {
    const t = { host: 'h.example', original: 'alias', port: 2222, remoteUser: 'lab' };
    expect(expandTokens('~/k_%h_%n_%p_%r_%%', t, 'IdentityFile', '/home/me')).toBe('/home/me/k_h.example_alias_2222_lab_%');
    expect(expandTokens('%d/%u', t, 'IdentityFile', '/home/me')).toBe(`/home/me/${userInfo().username}`);
  });
});
