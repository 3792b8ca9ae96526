// 3FS's Storage (from @ffnet/3fs) with SEND_DATA_INLINE over tcp, in the 3fs envelope on both sides.
import { randomBytes } from 'node:crypto';
import { BatchReadReq, FeatureFlags, Storage, WriteReq } from '@ffnet/3fs';
import { decode3fs, encode3fs, StatusCode } from '@ffnet/serde';
import { Client, Server } from '@ffnet/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ThreeFsStorageClient, type ThreeFsStorageService, threefsStorageService } from '../src/index.js';

const chunkId = (n: number): Uint8Array => Uint8Array.from({ length: 16 }, (_, i) => (i === 15 ? n : 0xc0 + i));

async function rejection(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: number; message: string };
  }
  throw new Error('expected the call to fail');
}

describe("3FS Storage over tcp with inline data (envelope '3fs')", () => {
  let server: Server;
  let service: ThreeFsStorageService;
  let client: Client;
  let sc: ThreeFsStorageClient;
  let address: string;

  beforeAll(async () => {
    service = threefsStorageService({ chunkSize: 256 * 1024, maxChunks: 8 });
    server = new Server({ groups: [{ networkType: 'tcp', envelope: '3fs', listener: { host: '127.0.0.1', port: 0 } }] });
    server.addService(service);
    await server.start();
    address = server.addresses[0]!;
    client = new Client({ envelope: '3fs', timeoutMs: 10_000 });
    sc = new ThreeFsStorageClient(client, address);
  });
  afterAll(async () => {
    await client?.stop();
    await server?.stop();
  });

  it('write then batchRead moves the bytes inline, in the messages', async () => {
    const a = randomBytes(100_000);
    const b = randomBytes(3000);
    expect(await sc.write({ chainId: 1, chunkId: chunkId(1), offset: 0 }, a)).toBe(1);
    expect(await sc.write({ chainId: 1, chunkId: chunkId(2), offset: 500 }, b)).toBe(1);
    // A second write to the same chunk bumps its version and lands at its offset.
    expect(await sc.write({ chainId: 1, chunkId: chunkId(1), offset: 10 }, Buffer.from('overwritten'))).toBe(2);
    a.write('overwritten', 10);

    const [whole, middle, second, shortTail, other] = await sc.read([
      { chainId: 1, chunkId: chunkId(1), offset: 0, length: a.length },
      { chainId: 1, chunkId: chunkId(1), offset: 40_000, length: 1234 },
      { chainId: 1, chunkId: chunkId(2), offset: 500, length: b.length },
      // Past the end of chunk 2 (500 + 3000 bytes): short.
      { chainId: 1, chunkId: chunkId(2), offset: 3000, length: 4096 },
      // The same chunk id on another chain is another chunk, never written: zero bytes.
      { chainId: 2, chunkId: chunkId(1), offset: 0, length: 10 },
    ]);
    expect(Buffer.from(whole!).equals(a)).toBe(true);
    expect(Buffer.from(middle!).equals(a.subarray(40_000, 41_234))).toBe(true);
    expect(Buffer.from(second!).equals(b)).toBe(true);
    expect(Buffer.from(shortTail!).equals(b.subarray(2500))).toBe(true);
    expect(other!.length).toBe(0);
    // The server kept what was written, keyed by chain and chunk id.
    expect([...service.chunks.keys()].sort()).toEqual([`1/${Buffer.from(chunkId(1)).toString('hex')}`, `1/${Buffer.from(chunkId(2)).toString('hex')}`]);
  });

  it('the requests the client sends are 3FS structs with SEND_DATA_INLINE and the data in inlinebuf', () => {
    // What ThreeFsStorageClient puts on the wire, re-encoded through the generated schemas: the flag bit and the
    // inline bytes are where 3FS's StorageOperator looks for them.
    const data = Uint8Array.from([1, 2, 3, 250]);
    const req: WriteReq = {
      payload: {
        offset: 0,
        length: data.length,
        chunkSize: 0,
        key: { vChainId: { chainId: 9, chainVer: 1 }, chunkId: chunkId(9) },
        rdmabuf: { addr: 0n, size: 0n, rkeys: [] },
        updateVer: 0,
        updateType: 1,
        checksum: { type: 0, value: 0 },
        inlinebuf: { data: Array.from(data) },
      },
      tag: { clientId: { uuid: new Uint8Array(16), hostname: '' }, requestId: 1n, channel: { id: 0, seqnum: 0n } },
      retryCount: 0,
      userInfo: { uid: 0, gid: 0, groups: [], token: '' },
      featureFlags: FeatureFlags.SEND_DATA_INLINE,
      debugFlags: { injectRandomServerError: false, injectRandomClientError: false, numOfInjectPtsBeforeFail: 0 },
    };
    const bytes = encode3fs(WriteReq, req);
    // vector<u8> on the wire: varint(4) then the four bytes, inside UpdateIO's table.
    expect(Buffer.from(bytes).includes(Buffer.from([4, 1, 2, 3, 250]))).toBe(true);
    const back = decode3fs(WriteReq, bytes);
    expect(back.featureFlags & FeatureFlags.SEND_DATA_INLINE).toBe(4);
    expect(back.payload.inlinebuf.data).toEqual([1, 2, 3, 250]);
    expect(Storage.methods.write.id).toBe(2);
    expect(Storage.methods.batchRead.request).toBe(BatchReadReq);
  });

  it('refuses a batchRead without SEND_DATA_INLINE (it would need RDMA) with InvalidArg', async () => {
    const req: BatchReadReq = {
      payloads: [],
      tag: { clientId: { uuid: new Uint8Array(16), hostname: '' }, requestId: 7n, channel: { id: 0, seqnum: 0n } },
      retryCount: 0,
      userInfo: { uid: 0, gid: 0, groups: [], token: '' },
      featureFlags: 0,
      checksumType: 0,
      debugFlags: { injectRandomServerError: false, injectRandomClientError: false, numOfInjectPtsBeforeFail: 0 },
    };
    const err = await rejection(client.call(address, Storage, 'batchRead', req));
    expect(err.code).toBe(StatusCode.InvalidArg);
    expect(err.message).toContain('SEND_DATA_INLINE');
  });

  it('refuses writes past the chunk size, and new chunks beyond maxChunks, with typed errors', async () => {
    const past = await rejection(sc.write({ chainId: 3, chunkId: chunkId(3), offset: 256 * 1024 - 2 }, Buffer.from('abc')));
    expect(past.code).toBe(StatusCode.InvalidArg);
    expect(past.message).toContain('past the chunk size');
    for (let i = 0; i < 6; i++) await sc.write({ chainId: 4, chunkId: chunkId(i), offset: 0 }, Buffer.from([i]));
    expect(service.chunks.size).toBe(8);
    const full = await rejection(sc.write({ chainId: 4, chunkId: chunkId(6), offset: 0 }, Buffer.from([6])));
    expect(full.code).toBe(StatusCode.ResourceExhausted);
    expect(service.chunks.size).toBe(8);
  });

  it('answers the Storage methods it does not serve with NotImplemented', async () => {
    const tag = { clientId: { uuid: new Uint8Array(16), hostname: '' }, requestId: 0n, channel: { id: 0, seqnum: 0n } };
    const err = await rejection(client.call(address, Storage, 'spaceInfo', { tag, force: false }));
    expect(err.code).toBe(StatusCode.NotImplemented);
  });
});
