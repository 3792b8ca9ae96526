/**
 * `pnpm --filter @ffnet/stress run held`: the healthy client's latency while stalled peers hold the whole receive
 * budget, apart from the moment their bytes are pushed (which the stress run's per-attack p99 includes, on the
 * same two cores as the attackers). Per rep: 500 unloaded echo calls; then 100 peers each send a header claiming
 * 256 MiB and 1 MiB of body and stall (64 MiB budget: it fills, the rest wait paused); after 1.5 s of settling,
 * 500 more calls. Prints JSON with the machine, each rep and the p99 ratio.
 */
import * as net from 'node:net';
import { cpus, loadavg } from 'node:os';
import { Client, EchoService, Server } from '@ffnet/server';
import { lyingHeader } from './frames.js';
import { quantile } from './proc.js';

const MiB = 1024 * 1024;
const PEERS = 100;
const CALLS = 500;
const REPS = 3;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function measure(call: () => Promise<unknown>, n: number): Promise<{ p50Ms: number; p99Ms: number }> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await call();
    lat.push(performance.now() - t);
    await sleep(5);
  }
  lat.sort((a, b) => a - b);
  return { p50Ms: +quantile(lat, 0.5).toFixed(3), p99Ms: +quantile(lat, 0.99).toFixed(3) };
}

function stall(port: number, claim: number, body: Buffer): Promise<net.Socket> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(lyingHeader(claim));
      s.write(body, () => resolve(s));
    });
    // The server may close us (budget or deadline): that is its right, not a failure of this measurement.
    s.on('error', () => {});
  });
}

async function main(): Promise<void> {
  const server = new Server({
    // A frame deadline longer than the run, so the peers stay stalled while the healthy client is measured.
    groups: [{ networkType: 'tcp', listener: { host: '127.0.0.1' }, ioWorker: { frameTimeoutMs: 120_000 } }],
    limits: { receiveBudgetBytes: 64 * MiB, outputBudgetBytes: 64 * MiB },
  });
  await server.start();
  const address = server.addresses[0]!;
  const port = Number(new URL(address).port);
  const client = new Client({ timeoutMs: 5000 });
  const stub = client.stub(EchoService, address);
  const echo = (): Promise<unknown> => stub.echo({ str: 'healthy' });
  const body = Buffer.alloc(MiB, 0x41);
  const reps = [];
  try {
    await measure(echo, 50);
    for (let r = 0; r < REPS; r++) {
      const unloaded = await measure(echo, CALLS);
      const peers = await Promise.all(Array.from({ length: PEERS }, () => stall(port, 256 * MiB, body)));
      await sleep(1500);
      const budget = server.stats().receiveBudget;
      const held = await measure(echo, CALLS);
      reps.push({
        unloaded,
        held,
        budgetUsedMiB: +(budget.used / MiB).toFixed(1),
        peersWaiting: budget.waiting,
        p99Ratio: +(held.p99Ms / unloaded.p99Ms).toFixed(2),
      });
      for (const p of peers) p.destroy();
      await sleep(500);
    }
  } finally {
    await client.stop();
    await server.stop();
  }
  const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, loadavg: loadavg().map((l) => +l.toFixed(2)) };
  console.log(JSON.stringify({ machine, peers: PEERS, budgetMiB: 64, calls: CALLS, reps }, null, 2));
}

await main();
