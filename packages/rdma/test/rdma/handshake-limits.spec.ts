// Caps and the deadline of the listener side of the IBConnect handshake, attacked on the wire by a peer that
// speaks raw frames (runs in the Soft-RoCE VM: pnpm test:rdma).
import { IB_SOCKET_DEFAULTS, ibSocketSizes } from '@ffnet/connect';
import { IBManager } from '@ffnet/device';
import { decodeMessage, encodeMessage, FrameDecoder, MessageFlags, type MessagePacket, StatusCode } from '@ffnet/serde';
import { type BackendListener, type BackendSocket, rdmaAddress, tcp, tcpAddress } from '@ffnet/transport';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ibSocketOf, rdma, type VerbsBackend } from '../../src/index.js';

const HOST = process.env.FFNET_RDMA_HOST ?? '10.0.2.15';
/** One accepted socket's registered buffers with the default config. */
const BYTES = ibSocketSizes(IB_SOCKET_DEFAULTS).bufferBytes;

type Reply = { ok: boolean; code?: number; message?: string };

/** A handshake peer speaking raw frames over one TCP connection. */
class RawPeer {
  readonly replies: Reply[] = [];
  closed = false;
  readonly done: Promise<void>;
  #waiters: (() => void)[] = [];
  #uuid = 0;

