import { InvalidConfigError } from '@ffnet/common';

/**
 * A constructor option in milliseconds that may be any non-negative number, Infinity included (no bound): the
 * default when it is undefined. Server and Client check their stop bounds with it, so the same bad value fails
 * the same way (InvalidConfigError) in both.
 */
export function nonNegativeMsOption(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !(v >= 0)) throw new InvalidConfigError(`${name} must be a non-negative number of ms, got ${String(v)}`);
  return v;
}
