import { type ChildProcess, fork } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { IBManager, RDMABuf, RDMARemoteBuf } from '@ffnet/device';
import { crc32c, errorFromCode, type FfnetError, StatusCode } from '@ffnet/serde';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectIBSocket, type IBConnectCall, IBConnectServer, IBSocket, type IBSocketConfig, IBSocketState } from '../../src/index.js';
import { connectPair, Endpoint, frameCall, MiB, pool, randomMessages, transfer } from './helpers.js';

// 3FS TestIBSocket on a real verbs device (rxe0 in the Soft-RoCE VM), both ends in this process and the
// handshake going through serde frames. Sizes: 3FS's test config (32 send buffers, ACK and signal every 4,
// maxSge 3, maxRdmaWr 7, 5 per post) with 4 KiB buffers instead of 512 B, so a 2 MiB message is 512 buffers and
// wraps the 32-buffer credit window 16 times while the suite stays quick under TCG emulation. The credit test
// below uses 3FS's exact 512 B buffers.
const CONFIG: Partial<IBSocketConfig> = {
  bufSize: 4096,
  sendBufCnt: 32,
  bufAckBatch: 4,
  bufSignalBatch: 4,
  maxSge: 3,
  maxRdmaWr: 7,
  maxRdmaWrPerPost: 5,
};

const code = (e: unknown) => (e as FfnetError | undefined)?.code;
const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as FfnetError,
  );

beforeAll(() => {
  IBManager.start({ portRefreshMs: 0 });
});
afterAll(() => IBManager.stop());

