import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RDMARemoteBuf } from '@ffnet/device';
import { rdma } from '@ffnet/rdma';
import { crc32c, StatusCode } from '@ffnet/serde';
import { Client, Server, type ServiceGroupConfig } from '@ffnet/server';
import { tcp, unix } from '@ffnet/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkStore, fillChunk, StorageClient, storageService } from '../src/index.js';

const CHUNK = 64 * 1024;

function expected(id: number, offset: number, length: number): Buffer {
  const b = Buffer.alloc(Math.max(0, Math.min(length, CHUNK - offset)));
  fillChunk(id, offset, b);
  return b;
}

/** Listeners refuse socket paths in a directory others can write to, such as /tmp itself. */
const socketDir = mkdtempSync(join(tmpdir(), 'ffnet-storage-test-'));
afterAll(() => rmSync(socketDir, { recursive: true, force: true }));

function group(kind: 'tcp' | 'unix'): ServiceGroupConfig {
  return kind === 'tcp'
    ? { networkType: 'tcp', listener: { host: '127.0.0.1', port: 0 } }
    : { networkType: 'unix', listener: { path: join(socketDir, `${process.pid}-${randomBytes(3).toString('hex')}.sock`) } };
}

describe('fillChunk', () => {
  it('depends on chunk id and position only', () => {
    const whole = Buffer.alloc(1000);
    fillChunk(3, 0, whole);
    const part = Buffer.alloc(100);
    fillChunk(3, 500, part);
    expect(part.equals(whole.subarray(500, 600))).toBe(true);
    const other = Buffer.alloc(1000);
    fillChunk(4, 0, other);
    expect(other.equals(whole)).toBe(false);
    // Not a constant or a short cycle: most byte values show up.
    expect(new Set(whole).size).toBeGreaterThan(200);
  });
});

for (const kind of ['tcp', 'unix'] as const) {
  describe(`storage over ${kind}:// (inline fallback)`, () => {
    let server: Server;
    let client: Client;
    let sc: StorageClient;
    const service = storageService({ store: new ChunkStore(CHUNK), maxBatchBytes: 256 * 1024 });

    beforeAll(async () => {
      server = new Server({ groups: [group(kind)] });
      server.addService(service);
      await server.start();
      client = new Client({ backends: [tcp(), unix(), rdma({ control: { maxConcurrentTransmission: 4 } })], timeoutMs: 10_000 });
      sc = new StorageClient(client, server.addresses[0]!, { maxBatchBytes: 256 * 1024 });
    });
    afterAll(async () => {
      sc.close();
      await client.stop();
      await server.stop();
      service.close();
    });

    it('batch-reads many ranges, split into requests of maxBatchBytes, each checked by CRC', async () => {
      expect(sc.rdma).toBe(false);
      const ranges = Array.from({ length: 40 }, (_, i) => ({ id: 100 + i, offset: (i * 977) % CHUNK, length: 4096 + i * 512 }));
      ranges.push({ id: 1, offset: CHUNK - 10, length: 100 }, { id: 2, offset: CHUNK + 5, length: 10 });
      const calls = server.groups[0]!.services.methodStats()['Storage.batchRead']?.calls ?? 0;
      const got = await sc.read(ranges);
      expect(got.map((b) => b.length)).toEqual(ranges.map((r) => expected(r.id, r.offset, r.length).length));
      for (const [i, r] of ranges.entries()) expect(got[i]!.equals(expected(r.id, r.offset, r.length))).toBe(true);
      expect(got.at(-2)!.length).toBe(10);
      expect(got.at(-1)!.length).toBe(0);
      // 550 KiB asked for, in requests of at most 256 KiB.
      expect(server.groups[0]!.services.methodStats()['Storage.batchRead']!.calls - calls).toBe(3);
    });

    it('writes a chunk and reads it back', async () => {
      const data = randomBytes(50_000);
      await sc.write(9, data);
      const [all, tail] = await sc.read([
        { id: 9, offset: 0, length: 60_000 },
        { id: 9, offset: 49_990, length: 100 },
      ]);
      expect(all!.equals(data)).toBe(true);
      expect(tail!.equals(data.subarray(49_990))).toBe(true);
      expect(service.store.size(9)).toBe(50_000);
    });

    it('a write whose CRC does not match is refused with DataCorruption and stores nothing', async () => {
      const data = randomBytes(1000);
      const err = await sc.stub.write({ chunkId: 11, length: 1000, crc: (crc32c(data) + 1) >>> 0, data }).catch((e) => e);
      expect(err.code).toBe(StatusCode.DataCorruption);
      expect(service.store.size(11)).toBe(CHUNK);
    });

    it('asking for RDMA buffers over a non-RDMA connection gives NotImplemented, and the next call works', async () => {
      const remote = new RDMARemoteBuf(0x1000n, 4096, [{ rkey: 1, devId: 0 }]);
      const err = await sc.stub.batchRead({ chunks: [{ id: 1, offset: 0, length: 4096 }], buffers: [remote] }).catch((e) => e);
      expect(err.code).toBe(StatusCode.NotImplemented);
      expect(err.message).toContain('rdma');
      const [b] = await sc.read([{ id: 1, offset: 0, length: 4096 }]);
      expect(b!.equals(expected(1, 0, 4096))).toBe(true);
    });

    it('malformed requests get InvalidArg', async () => {
      const bad = await sc.stub.batchRead({ chunks: 'x' as never }).catch((e) => e);
      expect(bad.code).toBe(StatusCode.InvalidArg);
      const neg = await sc.stub.batchRead({ chunks: [{ id: -1, offset: 0, length: 1 }] }).catch((e) => e);
      expect(neg.code).toBe(StatusCode.InvalidArg);
      const big = await sc.stub.batchRead({ chunks: Array.from({ length: 5 }, (_, i) => ({ id: i, offset: 0, length: CHUNK })) }).catch((e) => e);
      expect(big.code).toBe(StatusCode.InvalidArg);
    });
  });
}
