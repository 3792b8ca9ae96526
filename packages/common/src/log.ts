/**
 * Structured logging: one small interface every package logs through, silent unless a logger is passed in or
 * FFNET_DEBUG (or NODE_DEBUG=ffnet) is set. The argument order is pino's (`fields, msg`), so a pino instance fits
 * the interface as it is (@ffnet/pino adds the level check and error fields).
 */

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  trace(fields: LogFields, msg?: string): void;
  debug(fields: LogFields, msg?: string): void;
  info(fields: LogFields, msg?: string): void;
  warn(fields: LogFields, msg?: string): void;
  error(fields: LogFields, msg?: string): void;
  /** Call sites check this first, so no fields object is built for a level that is off. */
  isLevelEnabled(level: LogLevel): boolean;
  /** A logger whose records carry `bindings` too; ffnet binds `component` (the package: transport, worker, …). */
  child(bindings: LogFields): Logger;
}

/** pino's numbers, so levels compare the same way on both sides of the adapter. */
export const LOG_LEVELS: Readonly<Record<LogLevel, number>> = Object.freeze({ trace: 10, debug: 20, info: 30, warn: 40, error: 50 });

const nothing = (): void => {};

/** Logs nothing, and says so to every isLevelEnabled, so call sites build no fields. Its child is itself. */
export const noopLogger: Logger = Object.freeze({
  trace: nothing,
  debug: nothing,
  info: nothing,
  warn: nothing,
  error: nothing,
  isLevelEnabled: () => false,
  child(): Logger {
    return noopLogger;
  },
});

/** What FFNET_DEBUG / NODE_DEBUG select: every component, or the named ones. */
export interface DebugSelection {
  readonly all: boolean;
  readonly components: ReadonlySet<string>;
}

/**
 * Reads `FFNET_DEBUG` (components separated by commas or spaces, `*` for all: `FFNET_DEBUG=transport,server`) and
 * `NODE_DEBUG` (the word `ffnet` among its names selects every component, as Node's own NODE_DEBUG=net would).
 * Undefined when neither selects anything.
 */
export function parseDebugEnv(ffnetDebug: string | undefined, nodeDebug?: string): DebugSelection | undefined {
  const components = new Set<string>();
  let all = false;
  for (const word of (ffnetDebug ?? '').split(/[\s,]+/)) {
    const w = word.trim().toLowerCase();
    if (w === '') continue;
    if (w === '*' || w === 'ffnet' || w === 'all') all = true;
    else components.add(w);
  }
  for (const word of (nodeDebug ?? '').split(/[\s,]+/)) if (word.trim().toLowerCase() === 'ffnet') all = true;
  return all || components.size > 0 ? { all, components } : undefined;
}

export interface DebugLoggerOptions {
  /** Which components log (default all); a record from a logger with no component logs only when all are on. */
  select?: DebugSelection;
  /** The lowest level written (default 'debug'). */
  level?: LogLevel;
  /** Where each line goes (default process.stderr). */
  write?: (line: string) => void;
}

/** An error as a plain object for a record: what it is and who it was about, never its payload. */
export function errorFields(e: unknown): LogFields {
  if (!(e instanceof Error)) return { message: String(e) };
  const out: LogFields = { type: e.name, message: e.message };
  const x = e as Error & { code?: unknown; peer?: unknown; cause?: unknown };
  if (x.code !== undefined) out.code = x.code;
  if (x.peer !== undefined) out.peer = x.peer;
  if (x.cause !== undefined) out.cause = x.cause instanceof Error ? `${x.cause.name}: ${x.cause.message}` : String(x.cause);
  return out;
}

function replacer(_key: string, v: unknown): unknown {
  if (v instanceof Error) return errorFields(v);
  if (typeof v === 'bigint') return v.toString();
  return v;
}

class DebugLogger implements Logger {
  readonly #bindings: LogFields;
  readonly #min: number;
  readonly #on: boolean;
  readonly #opts: DebugLoggerOptions;
  readonly #write: (line: string) => void;

  constructor(opts: DebugLoggerOptions, bindings: LogFields) {
    this.#opts = opts;
    this.#bindings = bindings;
    this.#min = LOG_LEVELS[opts.level ?? 'debug'];
    const sel = opts.select;
    const component = bindings.component;
    this.#on = sel === undefined || sel.all || (typeof component === 'string' && sel.components.has(component));
    this.#write = opts.write ?? ((line) => void process.stderr.write(line));
  }

  isLevelEnabled(level: LogLevel): boolean {
    return this.#on && LOG_LEVELS[level] >= this.#min;
  }

  child(bindings: LogFields): Logger {
    return new DebugLogger(this.#opts, { ...this.#bindings, ...bindings });
  }

  #log(level: LogLevel, fields: LogFields, msg: string | undefined): void {
    if (!this.isLevelEnabled(level)) return;
    const record: LogFields = { time: new Date().toISOString(), level, ...this.#bindings };
    // Errors by hand: JSON.stringify would prefer an error's own toJSON (FfnetError's) to the replacer.
    for (const k in fields) {
      const v = fields[k];
      record[k] = v instanceof Error ? errorFields(v) : v;
    }
    record.msg = msg ?? '';
    let line: string;
    try {
      line = JSON.stringify(record, replacer);
    } catch (e) {
      // A field that cannot be serialized (a cycle) must not turn a log line into a thrown error.
      line = JSON.stringify({ time: record.time, level, ...this.#bindings, msg: msg ?? '', logError: String(e) }, replacer);
    }
    this.#write(`${line}\n`);
  }

  trace(fields: LogFields, msg?: string): void {
    this.#log('trace', fields, msg);
  }
  debug(fields: LogFields, msg?: string): void {
    this.#log('debug', fields, msg);
  }
  info(fields: LogFields, msg?: string): void {
    this.#log('info', fields, msg);
  }
  warn(fields: LogFields, msg?: string): void {
    this.#log('warn', fields, msg);
  }
  error(fields: LogFields, msg?: string): void {
    this.#log('error', fields, msg);
  }
}

/**
 * The built-in logger FFNET_DEBUG turns on: one JSON object per line (`time`, `level`, `component`, the fields,
 * `msg`), errors as `{type, message, code, peer, cause}`. Usable directly, e.g. with another `write`.
 */
export function debugLogger(opts: DebugLoggerOptions = {}): Logger {
  return new DebugLogger(opts, {});
}

function fromEnv(): Logger {
  const env = typeof process === 'undefined' ? undefined : process.env;
  const select = parseDebugEnv(env?.FFNET_DEBUG, env?.NODE_DEBUG);
  return select === undefined ? noopLogger : debugLogger({ select });
}

let defaultLogger: Logger = fromEnv();

/**
 * Replaces the process-wide logger that objects created from now on use when their options carry none
 * (`undefined` restores the one FFNET_DEBUG selects, or silence). Objects keep the logger they were made with.
 */
export function setDefaultLogger(logger: Logger | undefined): void {
  defaultLogger = logger ?? fromEnv();
}

export function getDefaultLogger(): Logger {
  return defaultLogger;
}

/**
 * The logger one ffnet object logs through: `logger` (an option, the root a user passed) or the default, scoped
 * to `component`. Options pass the root down, so each layer binds its own component once.
 */
export function componentLogger(component: string, logger?: Logger): Logger {
  return (logger ?? defaultLogger).child({ component });
}
