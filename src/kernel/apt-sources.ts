/**
 * Reading the host's own apt sources, so that mmaplab fetches Debian kernels
 * from whatever archive this machine is already configured to use. No mirror
 * host is ever written into mmaplab itself.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface AptSource {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  signedBy: string | undefined;
  file: string;
}

/** Debian codenames, oldest first; "sid" is always unstable. */
export const DEBIAN_CODENAMES = ['stretch', 'buster', 'bullseye', 'bookworm', 'trixie', 'forky', 'duke', 'sid'] as const;

/** Parse one-line style (`deb [opts] uri suite comp...`). */
export function parseOneLine(text: string, file = '<sources.list>'): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const opts = m[2] ?? '';
    const signed = /signed-by=(\S+)/.exec(opts)?.[1];
    out.push({
      types: [m[1]!],
      uris: [m[3]!],
      suites: [m[4]!],
      components: (m[5] ?? '').split(/\s+/).filter(Boolean),
      signedBy: signed,
      file,
    });
  }
  return out;
}

/** Parse deb822 style (`Types: deb` stanzas in *.sources files). */
export function parseDeb822(text: string, file = '<x.sources>'): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue;
      if (/^\s/.test(raw) && last) {
        fields.set(last, `${fields.get(last)}\n${raw.trim()}`);
        continue;
      }
      const m = /^([\w-]+):\s*(.*)$/.exec(raw);
      if (!m) continue;
      last = m[1]!.toLowerCase();
      fields.set(last, m[2]!);
    }
    if (!fields.has('uris') || /^no$/i.test(fields.get('enabled') ?? 'yes')) continue;
    const words = (k: string) => (fields.get(k) ?? '').split(/\s+/).filter(Boolean);
    const signed = fields.get('signed-by');
    out.push({
      types: words('types'),
      uris: words('uris'),
      suites: words('suites'),
      components: words('components'),
      // An inline key block is not a path we can reuse.
      signedBy: signed && !signed.includes('\n') && signed.startsWith('/') ? signed.trim() : undefined,
      file,
    });
  }
  return out;
}

export function readHostSources(etc = '/etc/apt'): AptSource[] {
  const out: AptSource[] = [];
  const tryRead = (p: string) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return undefined;
    }
  };
  const main = tryRead(join(etc, 'sources.list'));
  if (main) out.push(...parseOneLine(main, join(etc, 'sources.list')));
  let names: string[] = [];
  try {
    names = readdirSync(join(etc, 'sources.list.d')).sort();
  } catch {
    /* no sources.list.d */
  }
  for (const n of names) {
    const p = join(etc, 'sources.list.d', n);
    const t = n.endsWith('.list') ? tryRead(p) : n.endsWith('.sources') ? tryRead(p) : undefined;
    if (t === undefined) continue;
    out.push(...(n.endsWith('.list') ? parseOneLine(t, p) : parseDeb822(t, p)));
  }
  return out;
}

export interface DebianArchives {
  /** Serves <codename>, -updates, -backports. */
  archive: string | undefined;
  /** Serves <codename>-security. */
  security: string | undefined;
  signedBy: string | undefined;
}

function suiteBase(suite: string): string {
  return suite.replace(/\/updates$/, '').replace(/-(updates|security|backports|proposed-updates)$/, '');
}

/** Pick the Debian archive and security URIs out of the host's sources. */
export function findDebianArchives(sources: readonly AptSource[]): DebianArchives {
  const isDebian = (s: AptSource) =>
    s.types.includes('deb') && s.suites.some((x) => (DEBIAN_CODENAMES as readonly string[]).includes(suiteBase(x)) || /^(stable|testing|unstable|oldstable)/.test(x));
  const debian = sources.filter(isDebian);
  const isSecurity = (x: string) => /-security$|\/updates$/.test(x);
  const archive = debian.find((s) => s.suites.some((x) => !isSecurity(x)));
  const security = debian.find((s) => s.suites.some(isSecurity));
  return {
    archive: archive?.uris[0]?.replace(/\/+$/, ''),
    security: security?.uris[0]?.replace(/\/+$/, ''),
    signedBy: archive?.signedBy ?? security?.signedBy,
  };
}
