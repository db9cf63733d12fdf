/**
 * Kbuild's compiler probes, answered once per kernel and compiler. Every
 * out-of-tree build re-runs some thirty `cc-option` tests (a compile of
 * /dev/null each, 40 ms apiece here: together more than a small driver's own
 * compile), and their answers depend only on the compiler and the kernel's
 * flags. mmaplab records them once by building a module of its own, trusted,
 * with a recording CC; later builds get a CC wrapper that answers exactly those
 * calls from the record and hands every other call to the compiler. Only
 * mmaplab writes the record; a sandboxed build sees the wrapper read-only, so
 * nothing one submission's build does reaches another's.
 */
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Kernel } from '../kernel/types.js';
import { kbuildArchArgs } from '../kernel/arch.js';
import type { ExecResult } from '../util/exec.js';
import { exists, Hasher, installDirAtomic, removeTree } from '../util/fsx.js';

/** Bumped when what is recorded or how the wrapper answers changes. */
const PROBE_FORMAT = 3;

export interface ProbeAnswers {
  /** The CC to pass to Kbuild. */
  wrapper: string;
  /** Its folder (a sandboxed build binds it read-only). */
  dir: string;
  probes: number;
}

const PROBE_MODULE = `// mmaplab's probe module: built once per kernel and compiler to record Kbuild's compiler probes.
#include <linux/module.h>
MODULE_LICENSE("GPL");
static int __init probe_init(void) { return 0; }
module_init(probe_init);
`;

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The recording CC: runs the compiler, and for a compile of /dev/null writes its status and arguments, one per line, to a file of its own. */
function recorder(cc: string, dir: string): string {
  return `#!/bin/sh
${sq(cc)} "$@"
st=$?
case " $* " in
*" /dev/null "*) { echo "$st"; for a in "$@"; do echo "$a"; done; } > ${sq(dir)}/probe.$$ ;;
esac
exit "$st"
`;
}

/** A probe's key: its arguments, the output file's name (a new temporary folder each time) left out. */
export function probeKey(args: readonly string[]): string {
  return args.map((a, i) => `\n${args[i - 1] === '-o' ? '@OUT@' : a}`).join('');
}

/** What the recorder wrote: the probes, by key, with their exit status. Calls that are not Kbuild's try-run probes are left out. */
export function parseProbeRecords(files: readonly string[]): Map<string, number> {
  const answers = new Map<string, number>();
  for (const text of files) {
    const [status, ...args] = text.replace(/\n$/, '').split('\n');
    const out = args.indexOf('-o');
    // The output goes to Kbuild's temporary folder: <M>/.tmp_<pid>/tmp, or .tmp_<pid>/tmp from 6.13 on (it builds from inside M=).
    if (!/^\d+$/.test(status ?? '') || out < 0 || !/(^|\/)\.tmp_\d+\//.test(args[out + 1] ?? '') || !args.includes('/dev/null')) continue;
    answers.set(probeKey(args), Number(status));
  }
  return answers;
}

/** The CC wrapper: a call whose key was recorded exits with its recorded status; any other goes to the compiler. */
export function wrapperScript(cc: string, answers: ReadonlyMap<string, number>, about: string): string {
  const cases = [...answers].map(([k, st]) => `  ${sq(k)}) exit ${st} ;;`).join('\n');
  return `#!/bin/sh
# mmaplab: the answers of Kbuild's compiler probes (${about}), recorded by
# building mmaplab's own probe module; a call that is not one of them goes to the compiler.
case " $* " in
*" /dev/null "*)
  k=
  o=0
  for a in "$@"; do
    [ "$o" = 1 ] && a=@OUT@
    o=0
    [ "$a" = -o ] && o=1
    k="$k
$a"
  done
  # shellcheck disable=SC2016 # the recorded arguments, literally
  case "$k" in
${cases}
  esac
  ;;
esac
exec ${sq(cc)} "$@"
`;
}

/**
 * The wrapper for this kernel and compiler, made now if need be by `record`
 * (a trusted build step: on the host, or in the build root); undefined when
 * the probe module does not build (builds then run every probe, as Kbuild does).
 */
export async function probeAnswers(p: {
  kernel: Kernel;
  cc: string;
  describe: string;
  cacheDir: string;
  /** The compiler itself (its file's size and time, or the build root it is in): an updated compiler is asked again. */
  identity: string;
  record: (argv: string[], tree: string) => Promise<ExecResult>;
}): Promise<ProbeAnswers | undefined> {
  const key = new Hasher().add('format', String(PROBE_FORMAT)).add('kernel', `${p.kernel.release} ${p.kernel.packageVersion}`).add('cc', `${p.cc} ${p.describe}`).add('binary', p.identity).digest();
  const dir = join(p.cacheDir, 'builds', `probes-${p.kernel.release}-${key}`);
  const wrapper = join(dir, 'cc');
  const count = async () => (await readFile(join(dir, 'count'), 'utf8').catch(() => '0')).trim();
  // A record that could not be made (a build stopped under load, say) is not kept: the next build tries again, and this one runs every probe.
  if (!(await exists(dir))) await installDirAtomic(dir, (staging) => record(p, staging)).catch(() => undefined);
  return (await exists(wrapper)) ? { wrapper, dir, probes: Number(await count()) } : undefined;
}

/** Build the probe module with the recording CC, and write the wrapper from what it recorded. */
async function record(p: Parameters<typeof probeAnswers>[0], staging: string): Promise<void> {
  const tree = join(staging, 'tree');
  const records = join(staging, 'records');
  await mkdir(tree, { recursive: true });
  await mkdir(records, { recursive: true });
  await writeFile(join(tree, 'mmaplab_probe.c'), PROBE_MODULE);
  await writeFile(join(tree, 'Kbuild'), 'obj-m := mmaplab_probe.o\n');
  const rec = join(staging, 'record-cc');
  await writeFile(rec, recorder(p.cc, records));
  await chmod(rec, 0o755);
  const r = await p.record(['make', '-C', p.kernel.headersDir, ...kbuildArchArgs(p.kernel.arch), `M=${tree}`, `CC=${rec}`, 'modules'], tree);
  if (!r.ok) throw new Error(`the probe module did not build: ${r.all.slice(-500)}`);
  const answers = parseProbeRecords(await Promise.all((await readdir(records)).map((f) => readFile(join(records, f), 'utf8'))));
  if (!answers.size) throw new Error('Kbuild made no compiler probe');
  await writeFile(join(staging, 'cc'), wrapperScript(p.cc, answers, `${p.kernel.release}, ${p.describe}`));
  await chmod(join(staging, 'cc'), 0o755);
  await writeFile(join(staging, 'count'), `${answers.size}\n`);
  await Promise.all([removeTree(tree), removeTree(records)]);
}

/** A host compiler's identity for the record's key: its file's path, size and time. */
export async function compilerIdentity(path: string | undefined): Promise<string> {
  const st = path ? await stat(path).catch(() => undefined) : undefined;
  return st ? `${path} ${st.size} ${st.mtimeMs}` : 'unknown';
}