describe('IBSocket over rxe0', () => {
  it('connects: both ends READY, each knowing the other', async () => {
    const log: string[] = [];
    let server: IBSocket | undefined;
    const srv = new IBConnectServer({ onSocket: (s) => (server = s) });
    const client = await connectIBSocket(frameCall(srv, log), { config: CONFIG });
    expect(log).toEqual(['query', 'connect']);
    expect(client.state).toBe(IBSocketState.READY);
    expect(server!.state).not.toBe(IBSocketState.ERROR);
    await server!.ready;
    expect(server!.state).toBe(IBSocketState.READY);
    const c = client.localInfo!;
    const s = server!.localInfo!;
    expect(client.peerInfo).toMatchObject({ qpNum: s.qpNum, devName: 'rxe0', port: 1 });
    expect(server!.peerInfo).toMatchObject({ qpNum: c.qpNum, devName: 'rxe0', port: 1 });
    expect(c.link.kind).toBe('roce');
    // The server adopted the client's config.
    expect(server!.config).toMatchObject(CONFIG);
    expect(server!.sizes).toEqual(client.sizes);
    await Promise.all([client.check(), server!.check()]);
    await client.close();
    expect(await server!.closed).toMatchObject({ code: StatusCode.SocketClosed });
  });

  it('client → server: 100 random messages of up to 2 MiB arrive CRC-intact; closing gives the server SocketClosed', async () => {
    const { client, server } = await connectPair(CONFIG);
    const c = new Endpoint(client);
    const s = new Endpoint(server);
    await transfer(c, s, randomMessages(100));
    expect(c.written).toBe(100);
    await client.close();
    expect(await c.closed).toBeUndefined();
    expect(code(await s.closed)).toBe(StatusCode.SocketClosed);
  });

  it('server → client: 100 random messages of up to 2 MiB arrive CRC-intact; closing gives the client SocketClosed', async () => {
    const { client, server } = await connectPair(CONFIG);
    const c = new Endpoint(client);
    const s = new Endpoint(server);
    await transfer(s, c, randomMessages(100));
    await server.close();
    expect(code(await c.closed)).toBe(StatusCode.SocketClosed);
    expect(await s.closed).toBeUndefined();
  });

  it('both directions at once', async () => {
    const { client, server } = await connectPair(CONFIG);
    const c = new Endpoint(client);
    const s = new Endpoint(server);
    await Promise.all([transfer(c, s, randomMessages(60)), transfer(s, c, randomMessages(60))]);
    await Promise.all([client.close(), server.close()]);
  });

  it('credits: a paused reader lets exactly sendBufCnt buffers through, then the writer waits; resuming delivers the rest', async () => {
    const cfg = { bufSize: 512, sendBufCnt: 32, bufAckBatch: 4, bufSignalBatch: 4 };
    const { client, server } = await connectPair(cfg);
    const c = new Endpoint(client);
    const s = new Endpoint(server);
    server.pause();
    const msg = pool.subarray(0, 100_000);
    const sending = c.send(msg);
    const total = 8 + msg.length;
    expect(client.pendingBytes).toBe(total - 32 * 512);
    await new Promise((r) => setTimeout(r, 300));
    // No ACKs came back, so no credit: nothing more left the writer and nothing reached the reader.
    expect(client.pendingBytes).toBe(total - 32 * 512);
    expect(s.sink.bytes).toBe(0);
    server.resume();
    await sending;
    await s.sink.until(1);
    expect(s.sink.messages[0]).toMatchObject({ len: msg.length, actual: crc32c(msg) });
    expect(client.pendingBytes).toBe(0);
    await client.close();
  });

  it('end() sends everything still waiting for credits before the CLOSE', async () => {
    // A long drain timeout: the point is that nothing is cut short, however slow the emulated machine is.
    const { client, server } = await connectPair({ ...CONFIG, drainTimeoutMs: 300_000 });
    const c = new Endpoint(client);
    const s = new Endpoint(server);
    const msgs = randomMessages(3);
    const sent = msgs.map((m) => c.send(m));
    expect(client.pendingBytes).toBeGreaterThan(0);
    client.end();
    expect(() => client.write([Buffer.from('late')])).toThrow(expect.objectContaining({ code: StatusCode.SocketClosed }));
    expect(code(await s.closed)).toBe(StatusCode.SocketClosed);
    expect(s.sink.messages.map((m) => [m.len, m.actual])).toEqual(msgs.map((m) => [m.length, crc32c(m)]));
    expect(await c.closed).toBeUndefined();
    await Promise.all(sent);
  });

  it('RDMA write and read of a single buffer, checked by CRC', async () => {
    const { client, server } = await connectPair(CONFIG);
    const remote = RDMABuf.allocate(MiB);
    const local = RDMABuf.allocate(MiB);
    try {
      // The server's memory, exposed to the client through a window bound on the server's QP.
      const win = await server.expose(remote);
      expect(server.windowsInUse).toBe(1);
      randomFillSync(local.buffer);
      await client.rdmaWrite(win.remote, local);
      expect(crc32c(remote.buffer)).toBe(crc32c(local.buffer));
      randomFillSync(remote.buffer);
      await client.rdmaRead(win.remote, local);
      expect(crc32c(local.buffer)).toBe(crc32c(remote.buffer));
      await win.revoke();
      expect(server.windowsInUse).toBe(0);
      // The other direction, into part of the client's memory (a write-only window over that range).
      randomFillSync(remote.buffer);
      const part = await client.expose(local.subrange(4096, 65536)!, { access: 'write' });
      expect(part.remote.addr).toBe(local.address + 4096n);
      expect(part.remote.length).toBe(65536);
      await server.rdmaWrite(part.remote, remote.subrange(0, 65536)!);
      expect(local.buffer.subarray(4096, 4096 + 65536).equals(remote.buffer.subarray(0, 65536))).toBe(true);
      await part.revoke();
    } finally {
      await Promise.all([client.close(), server.closed]);
      remote.release();
      local.release();
    }
  });

  it('batched multi-SGE RDMA writes and reads: split by maxSge, posted under the semaphore, checked by CRC', async () => {
    const { client, server } = await connectPair(CONFIG);
    const remote = RDMABuf.allocate(MiB);
    const local = RDMABuf.allocate(MiB);
    try {
      const win = await server.expose(remote);
      randomFillSync(local.buffer);
      // 6 remote regions of 64 KiB, each filled from 7 scattered local pieces: 3 WRs per region (maxSge 3),
      // 18 WRs in all, so 4 posts of at most 5 and more than maxRdmaWr (7) in flight-wanted.
      const regions = plan(6, 7);
      const w = client.rdmaWriteBatch();
      for (const r of regions)
        w.add(
          win.remote.subrange(r.offset, r.length)!,
          r.pieces.map((p) => local.subrange(p.offset, p.length)!),
        );
      expect(w.wrCount).toBe(18);
      await w.post();
      for (const r of regions) {
        const expected = Buffer.concat(r.pieces.map((p) => local.buffer.subarray(p.offset, p.offset + p.length)));
        expect(crc32c(remote.buffer.subarray(r.offset, r.offset + r.length))).toBe(crc32c(expected));
      }
      // Reads scatter remote regions into local pieces; four batches at once share the semaphore.
      randomFillSync(remote.buffer);
      local.buffer.fill(0);
      const batches = [0, 1, 2, 3].map(() => client.rdmaReadBatch());
      const readRegions = plan(8, 5);
      for (const [i, r] of readRegions.entries()) {
        batches[i % 4]!.add(
          win.remote.subrange(r.offset, r.length)!,
          r.pieces.map((p) => local.subrange(p.offset, p.length)!),
        );
      }
      await Promise.all(batches.map((b) => b.post()));
      for (const r of readRegions) {
        const got = Buffer.concat(r.pieces.map((p) => local.buffer.subarray(p.offset, p.offset + p.length)));
        expect(crc32c(got)).toBe(crc32c(remote.buffer.subarray(r.offset, r.offset + r.length)));
      }
    } finally {
      await Promise.all([client.close(), server.closed]);
      remote.release();
      local.release();
    }
  });

  it('a remote close gives SocketClosed to the reader, writes, checks and RDMA', async () => {
    const { client, server } = await connectPair(CONFIG);
    const c = new Endpoint(client);
    new Endpoint(server);
    await server.close();
    expect(code(await c.closed)).toBe(StatusCode.SocketClosed);
    expect(client.state).toBe(IBSocketState.CLOSE);
    expect(() => client.write([Buffer.from('x')])).toThrow(expect.objectContaining({ code: StatusCode.SocketClosed }));
    expect(code(await rejection(client.check()))).toBe(StatusCode.SocketClosed);
    expect(() => client.rdmaWriteBatch()).toThrow(expect.objectContaining({ code: StatusCode.SocketClosed }));
  });

  it('close before connect, and close while the QP is being set up (the server then drops it at the accept timeout)', async () => {
    const early = new IBSocket({ config: CONFIG });
    early.destroy();
    expect(code(await rejection(early.connect(frameCall(new IBConnectServer({ onSocket: () => {} })))))).toBe(StatusCode.SocketClosed);

    let accepted: IBSocket | undefined;
    const srv = new IBConnectServer({ acceptTimeoutMs: 1500, onSocket: (s) => (accepted = s) });
    const inner = frameCall(srv);
    const sock = new IBSocket({ config: CONFIG });
    const call: IBConnectCall = async (method, req, opts) => {
      const rsp = await inner(method, req, opts);
      if (method === 'connect') {
        expect(sock.state).toBe(IBSocketState.CONNECTING);
        sock.destroy();
      }
      return rsp;
    };
    expect(code(await rejection(sock.connect(call)))).toBe(StatusCode.SocketClosed);
    expect(sock.state).toBe(IBSocketState.CLOSE);
    expect(accepted!.state).toBe(IBSocketState.ACCEPTED);
    const err = await accepted!.closed;
    expect(code(err)).toBe(StatusCode.SocketError);
    expect(err!.message).toContain('accept timed out');
  });

  it('fault injection: a bad rkey gives SocketError on both sides, and the next connection works', async () => {
    // 3FS runs this with retry_cnt 0; Soft-RoCE under emulation loses an occasional packet, so retries stay on.
    const { client, server } = await connectPair(CONFIG);
    const c = new Endpoint(client);
    const s = new Endpoint(server);
    const remote = RDMABuf.allocate(64 * 1024);
    const local = RDMABuf.allocate(64 * 1024);
    try {
      const good = (await server.expose(remote)).remote;
      const bad = new RDMARemoteBuf(
        good.addr,
        good.length,
        good.rkeys.map((k) => ({ devId: k.devId, rkey: k.rkey ^ 0xff })),
      );
      const err = await rejection(client.rdmaWrite(bad, local));
      expect(code(err)).toBe(StatusCode.RDMAError);
      expect(err!.message).toContain('REM_ACCESS_ERR');
      expect(code(await c.closed)).toBe(StatusCode.SocketError);
      expect(client.state).toBe(IBSocketState.ERROR);
      // The server's QP is broken too: it either noticed already, or its next operation finds out.
      expect(code(await rejection(server.check()))).toBe(StatusCode.SocketError);
      expect(code(await s.closed)).toBe(StatusCode.SocketError);

      const next = await connectPair(CONFIG);
      const c2 = new Endpoint(next.client);
      const s2 = new Endpoint(next.server);
      await transfer(c2, s2, randomMessages(5));
      await transfer(s2, c2, randomMessages(5));
      randomFillSync(local.buffer);
      // The old connection's window died with its QP: the same memory is exposed again on the new one.
      const again = await next.server.expose(remote);
      expect(again.remote.rkey(good.rkeys[0]!.devId)).not.toBe(good.rkeys[0]!.rkey);
      await next.client.rdmaWrite(again.remote, local);
      expect(remote.buffer.equals(local.buffer)).toBe(true);
      await next.client.close();
    } finally {
      remote.release();
      local.release();
    }
  });

  it('check(): resolves on a healthy peer, fails with SocketError once the peer process is killed', async () => {
    const child: ChildProcess = fork(fileURLToPath(new URL('./peer-process.mjs', import.meta.url)), [], {
      serialization: 'advanced',
      stdio: 'inherit',
      execArgv: [],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('message', () => resolve());
        child.once('exit', (c) => reject(new Error(`peer process exited with ${c}`)));
      });
      let id = 0;
      const pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
      child.on('message', (m: { id: number; ok: boolean; value?: unknown; code?: number; message?: string }) => {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (m.ok) p?.resolve(m.value);
        else p?.reject(errorFromCode(m.code!, m.message!));
      });
      const call: IBConnectCall = (method, req) =>
        new Promise((resolve, reject) => {
          pending.set(++id, { resolve, reject });
          child.send({ id, method, req });
        });
      // Retries kept short so the dead peer is found quickly: 4 tries × 4.096 µs × 2^14 ≈ 270 ms.
      const client = await connectIBSocket(call, { config: { ...CONFIG, timeout: 14, retryCnt: 3 }, timeoutMs: 120_000 });
      const c = new Endpoint(client);
      await client.check();
      await client.check();
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const err = await rejection(client.check());
      expect(code(err)).toBe(StatusCode.SocketError);
      const closed = await c.closed;
      expect(code(closed)).toBe(StatusCode.SocketError);
      expect(String((closed!.cause as Error).message)).toMatch(/RETRY_EXC_ERR|RESP_TIMEOUT_ERR/);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('InvalidConfig: maxRdAtomic above the device limit is refused before the server is asked to connect', async () => {
    const limit = IBManager.devices[0]!.attr.maxQpRdAtom;
    expect(limit).toBeLessThan(255);
    const log: string[] = [];
    const srv = new IBConnectServer({ onSocket: () => {} });
    const err = await rejection(connectIBSocket(frameCall(srv, log), { config: { ...CONFIG, maxRdAtomic: limit + 1 } }));
    expect(code(err)).toBe(StatusCode.InvalidConfig);
    expect(err!.message).toContain('max_qp_rd_atom');
    expect(log).toEqual(['query']);
  });
});

/** `n` regions of 64 KiB at distinct offsets, each made of `k` local pieces taken from scattered places. */
function plan(n: number, k: number): { offset: number; length: number; pieces: { offset: number; length: number }[] }[] {
  const regionLen = 64 * 1024;
  const out = [];
  for (let i = 0; i < n; i++) {
    const pieces = [];
    let left = regionLen;
    const base = Math.floor(regionLen / k);
    for (let j = 0; j < k; j++) {
      // Uneven lengths, the last piece taking the rest (at most base + (k-1)*499 < 16 KiB for k ≤ 7).
      const length = j === k - 1 ? left : base - ((i * 7919 + j * 104729) % 500);
      left -= length;
      // Local pieces sit in 16 KiB slots going backwards through the buffer: consecutive SGEs are never adjacent.
      pieces.push({ offset: MiB - (i * k + j + 1) * 16 * 1024, length });
    }
    out.push({ offset: i * regionLen * 2, length: regionLen, pieces });
  }
  return out;
}
