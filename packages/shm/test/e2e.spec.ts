// A Server and a Client talking over shm://: 1 MiB echoes both ways, the connection's peer credentials, and the
// bytes really crossing the rings (the unix socket carries far less than the payload).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineService, method } from '@ffnet/serde';
import { Client, implement, Server } from '@ffnet/server';
import { tcp, unix } from '@ffnet/transport';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { shm } from '../src/index.js';

const BlobService = defineService({
  name: 'Blob',
  id: 120,
  methods: {
    echo: method<{ data: Uint8Array }, { data: Uint8Array; sha: string }>(1),
    who: method<Record<string, never>, { uid: number | null }>(2),
  },
});

const dir = mkdtempSync(join(tmpdir(), 'ffnet-shm-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of stops.splice(0).reverse()) await f();
});

async function serve(): Promise<string> {
  const server = new Server({
    backends: [tcp(), unix(), shm()],
    groups: [{ networkType: 'shm', listener: { path: join(dir, `e2e-${stops.length}.sock`) }, services: ['Blob'] }],
  });
  server.addService(
    implement(BlobService, {
      echo: (_ctx, req) => ({ data: req.data, sha: createHash('sha256').update(req.data).digest('hex') }),
      who: (ctx) => ({ uid: ctx.transport.peerCredentials()?.uid ?? null }),
    }),
  );
  await server.start();
  stops.push(() => server.stop());
  return server.groups[0]!.addresses[0]!;
}

describe('Server and Client over shm://', () => {
  it('echoes 1 MiB payloads intact, many times, with the address and peer credentials of a unix socket', async () => {
    const address = await serve();
    expect(address).toMatch(/^shm:\/\/\//);
    const client = new Client({ backends: [shm()], timeoutMs: 10_000 });
    stops.push(() => client.stop());
    const stub = client.stub(BlobService, address);
    for (let i = 0; i < 20; i++) {
      const data = randomBytes(1024 * 1024);
      const res = await stub.echo({ data });
      expect(res.sha).toBe(createHash('sha256').update(data).digest('hex'));
      expect(Buffer.compare(Buffer.from(res.data), data)).toBe(0);
    }
    const who = await stub.who({});
    expect(who.uid).toBe(process.getuid!());
  });

  it('runs concurrent large calls (more than the ring holds at once) without losing or mixing bytes', async () => {
    const address = await serve();
    const client = new Client({ backends: [shm({ ringBytes: 1024 * 1024 })], timeoutMs: 20_000 });
    stops.push(() => client.stop());
    const stub = client.stub(BlobService, address);
    const datas = Array.from({ length: 12 }, (_, i) => Buffer.alloc(700 * 1024 + i, i + 1));
    const res = await Promise.all(datas.map((data) => stub.echo({ data })));
    for (const [i, r] of res.entries()) expect(Buffer.compare(Buffer.from(r.data), datas[i]!)).toBe(0);
  });
});
