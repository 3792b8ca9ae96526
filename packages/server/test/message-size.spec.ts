import { defineService, MessageTooLargeError, method, StatusCode } from '@ffnet/serde';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, implement, Server } from '../src/index.js';
import { groupConfig, rejection, sleep } from './helpers.js';

const MiB = 1024 * 1024;
const Sized = defineService({
  name: 'Sized',
  id: 610,
  methods: {
    /** Answers with `n` bytes. */
    make: method<number, Uint8Array>(1),
    /** Takes anything, answers its size. */
    take: method<{ data: Uint8Array | string }, number>(2),
    /** Answers after `ms`. */
    slow: method<number, string>(3),
  },
});

const servers: Server[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.stop();
  for (const s of servers.splice(0)) await s.stop();
});

async function setup(kind: 'tcp' | 'unix'): Promise<{ client: Client; address: string; server: Server }> {
  const transport = { maxMessageSize: MiB };
  const server = new Server({ groups: [{ ...groupConfig(kind), ioWorker: { transport } }] });
  server.addService(
    implement(Sized, {
      make: (_ctx, n) => Buffer.alloc(n, 7),
      take: (_ctx, req) => (typeof req.data === 'string' ? req.data.length : req.data.byteLength),
      slow: async (_ctx, ms) => {
        await sleep(ms);
        return 'slow done';
      },
    }),
  );
  servers.push(server);
  await server.start();
  const client = new Client({ timeoutMs: 20_000, ioWorker: { transport } });
  clients.push(client);
  return { client, address: server.addresses[0]!, server };
}

describe.each(['tcp', 'unix'] as const)('maxMessageSize over %s', (kind) => {
  it('fails an oversized request locally with MessageTooLarge, while another call on the connection goes on', async () => {
    const { client, address, server } = await setup(kind);
    const stub = client.stub(Sized, address);
    expect(client.maxMessageSize).toBe(MiB);
    expect(await stub.take({ data: Buffer.alloc(1000) })).toBe(1000);
    const [conn] = client.ioWorker.transports();
    const slow = stub.slow(300);
    // A zero-copy buffer (its own iovec) and a string copied into the frame: both are measured whole.
    for (const data of [Buffer.alloc(2 * MiB), 'x'.repeat(2 * MiB)]) {
      const err = await rejection(stub.take({ data }));
      expect(err).toBeInstanceOf(MessageTooLargeError);
      expect(err.code).toBe(StatusCode.MessageTooLarge);
      const size = Number(/request is (\d+) bytes/.exec(err.message)?.[1]);
      expect(size).toBeGreaterThan(2 * MiB);
      expect(size).toBeLessThan(2 * MiB + 200);
      expect(err.message).toContain(`limit of ${MiB} bytes (maxMessageSize)`);
      expect(err.message).toContain('Sized.take');
      expect(err.peer).toBe(address);
    }
    expect(await slow).toBe('slow done');
    // Same connection, still open; the server never saw the oversized requests.
    expect(client.ioWorker.transports()).toEqual([conn]);
    expect(conn!.state).toBe('ready');
    expect(server.stats().methods['Sized.take']!.calls).toBe(1);
    // Just under the limit still goes through.
    expect(await stub.take({ data: Buffer.alloc(MiB - 100) })).toBe(MiB - 100);
  });

  it('answers an oversized response with a MessageTooLarge error response, keeping the connection', async () => {
    const { client, address, server } = await setup(kind);
    const stub = client.stub(Sized, address);
    expect((await stub.make(10)).byteLength).toBe(10);
    const [conn] = client.ioWorker.transports();
    const slow = stub.slow(300);
    const err = await rejection(stub.make(2 * MiB));
    expect(err).toBeInstanceOf(MessageTooLargeError);
    expect(err.message).toMatch(new RegExp(`the response of Sized\\.make is \\d+ bytes, at or above the limit of ${MiB} bytes`));
    expect(await slow).toBe('slow done');
    expect(client.ioWorker.transports()).toEqual([conn]);
    expect(conn!.state).toBe('ready');
    expect(server.stats().methods['Sized.make']!.errors).toBe(1);
    expect((await stub.make(MiB - 100)).byteLength).toBe(MiB - 100);
  });
});

describe('maxMessageSize with compression', () => {
  it('holds a compressed request and response to their decompressed size', async () => {
    const { client, address } = await setup('unix');
    const stub = client.stub(Sized, address);
    const compression = { level: 1, threshold: 1024 };
    // 2 MiB of one letter compresses to almost nothing; the receiver would still refuse to inflate it.
    const req = await rejection(stub.take({ data: 'z'.repeat(2 * MiB) }, { compression }));
    expect(req).toBeInstanceOf(MessageTooLargeError);
    expect(Number(/request is (\d+) bytes/.exec(req.message)?.[1])).toBeGreaterThan(2 * MiB);
    const rsp = await rejection(stub.make(2 * MiB, { compression }));
    expect(rsp.code).toBe(StatusCode.MessageTooLarge);
    expect(rsp.message).toMatch(/the response of Sized\.make is \d+ bytes/);
    // Compressed and under the limit: fine both ways, on the same connection.
    const [conn] = client.ioWorker.transports();
    expect(await stub.take({ data: 'z'.repeat(MiB / 2) }, { compression })).toBe(MiB / 2);
    expect((await stub.make(MiB / 2, { compression })).byteLength).toBe(MiB / 2);
    expect(client.ioWorker.transports()).toEqual([conn]);
  });
});

it('defaults to 512 MiB on both ends', () => {
  const client = new Client();
  clients.push(client);
  expect(client.maxMessageSize).toBe(512 * MiB);
});
