// apps/storage over rdma:// in the Soft-RoCE VM (pnpm test:rdma): batchRead lands in the client's registered
// buffers by server RDMA WRITEs, write is a server RDMA READ, RDMAControl bounds the writes, CRC checks everything.
import { randomBytes } from 'node:crypto';
import { IBManager, RDMABuf, RDMARemoteBuf } from '@ffnet/device';
import { rdma } from '@ffnet/rdma';
import { FfnetError, StatusCode } from '@ffnet/serde';
import { Client, Server } from '@ffnet/server';
import { tcp, unix } from '@ffnet/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkStore, fillChunk, StorageClient, storageService } from '../../src/index.js';

const HOST = process.env.FFNET_RDMA_HOST ?? '10.0.2.15';
const CHUNK = 256 * 1024;
const MAX_TRANSMISSIONS = 2;
// The client's rdma() brings RDMAControl; its slots are the backend's `transmissions`.
const clientRdma = rdma({ control: { maxConcurrentTransmission: MAX_TRANSMISSIONS } });

function expected(id: number, offset: number, length: number): Buffer {
  const b = Buffer.alloc(Math.max(0, Math.min(length, CHUNK - offset)));
  fillChunk(id, offset, b);
  return b;
}

describe('storage over rdma://', () => {
  let server: Server;
  let client: Client;
  let sc: StorageClient;
  const service = storageService({ store: new ChunkStore(CHUNK), maxBatchBytes: 512 * 1024, applyTimeoutMs: 20_000 });

  beforeAll(async () => {
    IBManager.start();
    server = new Server({ backends: [tcp(), unix(), rdma()], groups: [{ networkType: 'rdma', listener: { host: HOST, port: 0 } }] });
    server.addService(service);
    await server.start();
    client = new Client({ backends: [tcp(), unix(), clientRdma], timeoutMs: 30_000 });
    sc = new StorageClient(client, server.addresses[0]!, { maxBatchBytes: 512 * 1024, buffers: 16 });
  });
  afterAll(async () => {
    sc?.close();
    await client?.stop();
    await server?.stop();
    service.close();
    IBManager.stop();
  });

  it('batch-reads many chunks into registered buffers by server RDMA writes', async () => {
    expect(sc.rdma).toBe(true);
    const ranges = Array.from({ length: 64 }, (_, i) => ({ id: i, offset: (i * 4099) % CHUNK, length: 2048 + ((i * 7919) % 14_000) }));
    const granted = clientRdma.transmissions!.granted;
    const got = await sc.read(ranges);
    for (const [i, r] of ranges.entries()) expect(got[i]!.equals(expected(r.id, r.offset, r.length))).toBe(true);
    // Each batchRead request asked RDMAControl for a slot first.
    expect(clientRdma.transmissions!.granted).toBeGreaterThan(granted);
    expect(clientRdma.transmissions!.active).toBe(0);
  });

  it('writes by a server RDMA read, checked by CRC, and reads it back', async () => {
    const data = randomBytes(200_000);
    await sc.write(5, data);
    expect(service.store.size(5)).toBe(200_000);
    const [back] = await sc.read([{ id: 5, offset: 0, length: 300_000 }]);
    expect(back!.equals(data)).toBe(true);
  });

  it('with more concurrent reads than maxConcurrentTransmission, RDMAControl makes the excess wait', async () => {
    const l = clientRdma.transmissions!;
    const before = l.granted;
    let maxActive = 0;
    let maxWaiting = 0;
    const probe = setInterval(() => {
      maxActive = Math.max(maxActive, l.active);
      maxWaiting = Math.max(maxWaiting, l.waiting);
    }, 1);
    const reads = Array.from({ length: 12 }, (_, i) => sc.read([{ id: 1000 + i, offset: 0, length: CHUNK }]));
    const got = await Promise.all(reads);
    clearInterval(probe);
    for (const [i, [b]] of got.entries()) expect(b!.equals(expected(1000 + i, 0, CHUNK))).toBe(true);
    expect(l.granted - before).toBe(12);
    expect(maxActive).toBeLessThanOrEqual(MAX_TRANSMISSIONS);
    expect(maxWaiting).toBeGreaterThan(0);
    expect(l.active).toBe(0);
  });

  it('a request with a bad rkey fails with a typed error, and the next call works', async () => {
    const target = RDMABuf.allocate(4096);
    try {
      const real = target.toRemoteBuf();
      const forged = new RDMARemoteBuf(
        real.addr,
        real.length,
        real.rkeys.map((k) => ({ rkey: (k.rkey ^ 0x00ff_ff00) >>> 0, devId: k.devId })),
      );
      const err = await sc.stub.batchRead({ chunks: [{ id: 1, offset: 0, length: 4096 }], buffers: [forged] }).catch((e) => e);
      expect(FfnetError.is(err)).toBe(true);
      expect([StatusCode.SocketError, StatusCode.SocketClosed, StatusCode.RDMAError]).toContain(err.code);
    } finally {
      target.release();
    }
    const [b] = await sc.read([{ id: 2, offset: 100, length: 5000 }]);
    expect(b!.equals(expected(2, 100, 5000))).toBe(true);
  });
});
