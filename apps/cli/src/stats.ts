import { Client, CoreService, type ServerStats, staticToken } from '@ffnet/server';
import { allBackends } from './backends.js';
import { type Command, intFlag, parse, UsageError } from './command.js';
import { formatMs } from './load.js';
import { normalizeAddress } from './services.js';

/** Per-method latency as a server reports it in `stats.methods[key].latencyMs` (absent on servers that predate it). */
export interface LatencyMs {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** One method's line of `ffnet stats`. */
export interface MethodRow {
  readonly method: string;
  readonly calls: number;
  readonly errors: number;
  /** null when the server reports no latency for the method. */
  readonly latencyMs: LatencyMs | null;
}

export interface StatsReport {
  readonly address: string;
  readonly uptimeMs: number;
  readonly connections: number;
  readonly inFlight: number;
  readonly methods: readonly MethodRow[];
}

const DEFAULT_WATCH_MS = 1000;
/** Faster refreshes would make the tool a load generator on the server it watches. */
const MIN_WATCH_MS = 100;

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** The latency object if it has the expected shape; a server that answers something else shows `-`. */
function latencyOf(v: unknown): LatencyMs | null {
  if (v === null || typeof v !== 'object') return null;
  const l = v as Record<string, unknown>;
  const keys = ['count', 'p50', 'p90', 'p99', 'max'] as const;
  if (!keys.every((k) => typeof l[k] === 'number' && Number.isFinite(l[k]))) return null;
  return { count: l.count as number, p50: l.p50 as number, p90: l.p90 as number, p99: l.p99 as number, max: l.max as number };
}

/** What `ffnet stats` shows of a Core.stats answer, methods sorted by name. */
export function toReport(address: string, stats: ServerStats): StatsReport {
  const methods = Object.entries((stats.methods ?? {}) as Record<string, unknown>)
    .map(([method, raw]): MethodRow => {
      const m = (raw ?? {}) as Record<string, unknown>;
      return { method, calls: num(m.calls), errors: num(m.errors), latencyMs: latencyOf(m.latencyMs) };
    })
    .sort((a, b) => (a.method < b.method ? -1 : a.method > b.method ? 1 : 0));
  return { address, uptimeMs: num(stats.uptimeMs), connections: num(stats.connections), inFlight: num(stats.inFlight), methods };
}

/** A table: method, calls, errors, p50, p99 (`-` where the server reports no latency). */
export function formatReport(r: StatsReport): string {
  const head = ['method', 'calls', 'errors', 'p50', 'p99'];
  const rows = r.methods.map((m) => [
    m.method,
    String(m.calls),
    String(m.errors),
    // A method nobody has called has no latency to show, though its histogram exists.
    m.latencyMs && m.latencyMs.count > 0 ? formatMs(m.latencyMs.p50) : '-',
    m.latencyMs && m.latencyMs.count > 0 ? formatMs(m.latencyMs.p99) : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const title = `${r.address}  uptime ${(r.uptimeMs / 1000).toFixed(1)} s  connections ${r.connections}  in flight ${r.inFlight}`;
  return `${[title, line(head), ...rows.map(line)].join('\n')}\n`;
}

/** `--watch` takes an optional value, which parseArgs cannot express: a bare `--watch` becomes `--watch=<default>`. */
function normalizeWatch(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--watch') {
      const next = argv[i + 1];
      if (next !== undefined && /^\d+$/.test(next)) {
        out.push(`--watch=${next}`);
        i++;
      } else out.push(`--watch=${DEFAULT_WATCH_MS}`);
    } else out.push(a);
  }
  return out;
}

/** Resolves after `ms`, or at once (false) when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export const stats: Command = {
  usage:
    'ffnet stats <addr> [--json] [--watch [ms]] [--token VALUE] [--timeout ms]\n' +
    '  calls, errors, p50 and p99 per method from a running server (Core.stats; `-` where the server reports no latency).\n' +
    `  --watch: refresh every ms (default ${DEFAULT_WATCH_MS}, at least ${MIN_WATCH_MS}) until Ctrl-C; with --json one line per refresh.\n` +
    '  --token: the `authorization` value sent (e.g. "Bearer s3cret"), for servers whose Core wants an admin identity;\n' +
    '  FFNET_TOKEN is read when --token is not given (a flag is visible to other users in the process list)',
  async run(argv) {
    const { values, positionals } = parse(normalizeWatch(argv), {
      json: { type: 'boolean' },
      watch: { type: 'string' },
      token: { type: 'string' },
      timeout: { type: 'string' },
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one <addr>');
    const address = normalizeAddress(positionals[0]!);
    const watchMs = values.watch === undefined ? undefined : intFlag(values.watch, 'watch', DEFAULT_WATCH_MS, MIN_WATCH_MS);
    if (values.token === '') throw new UsageError('--token needs a non-empty value');
    // An empty FFNET_TOKEN counts as unset, as shells leave it after `FFNET_TOKEN=`.
    const token = values.token ?? (process.env.FFNET_TOKEN || undefined);
    const client = new Client({
      timeoutMs: intFlag(values.timeout, 'timeout', 5000, 1),
      backends: allBackends(),
      ...(token !== undefined ? { credentials: staticToken(token) } : {}),
    });
    const core = client.stub(CoreService, address);
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const tty = process.stdout.isTTY === true;
    try {
      for (let first = true; ; first = false) {
        let s: ServerStats;
        try {
          s = await core.stats({}, { signal: stop.signal });
        } catch (e) {
          // Ctrl-C while a refresh was on the wire is a normal end of watching; a one-shot call was interrupted.
          if (stop.signal.aborted) return watchMs === undefined ? 130 : 0;
          throw e;
        }
        const report = toReport(address, s);
        if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
        else if (watchMs !== undefined && tty) process.stdout.write(`\x1b[H\x1b[2J${formatReport(report)}`);
        else process.stdout.write(`${first ? '' : '\n'}${formatReport(report)}`);
        if (watchMs === undefined || !(await pause(watchMs, stop.signal))) return 0;
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await client.stop();
    }
  },
};
