// `pnpm start`: a server with a TCP group and a Unix group, a client driving Echo calls at both, and a table of
// what each transport achieved. No configuration; `--duration S` and `--concurrency C` tune the run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatMs, type LoadResult, runLoad } from '@ffnet/cli/load';
import { VerifyResponseFailedError } from '@ffnet/serde';
import { Client, EchoService, Server } from '@ffnet/server';

const { values } = parseArgs({ options: { duration: { type: 'string' }, concurrency: { type: 'string' } } });
const seconds = Number(values.duration ?? 1);
const concurrency = Number(values.concurrency ?? 32);
if (!(seconds > 0) || !Number.isInteger(concurrency) || concurrency < 1) {
  console.error('usage: node dist/main.js [--duration seconds] [--concurrency calls-in-flight]');
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'ffnet-demo-'));
const server = new Server({
  groups: [
    { networkType: 'tcp', listener: { host: '127.0.0.1', port: 0 } },
    { networkType: 'unix', listener: { path: join(dir, 'demo.sock') } },
  ],
});
const client = new Client();
const payload = 'x'.repeat(64);

async function drive(address: string): Promise<LoadResult> {
  const echo = client.stub(EchoService, address);
  const req = { str: payload };
  return runLoad(
    async () => {
      const rsp = await echo.echo(req);
      if (rsp.str !== payload) throw new VerifyResponseFailedError('Echo.echo answered with different bytes', { peer: address });
    },
    { durationMs: seconds * 1000, concurrency, stopOnError: true },
  );
}

let failed = false;
try {
  await server.start();
  console.log(`ffnet demo: Echo.echo with a ${payload.length} B string, ${concurrency} calls in flight, ${seconds} s per transport\n`);
  const rows: string[][] = [['transport', 'address', 'calls', 'p50', 'p99', 'calls/s']];
  for (const group of server.groups) {
    const address = group.addresses[0]!;
    const r = await drive(address);
    if (r.errors > 0) throw r.firstError;
    rows.push([group.networkType, address, String(r.calls), formatMs(r.p50Ms), formatMs(r.p99Ms), String(Math.round(r.callsPerSec))]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows)
    console.log(
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
} catch (e) {
  failed = true;
  console.error(`ffnet demo failed: ${e instanceof Error ? e.message : String(e)}`);
} finally {
  await client.stop();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