  constructor(readonly sock: BackendSocket) {
    let closed!: () => void;
    this.done = new Promise<void>((r) => (closed = r));
    const decoder = new FrameDecoder((body, compressed) => {
      const pkt: MessagePacket = decodeMessage(body, compressed);
      this.replies.push(pkt.payload as Reply);
      for (const w of this.#waiters.splice(0)) w();
    });
    sock.setHandlers({
      data: (chunk) => decoder.push(chunk),
      drain: () => {},
      written: () => {},
      close: () => {
        this.closed = true;
        for (const w of this.#waiters.splice(0)) w();
        closed();
      },
    });
  }

  static async open(port: number): Promise<RawPeer> {
    return new RawPeer(await tcp().connect(tcpAddress(HOST, port)));
  }

  send(methodId: number, payload: unknown): void {
    this.sock.write([encodeMessage({ uuid: ++this.#uuid, serviceId: 11, methodId, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload })]);
  }

  /** Resolves once `n` replies arrived (or the connection closed, with fewer). */
  async replied(n: number): Promise<Reply[]> {
    while (this.replies.length < n && !this.closed) await new Promise<void>((r) => this.#waiters.push(r));
    return this.replies;
  }
}

/** A well-formed connect request for this VM's rxe0 (the QP numbers are made up: no probe will ever come). */
function connectReq(config: Record<string, unknown> = {}): Record<string, unknown> {
  const dev = IBManager.devices[0]!;
  const port = dev.ports.find((p) => p.gid !== null)!;
  const me = { hostname: 'attacker', dev: dev.id, devName: dev.name, port: port.portNum, mtu: 3, qpNum: 0x1234 };
  return { ...me, link: { kind: 'roce', gid: Buffer.from(port.gid!.gid) }, targetDev: dev.id, targetDevName: dev.name, targetPort: port.portNum, config };
}

describe('rdma listener: handshake caps and deadline', () => {
  const listeners: BackendListener[] = [];
  const peers: RawPeer[] = [];
  const backends: VerbsBackend[] = [];
  beforeAll(() => {
    IBManager.start();
  });
  afterEach(async () => {
    for (const p of peers.splice(0)) p.sock.destroy();
    await Promise.all(listeners.splice(0).map((l) => l.close()));
    // Every accepted QP freed before the next test (and before IBManager.stop() deallocates the PD).
    for (const b of backends.splice(0)) await expect.poll(() => b.acceptStats().qps, { timeout: 60_000 }).toBe(0);
  });
  afterAll(() => {
    IBManager.stop();
  });

  async function listen(backend: VerbsBackend): Promise<number> {
    backends.push(backend);
    const l = await backend.listen(rdmaAddress(HOST, 0), {}, (s) => s.destroy());
    listeners.push(l);
    return l.address.port;
  }
  async function peer(port: number): Promise<RawPeer> {
    const p = await RawPeer.open(port);
    peers.push(p);
    return p;
  }

  it('100 connect requests over one handshake connection: one QP, 99 typed refusals, pinned memory of one socket', async () => {
    const backend = rdma({ handshakeTimeoutMs: 120_000 });
    const p = await peer(await listen(backend));
    for (let i = 0; i < 100; i++) p.send(2, connectReq());
    const replies = await p.replied(100);
    expect(replies.length).toBe(100);
    expect(replies.filter((r) => r.ok).length).toBe(1);
    const refused = replies.filter((r) => !r.ok);
    expect(refused.length).toBe(99);
    for (const r of refused) {
      expect(r.code).toBe(StatusCode.ResourceExhausted);
      expect(r.message).toContain('(maxQps) is 1');
    }
    // The connection goes on: it still answers.
    p.send(1, {});
    expect((await p.replied(101))[100]!.ok).toBe(true);
    expect(backend.acceptStats()).toMatchObject({ qps: 1, pinnedBytes: BYTES, refused: 99, pendingHandshakes: 1 });
    // Closing the connection frees the QP and its buffers.
    p.sock.destroy();
    await expect.poll(() => backend.acceptStats(), { timeout: 30_000 }).toMatchObject({ qps: 0, pinnedBytes: 0, pendingHandshakes: 0 });
  });

  it('100 handshake connections: refusals past the pending and pinned-memory caps, pinned memory never above its cap', async () => {
    const maxPinnedBytes = 3 * BYTES + 1;
    const backend = rdma({ handshakeTimeoutMs: 120_000, maxPendingHandshakes: 16, maxQps: 8, maxPinnedBytes });
    const port = await listen(backend);
    const all: RawPeer[] = [];
    for (let i = 0; i < 100; i++) {
      const p = await peer(port);
      p.send(2, connectReq());
      all.push(p);
    }
    const replies: Reply[] = [];
    for (const p of all) {
      replies.push(...(await p.replied(1)));
      expect(backend.acceptStats().pinnedBytes).toBeLessThanOrEqual(maxPinnedBytes);
    }
    expect(replies.length).toBe(100);
    expect(replies.filter((r) => r.ok).length).toBe(3);
    const refused = replies.filter((r) => !r.ok);
    for (const r of refused) expect(r.code).toBe(StatusCode.ResourceExhausted);
    expect(refused.filter((r) => r.message!.includes('(maxPendingHandshakes) is 16')).length).toBe(84);
    expect(refused.filter((r) => r.message!.includes('(maxPinnedBytes)')).length).toBe(13);
    expect(backend.acceptStats()).toMatchObject({ qps: 3, pinnedBytes: 3 * BYTES, pendingHandshakes: 16, refused: 97 });
    // Connections refused for the pending cap are closed by the server once answered.
    await Promise.all(all.filter((_, i) => replies[i]!.message?.includes('(maxPendingHandshakes)')).map((p) => p.done));

    // A real client sees the typed refusal too.
    const err = await rdma()
      .connect(rdmaAddress(HOST, port))
      .then(
        (s) => {
          s.destroy();
          return undefined;
        },
        (e: unknown) => e,
      );
    expect(err).toMatchObject({ code: StatusCode.ResourceExhausted });

    for (const p of all) p.sock.destroy();
    await expect.poll(() => backend.acceptStats(), { timeout: 30_000 }).toMatchObject({ qps: 0, pinnedBytes: 0, pendingHandshakes: 0 });
  });

  it('an oversized or too deep buffer request is refused before anything is registered', async () => {
    const backend = rdma({ handshakeTimeoutMs: 120_000, maxBufferBytes: 4 * 1024 * 1024 });
    const p = await peer(await listen(backend));
    p.send(2, connectReq({ bufSize: 1024 * 1024, sendBufCnt: 32 }));
    p.send(2, connectReq({ bufSize: 1, sendBufCnt: 100_000, bufAckBatch: 8 }));
    const [big, deep] = await p.replied(2);
    expect(big).toMatchObject({ ok: false, code: StatusCode.InvalidConfig });
    expect(big!.message).toContain('(maxBufferBytes)');
    expect(deep).toMatchObject({ ok: false, code: StatusCode.InvalidConfig });
    expect(deep!.message).toContain('(maxWorkRequests)');
    expect(backend.acceptStats()).toMatchObject({ qps: 0, pinnedBytes: 0 });
    // Within the caps the same connection gets its QP.
    p.send(2, connectReq());
    expect((await p.replied(3))[2]!.ok).toBe(true);
    expect(backend.acceptStats()).toMatchObject({ qps: 1, pinnedBytes: BYTES });
  });

  it('a handshake that sends nothing, or stalls before its probe, is closed at the deadline and its QP freed', async () => {
    const deadline = 2000;
    const backend = rdma({ handshakeTimeoutMs: deadline });
    const port = await listen(backend);
    const t0 = performance.now();
    const silent = await peer(port);
    const stalled = await peer(port);
    stalled.send(2, connectReq());
    expect((await stalled.replied(1))[0]!.ok).toBe(true);
    expect(backend.acceptStats()).toMatchObject({ qps: 1, pendingHandshakes: 2 });
    await Promise.all([silent.done, stalled.done]);
    // Never before the deadline (a little slack for the two clocks' granularity).
    expect(performance.now() - t0).toBeGreaterThanOrEqual(deadline - 50);
    expect(silent.replies).toEqual([]);
    await expect.poll(() => backend.acceptStats(), { timeout: 30_000 }).toMatchObject({ qps: 0, pinnedBytes: 0, pendingHandshakes: 0, timedOut: 2 });
    // A real client that completes in time is served.
    const ok = await rdma().connect(rdmaAddress(HOST, port));
    ok.destroy();
    await ibSocketOf(ok)!.closed;
    // Bounded, so that without a deadline this fails instead of waiting for the suite's 10-minute limit.
  }, 180_000);
});
