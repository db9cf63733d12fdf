/**
 * The signs a module might not let its guest report truthfully. A module
 * controls the kernel it runs in, so mmaplab's verdicts hold only for a
 * module that does not tamper with the guest; these are the tampering means
 * a lab driver has no use for, read from the names the module links against
 * (its string table), never by running it. A sign is a hint for a person to
 * look, not a verdict.
 */
import { readFile } from 'node:fs/promises';
import type { TrustSign } from '../model/grade.js';

const SIGNS: ReadonlyArray<{ symbols: readonly string[]; what: string }> = [
  { symbols: ['register_kprobe', 'register_kretprobe', 'register_kprobes'], what: 'registers kprobes: it could change what the traced calls show' },
  { symbols: ['register_ftrace_function', 'ftrace_set_filter', 'ftrace_set_filter_ip'], what: 'hooks functions with ftrace: it could change what the kernel does or reports' },
  { symbols: ['tracepoint_probe_register'], what: 'attaches to tracepoints' },
  { symbols: ['kallsyms_lookup_name', 'kallsyms_on_each_symbol'], what: 'looks kernel symbols up by name, as code that patches the kernel does' },
  { symbols: ['call_usermodehelper', 'call_usermodehelper_exec', 'call_usermodehelper_setup'], what: 'starts programs in the guest' },
  { symbols: ['filp_open', 'kernel_write', 'kernel_read', 'vfs_write'], what: 'opens or writes files in the guest (the test program and the agent are files)' },
  { symbols: ['access_process_vm', 'find_get_task_by_vpid', 'send_sig', 'kill_pid'], what: "reaches into other processes (the test program's memory or signals)" },
];

/** The signs in a built module (.ko): each as the symbol that shows it. */
export async function trustSigns(ko: string | undefined): Promise<TrustSign[]> {
  if (!ko) return [];
  const bytes = await readFile(ko).catch(() => undefined);
  if (!bytes) return [];
  const found: TrustSign[] = [];
  for (const s of SIGNS) {
    // Names in an ELF string table stand between NULs.
    const hit = s.symbols.find((sym) => bytes.includes(Buffer.from(`\0${sym}\0`, 'latin1')));
    if (hit) found.push({ what: s.what, evidence: hit });
  }
  // The agent's record lines on the console begin {"t": a module printing them could forge results.
  if (bytes.includes(Buffer.from('{"t":', 'latin1')) || bytes.includes(Buffer.from('{\\"t\\":', 'latin1'))) found.push({ what: "holds text shaped like the guest agent's records: it could print forged results", evidence: '{"t":' });
  return found;
}

/** One line of a check's records.jsonl, as far as the consistency check reads it. */
interface SavedRecord {
  job?: number;
  t?: string;
  check?: string;
  status?: number;
}

/**
 * Signs in what the guest reported, across its two channels: the agent's
 * records (the job channel) and the kernel's own log (the serial console).
 * mmap-test writes "check X end status N" to the kernel log and then the
 * exit record from the same value, and a check's start record always comes
 * before its exit: a record the kernel log does not bear out, or records out
 * of order, mean something other than the agent wrote them. A console that
 * was cut (a flood) proves nothing, and is not judged.
 */
export function channelSigns(recordsJsonl: string, console: string): TrustSign[] {
  if (/^\[mmaplab: \d+ lines \(.*\) .* here are not kept\]$/m.test(console)) return [];
  const records: SavedRecord[] = [];
  for (const line of recordsJsonl.split('\n')) {
    if (!line.trim()) continue;
    try {
      records.push(JSON.parse(line) as SavedRecord);
    } catch {
      return [{ what: 'sent records that are not JSON', evidence: 'records.jsonl' }];
    }
  }
  const markers = new Map<string, number>();
  for (const m of console.matchAll(/mmaplab: check ([\w-]+) end status (-?\d+)/g)) markers.set(`${m[1]} ${m[2]}`, (markers.get(`${m[1]} ${m[2]}`) ?? 0) + 1);
  const signs: TrustSign[] = [];
  const unborne: string[] = [];
  const disorder: string[] = [];
  const started = new Set<string>();
  for (const r of records) {
    const at = `${r.job ?? 0} ${r.check ?? ''}`;
    if (r.t === 'start' && r.check) started.add(at);
    if (r.t !== 'exit' || !r.check) continue;
    const key = `${r.check} ${r.status}`;
    const left = markers.get(key) ?? 0;
    if (left > 0) markers.set(key, left - 1);
    else unborne.push(`${r.check} exited ${r.status}`);
    if (records.some((x) => x.t === 'start' && `${x.job ?? 0} ${x.check ?? ''}` === at) && !started.has(at)) disorder.push(r.check);
  }
  if (unborne.length) signs.push({ what: `reported results the kernel's own log does not bear out (the records say ${unborne.slice(0, 3).join(', ')}; the kernel log has no such end)`, evidence: 'records against the kernel log' });
  if (disorder.length) signs.push({ what: `sent records out of order (${disorder.slice(0, 3).join(', ')} ended before it started)`, evidence: 'the order of the records' });
  return signs;
}
