/** Colour only for a terminal, never with NO_COLOR or --no-color. */
import { Chalk, type ChalkInstance } from 'chalk';

export function makeStyle(opts: { color: boolean | undefined; stream?: NodeJS.WriteStream }): ChalkInstance {
  const stream = opts.stream ?? process.stdout;
  const wanted = opts.color ?? (stream.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== 'dumb');
  const forced = process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '0' && opts.color !== false;
  return new Chalk({ level: wanted || forced ? 1 : 0 });
}
