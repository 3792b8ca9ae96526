import { randomFillSync } from 'node:crypto';
import { IBManager, RDMABuf } from '@ffnet/device';
import { type FfnetError, StatusCode } from '@ffnet/serde';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IBSocketConfig } from '../../src/index.js';
import { connectPair, MiB } from './helpers.js';

// Memory windows through IBSocket.expose on rxe0: an rkey a socket hands its peer works on that connection only,
// and only until revoke(). Without windows (remote rights on the MR) every one of these accesses would succeed.
const CONFIG: Partial<IBSocketConfig> = { bufSize: 4096, sendBufCnt: 32, bufAckBatch: 4, bufSignalBatch: 4, maxSge: 3, maxRdmaWr: 7, maxRdmaWrPerPost: 5 };

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as FfnetError & { statusName?: string },
  );

beforeAll(() => {
  IBManager.start({ portRefreshMs: 0 });
});
afterAll(() => IBManager.stop());

describe('IBSocket.expose on rxe0', () => {
  it("the memory's own rkey (default registration) is refused: only a window opens it", async () => {
    const { client, server } = await connectPair(CONFIG);
    const remote = RDMABuf.allocate(64 * 1024);
    const local = RDMABuf.allocate(64 * 1024);
    try {
      remote.buffer.fill(0);
      randomFillSync(local.buffer);
      const err = await rejection(client.rdmaWrite(remote.toRemoteBuf(), local));
      expect(err?.code).toBe(StatusCode.RDMAError);
      expect(err?.statusName).toBe('REM_ACCESS_ERR');
      expect(remote.buffer.every((x) => x === 0)).toBe(true);
      expect((await client.closed)?.code).toBe(StatusCode.SocketError);
      await server.closed;
    } finally {
      remote.release();
      local.release();
    }
  });

  it('after revoke() the old rkey gets a remote access error (typed, naming the peer); the connection is then broken and a new one works', async () => {
    const { client, server } = await connectPair(CONFIG);
    const remote = RDMABuf.allocate(MiB);
    const local = RDMABuf.allocate(MiB);
    try {
      const win = await server.expose(remote, { access: 'write' });
      randomFillSync(local.buffer);
      await client.rdmaWrite(win.remote, local);
      expect(remote.buffer.equals(local.buffer)).toBe(true);
      await win.revoke();
      expect(win.revoked).toBe(true);
      const before = Buffer.from(remote.buffer);
      randomFillSync(local.buffer);
      const err = await rejection(client.rdmaWrite(win.remote, local));
      expect(err?.code).toBe(StatusCode.RDMAError);
      expect(err?.statusName).toBe('REM_ACCESS_ERR');
      expect(err?.peer).toBe('in-process server');
      expect(remote.buffer.equals(before)).toBe(true);
      // RC semantics (3FS too): a remote access error moves both QPs to ERROR, so the connection closes.
      expect((await client.closed)?.code).toBe(StatusCode.SocketError);
      expect((await server.closed)?.code).toBe(StatusCode.SocketError);

      const next = await connectPair(CONFIG);
      const again = await next.server.expose(remote, { access: 'write' });
      await next.client.rdmaWrite(again.remote, local);
      expect(remote.buffer.equals(local.buffer)).toBe(true);
      await again.revoke();
      await next.client.close();
      await next.server.closed;
    } finally {
      remote.release();
      local.release();
    }
  });

  it("a second connection cannot use the first connection's window while it is bound; the first still can", async () => {
    const one = await connectPair(CONFIG);
    const two = await connectPair(CONFIG);
    const remote = RDMABuf.allocate(MiB);
    const local = RDMABuf.allocate(MiB);
    try {
      remote.buffer.fill(0);
      const win = await one.server.expose(remote);
      randomFillSync(local.buffer);
      const err = await rejection(two.client.rdmaWrite(win.remote, local));
      expect(err?.code).toBe(StatusCode.RDMAError);
      expect(err?.statusName).toBe('REM_ACCESS_ERR');
      expect(remote.buffer.every((x) => x === 0)).toBe(true);
      expect((await two.client.closed)?.code).toBe(StatusCode.SocketError);
      // The window is intact for its own connection.
      await one.client.rdmaWrite(win.remote, local);
      expect(remote.buffer.equals(local.buffer)).toBe(true);
      await win.revoke();
      await one.client.close();
      await one.server.closed;
      await two.server.closed;
    } finally {
      remote.release();
      local.release();
    }
  });

  it('windows are bounded per socket: tryExpose gives null, expose waits for a revoke, and a close fails the waiters', async () => {
    const { client, server } = await connectPair(CONFIG);
    const bufs = [RDMABuf.allocate(4096), RDMABuf.allocate(4096), RDMABuf.allocate(4096)];
    try {
      expect(server.maxWindows).toBe(64);
      const held = [];
      for (let i = 0; i < server.maxWindows; i++) held.push(server.tryExpose(bufs[i % 3]!)!);
      expect(held.every((w) => w !== null)).toBe(true);
      expect(server.windowsInUse).toBe(64);
      expect(server.tryExpose(bufs[0]!)).toBeNull();
      let got = false;
      const waiting = server.expose(bufs[1]!).then((w) => {
        got = true;
        return w;
      });
      await new Promise((r) => setTimeout(r, 50));
      expect(got).toBe(false);
      await held[0]!.revoke();
      const w = await waiting;
      expect(server.windowsInUse).toBe(64);
      // The window is reused under a new rkey, and it works.
      randomFillSync(bufs[2]!.buffer);
      await client.rdmaWrite(w.remote, bufs[2]!);
      expect(bufs[1]!.buffer.equals(bufs[2]!.buffer)).toBe(true);

      const stuck = rejection(server.expose(bufs[0]!));
      await client.close();
      await server.closed;
      expect((await stuck)?.code).toBeDefined();
      expect(server.windowsInUse).toBe(0);
      // Windows revoked after the close resolve at once: they died with the QP.
      await Promise.all(held.slice(1).map((h) => h.revoke()));
      expect(() => server.tryExpose(bufs[0]!)).toThrow(expect.objectContaining({ code: StatusCode.SocketClosed }));
    } finally {
      for (const b of bufs) b.release();
    }
  });
});
