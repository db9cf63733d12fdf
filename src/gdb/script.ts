/**
 * The gdb script of mmaplab debug, as a pure function of what the debug
 * guest gave: the kernel's symbols (when there are), the driver's .ko with its
 * debug info at the addresses the guest's /sys/module says, the breakpoint at
 * its mmap handler, and `mmaplab-map`, a command that has mmaplab send the
 * mapping test to the guest and then continues, so the breakpoint hits.
 * Two parts: the symbols (what an IDE sources before it connects itself) and
 * the connection.
 */
import type { ModuleSection } from '../parse/module-sections.js';

export interface GdbSetup {
  /** The port of QEMU's gdb stub on 127.0.0.1. */
  port: number;
  /** The kernel with its debug info; none: the module's symbols only. */
  vmlinux: string | undefined;
  /** Where gdb keeps its index of the kernel's symbols (made on the first load, 7 s; read in 1.5 s instead of 3.6 s after). */
  indexCache?: string;
  /** The driver built with debug info. */
  ko: string;
  sections: readonly ModuleSection[];
  /** The driver's mmap handler: the breakpoint; none: gdb looks for it in the guest's memory (`lookIn`) once connected. */
  handler: string | undefined;
  /** The module's variables (C identifiers), among which a file_operations or proc_ops may hold the handler. */
  lookIn?: readonly string[];
  /** Where gdb looks for the driver's sources. */
  sourceDir: string;
  /** The Unix socket mmaplab takes `map CHECK` requests on. */
  mapSocket: string;
  /** The checks mmaplab-map accepts, the first the default. */
  checks: readonly string[];
}

/** A path as one gdb argument (mmaplab's own paths; a quote or newline in one is refused, not escaped). */
/** A path for a gdb setting that takes the rest of its line as it is (no quotes): one line, no leading or trailing space. */
export function gdbSetting(p: string): string {
  if (/[\n\r]/.test(p) || p.trim() !== p) throw new Error(`a path gdb cannot be given safely: ${JSON.stringify(p)}`);
  return p;
}

