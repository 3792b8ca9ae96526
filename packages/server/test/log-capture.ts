import type { LogFields, Logger, LogLevel } from '@ffnet/common';

export interface LogRecord {
  level: LogLevel;
  msg: string;
  /** The bindings of the child it was logged through (component…) merged with its fields. */
  fields: LogFields;
}

const ORDER: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50 };

/** A real Logger that keeps its records (children share the list), enabled from `level` up. */
export class CaptureLogger implements Logger {
  readonly records: LogRecord[];
  readonly #bindings: LogFields;
  readonly #min: number;

  constructor(level: LogLevel = 'trace', records: LogRecord[] = [], bindings: LogFields = {}) {
    this.records = records;
    this.#bindings = bindings;
    this.#min = ORDER[level];
  }

  isLevelEnabled(level: LogLevel): boolean {
    return ORDER[level] >= this.#min;
  }
  child(bindings: LogFields): Logger {
    const lvl = (Object.keys(ORDER) as LogLevel[]).find((l) => ORDER[l] === this.#min)!;
    return new CaptureLogger(lvl, this.records, { ...this.#bindings, ...bindings });
  }
  #add(level: LogLevel, fields: LogFields, msg?: string): void {
    if (this.isLevelEnabled(level)) this.records.push({ level, msg: msg ?? '', fields: { ...this.#bindings, ...fields } });
  }
  trace(f: LogFields, m?: string): void {
    this.#add('trace', f, m);
  }
  debug(f: LogFields, m?: string): void {
    this.#add('debug', f, m);
  }
  info(f: LogFields, m?: string): void {
    this.#add('info', f, m);
  }
  warn(f: LogFields, m?: string): void {
    this.#add('warn', f, m);
  }
  error(f: LogFields, m?: string): void {
    this.#add('error', f, m);
  }

  find(msg: string | RegExp): LogRecord[] {
    return this.records.filter((r) => (typeof msg === 'string' ? r.msg === msg : msg.test(r.msg)));
  }

  /** Resolves once a record matching `msg` exists (polls; bounded by the test's timeout). */
  async waitFor(msg: string | RegExp, pred: (r: LogRecord) => boolean = () => true): Promise<LogRecord> {
    for (;;) {
      const r = this.find(msg).find(pred);
      if (r !== undefined) return r;
      await new Promise((res) => setTimeout(res, 10));
    }
  }

  /** Every record as text, errors with their message and cause: what a secret must never appear in. */
  dump(): string {
    return JSON.stringify(this.records, (_k, v) =>
      v instanceof Error ? { ...v, name: v.name, message: v.message, stack: v.stack, cause: String(v.cause) } : v,
    );
  }
}
