// Standalone W1 (64 B, 1 in flight) over tcp or unix: role server|client; prints calls.
import { defineService, method } from '@ffnet/serde';
import { Client, implement, Server } from '@ffnet/server';
import { tcp, unix } from '@ffnet/transport';
const Svc = defineService({ name: 'Bench', id: 7001, methods: { call: method(1) } });
const kind = process.env.KIND ?? 'tcp';
if (process.argv[2] === 'server') {
  const server = new Server({ backends: [tcp(), unix()], groups: [kind === 'tcp' ? { networkType: 'tcp', listener: { host: '127.0.0.1', port: 47311 } } : { networkType: 'unix', listener: { path: '/tmp/w1/s.sock' } }] });
  server.addService(implement(Svc, { call: (_c, r) => r }));
  await server.start();
  setTimeout(() => server.stop().then(() => process.exit(0)), Number(process.env.LIFE ?? 6000));
} else {
  const client = new Client({ timeoutMs: 10000, backends: [tcp(), unix()] });
  const stub = client.stub(Svc, kind === 'tcp' ? 'tcp://127.0.0.1:47311' : 'unix:///tmp/w1/s.sock');
  const req = { data: Buffer.alloc(64) };
  await stub.call(req);
  let calls = 0; const end = Date.now() + Number(process.env.SECS ?? 3) * 1000;
  const c0 = process.cpuUsage();
  while (Date.now() < end) { await stub.call(req); calls++; }
  const c = process.cpuUsage(c0);
  console.log(JSON.stringify({ kind, calls, usPerCallCpu: +((c.user + c.system) / calls).toFixed(1), usPerCallWall: +((Number(process.env.SECS ?? 3) * 1e6) / calls).toFixed(1) }));
  process.exit(0);
}
