/**
 * Text that came from code no one trusts (a guest's console, a driver's
 * names) made harmless to show: control characters become visible \xNN, as
 * the kernel itself writes them in /dev/kmsg. On the way to a terminal,
 * mmaplab's own colours (SGR sequences) are the only escapes that survive.
 */

/** C0 controls but tab, DEL, and the C1 controls (which some terminals obey as 8-bit escapes). */
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;
const hex = (c: string) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** One line of untrusted text: every control character (newline included) shown as \xNN. */
export function visibleControls(s: string): string {
  return s.replace(CONTROLS, hex);
}

const ESCAPES = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/** Text of several lines: control characters but newline and tab shown as \xNN. */
export function visibleEscapes(s: string): string {
  return s.replace(ESCAPES, hex);
}

/** SGR (colour) sequences, the only escapes mmaplab's renderers write. */
const SGR = /^\x1b\[[0-9;]*m/;
const TERMINAL_UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

/**
 * Output on its way to a terminal: newlines and tabs kept, colours kept, any
 * other control character or escape sequence (cursor moves, clear screen,
 * window titles, OSC 52 clipboard writes, terminal queries, carriage returns
 * that overwrite a line) shown as \xNN instead of obeyed.
 */
export function terminalSafe(s: string): string {
  if (!TERMINAL_UNSAFE.test(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\x1b') {
      const m = SGR.exec(s.slice(i, i + 32));
      if (m) {
        out += m[0];
        i += m[0].length - 1;
        continue;
      }
    }
    out += TERMINAL_UNSAFE.test(c) ? hex(c) : c;
  }
  return out;
}