export function gdbPath(p: string): string {
  if (/["\n\r\\]/.test(p)) throw new Error(`a path gdb cannot be given safely: ${JSON.stringify(p)}`);
  return `"${p}"`;
}

/**
 * Sections the kernel lists that are not the .ko's own: its copies of the
 * module's symbol and string tables, which gdb would warn it cannot find.
 */
const KERNEL_MADE = new Set(['.symtab', '.strtab']);

/** add-symbol-file with .text as the address and every other section by -s (.init.* too, while the guest still has them). */
export function addSymbolFile(ko: string, sections: readonly ModuleSection[]): string {
  const text = sections.find((s) => s.name === '.text');
  if (!text) throw new Error('the module has no .text section');
  const rest = sections.filter((s) => s !== text && !KERNEL_MADE.has(s.name)).map((s) => `-s ${s.name} ${s.addr}`);
  return ['add-symbol-file', gdbPath(ko), text.addr, ...rest].join(' ');
}

/** gdb python: `mmaplab-map [CHECK]` asks mmaplab over its socket to send the test, then continues. */
export function mapCommand(socket: string, checks: readonly string[]): string {
  return [
    'python',
    'import gdb, socket',
    'class MmaplabMap(gdb.Command):',
    `    """mmaplab-map [${checks.join('|')}]: have mmaplab run the mapping test in the guest, then continue (the breakpoint hits when it maps)."""`,
    '    def __init__(self):',
    '        super().__init__("mmaplab-map", gdb.COMMAND_USER)',
    '    def invoke(self, arg, from_tty):',
    `        check = arg.strip() or ${JSON.stringify(checks[0] ?? 'shared')}`,
    '        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
    `        s.connect(${JSON.stringify(socket)})`,
    '        s.sendall(("map %s\\n" % check).encode())',
    '        reply = s.makefile().readline().strip()',
    '        s.close()',
    '        if not reply.startswith("ok"):',
    '            raise gdb.GdbError("mmaplab: " + reply)',
    '        print("mmaplab: " + reply[2:].strip())',
    '        gdb.execute("continue")',
    'MmaplabMap()',
    'end',
  ].join('\n');
}

const HEADER = ['# mmaplab debug: generated; the addresses are the guest\'s /sys/module/<name>/sections', 'set pagination off', 'set confirm off'];

/** The kernel's symbols (with gdb's index of them cached), or the architecture alone without them. */
function kernelLines(s: Pick<GdbSetup, 'vmlinux' | 'indexCache'>): string[] {
  if (!s.vmlinux) return ['set architecture i386:x86-64'];
  // `set index-cache directory` takes the rest of the line as the path, quotes included (a quoted one made a folder named '"/root/..."' in the working directory).
  return [...(s.indexCache ? [`set index-cache directory ${gdbSetting(s.indexCache)}`, 'set index-cache enabled on'] : []), `file ${gdbPath(s.vmlinux)}`];
}

/** The module at its sections, its sources, the breakpoint, mmaplab-map. */
function moduleLines(s: GdbSetup): string[] {
  return [addSymbolFile(s.ko, s.sections), `directory ${gdbPath(s.sourceDir)}`, ...(s.handler ? [`break ${s.handler}`] : []), mapCommand(s.mapSocket, s.checks)];
}

/** What gdb runs before it connects: settings, symbols, the breakpoint, mmaplab-map. */
export function symbolsScript(s: GdbSetup): string {
  return `${[...HEADER, ...kernelLines(s), ...moduleLines(s)].join('\n')}\n`;
}

/**
 * gdb python, once connected: the mmap (or proc_mmap) of each of the module's
 * file_operations and proc_ops as the guest's memory holds it, a breakpoint at
 * each (a driver that sets its handler at run time, or through a macro).
 */
export function handlerFromMemory(names: readonly string[]): string {
  return [
    'python',
    'import gdb',
    'found = []',
    `for name in ${JSON.stringify(names.filter((n) => /^[A-Za-z_]\w*$/.test(n)))}:`,
    '    try:',
    '        v = gdb.parse_and_eval(name)',
    '        field = {"file_operations": "mmap", "proc_ops": "proc_mmap"}.get(v.type.strip_typedefs().unqualified().tag or "")',
    '        fn = int(v[field]) if field else 0',
    '    except gdb.error:',
    '        continue',
    '    if fn:',
    '        found.append("%s.%s" % (name, field))',
    '        gdb.execute("break *%d" % fn)',
    'print("mmaplab: mmap handler from the guest\'s memory: " + (", ".join(found) if found else "none (no file_operations or proc_ops of the module has an mmap)"))',
    'end',
  ].join('\n');
}

/** After the connection: the handler looked for in the guest's memory, when the sources named none. */
function afterConnect(s: GdbSetup): string[] {
  return [`target remote 127.0.0.1:${s.port}`, ...(!s.handler && s.lookIn?.length ? [handlerFromMemory(s.lookIn)] : [])];
}

/** The whole script for gdb on the terminal: the symbols, then the connection to the stub. */
export function gdbScript(s: GdbSetup): string {
  return `${symbolsScript(s)}${afterConnect(s).join('\n')}\n`;
}

/**
 * gdb started while the guest boots (mmaplab debug's own gdb), so its loading
 * of the kernel's symbols (1.5 s with its index) overlaps the boot: the
 * settings and the kernel's symbols where cached already, then it waits,
 * asking mmaplab over the socket, for the rest (lateScript) and sources it.
 */
export function earlyScript(s: Pick<GdbSetup, 'vmlinux' | 'indexCache' | 'mapSocket'>): string {
  const wait = [
    'python',
    'import gdb, socket',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
    `s.connect(${JSON.stringify(s.mapSocket)})`,
    's.sendall(b"ready\\n")',
    'reply = s.makefile().readline().strip()',
    's.close()',
    'if not reply.startswith("ok "):',
    '    raise gdb.GdbError("mmaplab: " + reply)',
    'gdb.execute("source " + reply[3:])',
    'end',
  ];
  return `${[...HEADER, ...(s.vmlinux ? kernelLines(s) : []), ...wait].join('\n')}\n`;
}

/** The rest, once the driver is loaded: the kernel's symbols if the early script had none, the module, the connection. */
export function lateScript(s: GdbSetup, early: Pick<GdbSetup, 'vmlinux'>): string {
  const kernel = s.vmlinux && early.vmlinux === s.vmlinux ? [] : kernelLines(s);
  return `${[...kernel, ...moduleLines(s), ...afterConnect(s)].join('\n')}\n`;
}
