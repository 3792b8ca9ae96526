import { type ParseArgsConfig, parseArgs } from 'node:util';
import { FfnetError, InvalidArgError } from '@ffnet/serde';

/** A mistake in the command line itself: exit code 2 plus the usage (a remote InvalidArg is not one). */
export class UsageError extends InvalidArgError {}

/** One `ffnet <name>` subcommand. `run` returns the exit code. */
export interface Command {
  readonly usage: string;
  run(argv: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs, with unknown flags and missing values reported as UsageError (exit code 2). */
export function parse<O extends Options>(
  argv: string[],
  options: O,
): ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A non-negative integer flag. */
export function intFlag(raw: string | undefined, name: string, fallback: number, min = 0): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} needs an integer >= ${min}, got '${raw}'`);
  return n;
}

/** `Timeout (2005): message [peer tcp://…]` — the code name first, so scripts can grep it. */
export function describeError(e: unknown): string {
  if (FfnetError.is(e)) {
    const peer = e.peer && !e.message.includes(e.peer) ? ` (peer ${e.peer})` : '';
    return `${e.codeName} (${e.code}): ${e.message}${peer}`;
  }
  return e instanceof Error ? e.message : String(e);
}
