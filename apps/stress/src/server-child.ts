/**
 * The server under attack, in its own process (started with --expose-gc by the harness). It talks to the
 * harness over the IPC channel only:
 *   → { type: 'ready', pid, addresses }
 *   ← { type: 'mem' }            → { type: 'mem', memory, stats }   (after two full GCs)
 *   ← { type: 'stop' }           → { type: 'stopped' }, then exits
 * If the IPC channel goes away (the harness died), it exits: it never outlives its harness.
 */
import { InvalidArgError } from '@ffnet/serde';
import { implement, Server } from '@ffnet/server';
import { type ServerChildConfig, serverOptions } from './server-config.js';
import { MAX_REPLY_BYTES, StressService } from './service.js';

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as ServerChildConfig;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc || !process.send) throw new Error('server-child needs --expose-gc and an IPC channel');
  const send = process.send.bind(process);

  const server = new Server(serverOptions(cfg));
  const service = implement(StressService, {
    echo: (_ctx, req) => ({ s: typeof req?.s === 'string' ? req.s : '' }),
    bytes: (_ctx, req) => {
      const n = req?.n;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_REPLY_BYTES) {
        throw new InvalidArgError(`bytes: n must be an integer in [0, ${MAX_REPLY_BYTES}]`);
      }
      // A fresh, filled buffer per reply, as a real service's would be: replies the server queues for a peer
      // that does not read cost resident memory, which is what the caps are about.
      return Buffer.alloc(n, 0x5a);
    },
  });
  // Both groups (tcp and unix) serve it: Server.addService would put it in the first one only.
  for (const g of server.groups) g.addService(service);
  await server.start();

  process.on('message', (msg: { type?: string }) => {
    if (msg?.type === 'mem') {
      gc();
      gc();
      send({ type: 'mem', memory: process.memoryUsage(), stats: server.stats(), state: server.state });
    } else if (msg?.type === 'stop') {
      server.stop().then(
        () => send({ type: 'stopped' }, () => process.exit(0)),
        (e: unknown) => send({ type: 'stopped', error: String(e) }, () => process.exit(3)),
      );
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', pid: process.pid, addresses: server.addresses });
}

main().catch((e: unknown) => {
  console.error('stress server child failed:', e);
  process.exit(2);
});
