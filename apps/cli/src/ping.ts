import { VerifyResponseFailedError } from '@ffnet/serde';
import { Client, EchoService } from '@ffnet/server';
import { allBackends } from './backends.js';
import { type Command, describeError, intFlag, parse, UsageError } from './command.js';
import { formatMs, type LoadProgress, runLoad } from './load.js';
import { normalizeAddress } from './services.js';

/** One updating line on a terminal; a line a second when stderr is a file or pipe. */
function progressReporter(stream: NodeJS.WriteStream): { every: number; report(p: LoadProgress): void; end(): void } {
  const tty = stream.isTTY === true;
  const line = (p: LoadProgress) => `${p.done}${p.total === undefined ? '' : `/${p.total}`} calls, ${p.errors} errors, ${(p.elapsedMs / 1000).toFixed(1)} s`;
  return {
    every: tty ? 100 : 1000,
    report: (p) => stream.write(tty ? `\r\x1b[K${line(p)}` : `progress ${line(p)}\n`),
    end: () => {
      if (tty) stream.write('\r\x1b[K');
    },
  };
}

export const ping: Command = {
  usage:
    'ffnet ping <addr> [--count N] [--duration s] [--concurrency C] [--size bytes] [--timeout ms] [--json]\n' +
    '  Echo.echo calls; prints latency p50/p90/p99/max and calls/s (default 1000 calls, 1 in flight)',
  async run(argv) {
    const { values, positionals } = parse(argv, {
      count: { type: 'string' },
      duration: { type: 'string' },
      concurrency: { type: 'string', short: 'c' },
      size: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one <addr>');
    const address = normalizeAddress(positionals[0]!);
    let durationMs: number | undefined;
    if (values.duration !== undefined) {
      const s = Number(values.duration);
      if (!(s > 0)) throw new UsageError(`--duration needs a positive number of seconds, got '${values.duration}'`);
      durationMs = s * 1000;
    }
    const count = values.count !== undefined || durationMs === undefined ? intFlag(values.count, 'count', 1000, 1) : undefined;
    const concurrency = intFlag(values.concurrency, 'concurrency', 1, 1);
    const payload = 'x'.repeat(intFlag(values.size, 'size', 16));
    const client = new Client({ timeoutMs: intFlag(values.timeout, 'timeout', 1000, 1), backends: allBackends() });
    const echo = client.stub(EchoService, address);
    const req = { str: payload };
    const once = async (): Promise<void> => {
      const rsp = await echo.echo(req);
      if (rsp.str !== payload)
        throw new VerifyResponseFailedError(`Echo.echo returned ${rsp.str.length} bytes instead of the ${payload.length} sent`, { peer: address });
    };
    const progress = progressReporter(process.stderr);
    try {
      const r = await runLoad(once, {
        ...(count !== undefined ? { count } : {}),
        ...(durationMs !== undefined ? { durationMs } : {}),
        concurrency,
        onProgress: progress.report,
        progressMs: progress.every,
      });
      progress.end();
      const { firstError, ...numbers } = r;
      if (values.json) {
        process.stdout.write(`${JSON.stringify({ address, concurrency, size: payload.length, ...numbers })}\n`);
      } else {
        process.stdout.write(
          `${address}: ${r.calls} calls in ${r.seconds.toFixed(2)} s, concurrency ${concurrency}, ${r.errors} errors\n` +
            `latency p50 ${formatMs(r.p50Ms)}  p90 ${formatMs(r.p90Ms)}  p99 ${formatMs(r.p99Ms)}  max ${formatMs(r.maxMs)}\n` +
            `throughput ${Math.round(r.callsPerSec)} calls/s\n`,
        );
      }
      if (r.errors > 0) {
        process.stderr.write(`ffnet ping: ${r.errors} calls failed; first: ${describeError(firstError)}\n`);
        return 1;
      }
      return 0;
    } finally {
      await client.stop();
    }
  },
};
