/**
 * `mmaplab config [command...]`: the settings a command would run with, and
 * where each came from (the command line, the environment, the project's
 * config file, the built-in default), without running it. The command line
 * given is parsed by a program of its own, exactly as it would be run, with
 * the command's action replaced by the printout.
 */
import type { Command } from 'commander';
import { DEFAULT_KERNEL } from '../kernel/spec.js';
import { requestedConfinement } from '../sandbox/policy.js';
import { CONFIGURED_COMMANDS, commandPath, lookupOf } from './apply-config.js';
import { usage } from './options.js';
import type { ConfigLookup } from './project-config.js';

/** The options the config file can set, in the order they are printed. */
const SHOWN = ['kernel', 'timeout', 'buildTimeout', 'memory', 'jobs', 'flavour', 'accel', 'archiveUri', 'securityUri', 'snapshot', 'rubric', 'skeleton'] as const;

export interface ShownSetting {
  value: unknown;
  /** 'command line', 'environment: NAME', the config file's path, or 'default'. */
  from: string;
}

export interface EffectiveSettings {
  command: string;
  configFile: string | null;
  settings: Record<string, ShownSetting>;
  /** How a driver that is not mmaplab's own is built: in the sandbox, or unconfined and who said so. */
  build?: { kind: 'sandbox' | 'trusted' | 'container'; setBy?: string };
}

function sourceName(cmd: Command, attr: string, lookup: ConfigLookup | undefined): string {
  switch (cmd.getOptionValueSource(attr)) {
    case 'cli':
      return 'command line';
    case 'env':
      return `environment: ${cmd.options.find((o) => o.attributeName() === attr)?.envVar ?? '?'}`;
    case 'config':
      return lookup?.config?.file ?? 'config';
    default:
      return 'default';
  }
}

/** What a parsed command would run with. */
export function effectiveSettings(cmd: Command): EffectiveSettings {
  const o = cmd.opts<Record<string, unknown>>();
  const lookup = lookupOf(cmd);
  const settings: Record<string, ShownSetting> = {};
  for (const attr of SHOWN) {
    if (!cmd.options.some((opt) => opt.attributeName() === attr)) continue;
    let value = o[attr];
    // run, check and shell's --kernel: none given is the default kernel.
    if (attr === 'kernel' && Array.isArray(value) && value.length === 0) value = [DEFAULT_KERNEL];
    settings[attr] = { value: value ?? null, from: sourceName(cmd, attr, lookup) };
  }
  const out: EffectiveSettings = { command: commandPath(cmd), configFile: lookup?.config?.file ?? null, settings };
  if (cmd.options.some((opt) => opt.attributeName() === 'trustDriver')) {
    const wanted = requestedConfinement({ trustDriver: o.trustDriver === true, trustedBy: o.trustedBy as string | undefined });
    out.build = wanted.kind === 'sandbox' ? { kind: 'sandbox' } : wanted;
  } else if (out.command === 'grade') out.build = { kind: 'sandbox' };
  return out;
}

function shownValue(v: unknown): string {
  if (v === null || v === undefined) return '-';
  return Array.isArray(v) ? v.join(', ') : String(v);
}

export function renderEffectiveSettings(e: EffectiveSettings): string {
  const lines = [`mmaplab ${e.command}: ${e.configFile ? `settings from ${e.configFile}` : 'no project config file'}`];
  const width = Math.max(...Object.keys(e.settings).map((k) => k.length), 5);
  const values = Math.max(...Object.values(e.settings).map((s) => shownValue(s.value).length));
  for (const [k, s] of Object.entries(e.settings)) lines.push(`  ${k.padEnd(width)}  ${shownValue(s.value).padEnd(values)}  ${s.from}`);
  if (e.build) lines.push(`  ${'build'.padEnd(width)}  ${e.build.kind === 'sandbox' ? 'in the sandbox' : `unconfined (${e.build.setBy ?? ''})`}`);
  return `${lines.join('\n')}\n`;
}

/** The command named by the words (`kernels fetch` is two), and the words left for it. */
function targetOf(program: Command, words: readonly string[]): Command {
  let target = program;
  for (const w of words) {
    const sub = target.commands.find((c) => c.name() === w);
    if (!sub) break;
    target = sub;
  }
  return target;
}

export function addConfig(program: Command, fresh: () => Command): void {
  program
    .command('config')
    .description('print the settings a command would run with, and where each comes from (command line, environment, project config file, default), without running it')
    .argument('[command...]', 'the command as you would run it, with its arguments and flags (default: run)')
    .option('--json', 'print them as JSON')
    .passThroughOptions()
    .addHelpText('after', '\nExamples:\n  mmaplab config check ./driver\n  mmaplab config --json grade submissions/ --timeout 30')
    .action(async (words: string[], o: { json?: boolean }) => {
      const argv = words.length ? words : ['run'];
      const p = fresh();
      const target = targetOf(p, argv);
      const path = commandPath(target);
      if (!(CONFIGURED_COMMANDS as readonly string[]).includes(path)) throw usage(`config prints the settings of ${CONFIGURED_COMMANDS.join(', ')}; not of '${argv.join(' ')}'`);
      let shown: EffectiveSettings | undefined;
      target.action((...args: unknown[]) => {
        shown = effectiveSettings(args[args.length - 1] as Command);
      });
      await p.parseAsync(argv, { from: 'user' });
      if (shown) process.stdout.write(o.json ? `${JSON.stringify(shown, null, 2)}\n` : renderEffectiveSettings(shown));
    });
}
