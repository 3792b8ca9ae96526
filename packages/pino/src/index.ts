import type { LogFields, Logger, LogLevel } from '@ffnet/common';

/**
 * The part of a pino logger the adapter uses. Structural, so this package needs pino only as a peer (any pino
 * 8-10 instance, or a child of one, fits) and a pino-compatible logger works too.
 */
export interface PinoLike {
  trace(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  isLevelEnabled(level: string): boolean;
  child(bindings: Record<string, unknown>): PinoLike;
}

/**
 * ffnet's fields go to pino as they are: errors are always under `err`, which pino's standard serializer renders
 * (type, message, stack, and own properties such as `code` and `peer`). ffnet puts no secret in a field.
 */
class PinoAdapter implements Logger {
  readonly #p: PinoLike;

  constructor(p: PinoLike) {
    this.#p = p;
  }

  /** pino's own check, so a level turned off at run time (logger.level = 'warn') costs call sites nothing. */
  isLevelEnabled(level: LogLevel): boolean {
    return this.#p.isLevelEnabled(level);
  }

  child(bindings: LogFields): Logger {
    return new PinoAdapter(this.#p.child(bindings));
  }

  trace(f: LogFields, msg?: string): void {
    this.#p.trace(f, msg);
  }
  debug(f: LogFields, msg?: string): void {
    this.#p.debug(f, msg);
  }
  info(f: LogFields, msg?: string): void {
    this.#p.info(f, msg);
  }
  warn(f: LogFields, msg?: string): void {
    this.#p.warn(f, msg);
  }
  error(f: LogFields, msg?: string): void {
    this.#p.error(f, msg);
  }
}

/**
 * An ffnet Logger that writes through `pino` (an instance or a child). Pass it as `logger` to a Server, Client or
 * rdma(), or to setDefaultLogger() for every ffnet object made afterwards. Each ffnet layer logs through
 * `pino.child({ component })`, so records carry `component: 'transport' | 'worker' | 'listener' | 'server' | 'rdma'`.
 */
export function pinoLogger(pino: PinoLike): Logger {
  if (pino === null || typeof pino !== 'object' || typeof pino.child !== 'function' || typeof pino.isLevelEnabled !== 'function') {
    throw new TypeError('pinoLogger() needs a pino logger (an object with child() and isLevelEnabled())');
  }
  return new PinoAdapter(pino);
}
