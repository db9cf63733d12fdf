import { describe, expect, it } from 'vitest';
import { findDebianArchives, parseDeb822, parseOneLine } from '../../src/kernel/apt-sources.js';
import { aptLinesFor } from '../../src/kernel/debian.js';

// Hosts here are placeholders: mmaplab never names a real mirror.
const DEB822 = `Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://disabled.example/debian
Suites: trixie
Components: main
Enabled: no
`;

describe('host apt sources', () => {
  it('reads deb822 stanzas, skipping disabled ones', () => {
    const s = parseDeb822(DEB822);
    expect(s).toHaveLength(2);
    expect(s[0]).toMatchObject({ uris: ['http://mirror.example/debian'], suites: ['bookworm', 'bookworm-updates'], components: ['main'] });
  });

  it('reads one-line entries with options', () => {
    const s = parseOneLine(
      '# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bullseye main contrib\ndeb-src http://mirror.example/debian bullseye main\n',
    );
    expect(s).toHaveLength(2);
    expect(s[0]).toMatchObject({ types: ['deb'], uris: ['http://mirror.example/debian'], suites: ['bullseye'], signedBy: '/k.gpg' });
  });

  it('finds the archive and the security archive, ignoring non-Debian repositories', () => {
    const sources = [
      ...parseOneLine('deb https://vendor.example/apt cloud-sdk-bookworm main\n'),
      ...parseDeb822(DEB822),
      ...parseOneLine('deb http://ubuntu.example/ubuntu jammy main\n'),
    ];
    expect(findDebianArchives(sources)).toEqual({
      archive: 'http://mirror.example/debian',
      security: 'http://security.example/debian-security',
      signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg',
    });
  });

  it('finds nothing on a host without Debian sources', () => {
    expect(findDebianArchives(parseOneLine('deb http://ubuntu.example/ubuntu jammy main\n')).archive).toBeUndefined();
  });

  it('lists -updates and -security for a stable release, only the suite for sid and backports', () => {
    const a = { archive: 'http://m.example/debian', security: 'http://s.example/debian-security', signedBy: undefined };
    expect(aptLinesFor('bookworm', a).map((l) => `${l.uri} ${l.suite}`)).toEqual([
      'http://m.example/debian bookworm',
      'http://m.example/debian bookworm-updates',
      'http://s.example/debian-security bookworm-security',
    ]);
    expect(aptLinesFor('sid', a).map((l) => l.suite)).toEqual(['sid']);
    expect(aptLinesFor('bookworm-backports', a).map((l) => l.suite)).toEqual(['bookworm-backports']);
    expect(aptLinesFor('bookworm', { archive: undefined, security: undefined, signedBy: undefined })).toEqual([]);
  });
});
