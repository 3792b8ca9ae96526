// One side of one run, in its own (pinned) process: `node dist/child.js '<ChildConfig json>'`.
// Talks to the harness over the IPC channel only; stdout is left to the harness's JSON lines.
import { setTimeout as sleep } from 'node:timers/promises';
import { LoadGen } from './loadgen.js';
import { loadPeer } from './peers/index.js';
import type { ChildConfig, ChildMessage, ParentMessage } from './protocol.js';
import { cpuMs, minorFaults, rssPeakMB } from './protocol.js';
import type { RpcWorkload } from './workloads.js';
import { workload } from './workloads.js';

function send(msg: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) throw new Error('bench child: no IPC channel (run it through the harness)');
    process.send(msg, undefined, {}, () => resolve());
  });
}

async function fatal(err: unknown): Promise<never> {
  const message = err instanceof Error ? `${err.message}${err.cause ? ` (cause: ${String(err.cause)})` : ''}` : String(err);
  await send({ t: 'error', message }).catch(() => {});
  process.exit(1);
}

async function server(cfg: ChildConfig, w: RpcWorkload): Promise<void> {
  const peer = await loadPeer(cfg.peer);
  const srv = await peer.serve(cfg.endpoint, w);
  let cpu0 = process.cpuUsage();
  let faults0 = minorFaults();
  process.on('message', (msg: ParentMessage) => {
    if (msg.t === 'mark') {
      cpu0 = process.cpuUsage();
      faults0 = minorFaults();
    } else if (msg.t === 'report') {
      const cpu = cpuMs(process.cpuUsage(cpu0), minorFaults() - faults0);
      void send({ t: 'report', cpu, rssPeakMB: rssPeakMB() }).then(async () => {
        await Promise.race([srv.close(), sleep(2000)]);
        process.exit(0);
      });
    }
  });
  // The harness vanishing must not leave a server behind.
  process.on('disconnect', () => process.exit(0));
  await send({ t: 'ready', endpoint: srv.endpoint });
}

async function client(cfg: ChildConfig, w: RpcWorkload): Promise<void> {
  process.on('disconnect', () => process.exit(1));
  const peer = await loadPeer(cfg.peer);
  const gen = new LoadGen(w.inflight);
  const conn = await peer.connect(cfg.endpoint, w, gen.done);
  const failed = gen.start(conn);
  const run = async () => {
    await sleep(cfg.warmupMs);
    gen.mark();
    await send({ t: 'mark' });
    await sleep(cfg.measureMs);
    return gen.stop();
  };
  const win = await Promise.race([run(), failed]);
  await gen.drain(2000);
  await Promise.race([conn.close(), sleep(2000)]);
  await send({
    t: 'result',
    calls: win.calls,
    seconds: win.seconds,
    p50Us: win.p50Us,
    p99Us: win.p99Us,
    cpu: cpuMs(win.cpu, win.minorFaults),
    rssPeakMB: rssPeakMB(),
  });
  process.exit(0);
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '') as ChildConfig;
  const w = workload(cfg.workload);
  if (w === undefined || w.kind !== 'rpc') throw new Error(`bench child: ${cfg.workload} is not a runnable workload`);
  if (cfg.role === 'server') await server(cfg, w);
  else await client(cfg, w);
}

main().catch(fatal);
