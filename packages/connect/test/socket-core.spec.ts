import { RDMAError, SocketClosedError, SocketError, StatusCode, TimeoutError } from '@ffnet/serde';
import { describe, expect, it } from 'vitest';
import { CoreTimer, IBSocketState } from '../src/socket-core.js';
import { encodeImm, ImmType, immType, immValue, WrType, wrId, wrIdType, wrIdValue } from '../src/wire.js';
import { connectedPair, Side, SimViolation, settle, type Work, type Wr, wcError } from './core-sim.js';

// Small buffers so a few writes exhaust the credits: 8 send buffers of 16 bytes, an ACK per 2 consumed, every
// 2nd SEND signaled (qpAckBufs = 8, 17 receive buffers).
const SMALL = { bufSize: 16, sendBufCnt: 8, bufAckBatch: 2, bufSignalBatch: 2, maxRdmaWr: 7, maxRdmaWrPerPost: 5, drainTimeoutMs: 1000 };
const S = SMALL.sendBufCnt;
const B = SMALL.bufSize;

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const dataSends = (wrs: readonly Wr[]) => wrs.filter((w) => w.kind === 'send');
const acks = (wrs: readonly Wr[]) => wrs.filter((w) => w.kind === 'imm' && immType(w.imm) === ImmType.ACK && immValue(w.imm) > 0);

describe('IBSocketCore handshake', () => {
  it('the probe makes the server READY (after moving to RTS) and its completion makes the client READY', () => {
    const a = new Side('a', SMALL);
    const b = new Side('b', SMALL);
    a.peer = b;
    b.peer = a;
    a.core.attach(a.mem);
    b.core.attach(b.mem);
    // Every receive buffer is posted before the peer can send.
    expect(a.postedRecv).toHaveLength(a.core.sizes.maxRecvWr);
    b.core.accepted(15_000);
    expect(b.timers.get(CoreTimer.ACCEPT)).toBe(15_000);
    a.core.connecting();
    a.core.rts();
    a.core.probe();
    const probe = a.wire[0]!;
    expect(probe).toMatchObject({ kind: 'imm', signaled: true, imm: encodeImm(ImmType.ACK, 0), id: wrId(WrType.ACK, 0) });
    a.transmit();
    expect(b.core.state).toBe(IBSocketState.ACCEPTED);
    b.poll();
    expect(b.core.state).toBe(IBSocketState.READY);
    expect(b.rtsMoves).toBe(1);
    expect(b.readies).toBe(1);
    expect(b.timers.has(CoreTimer.ACCEPT)).toBe(false);
    expect(a.core.state).toBe(IBSocketState.CONNECTING);
    a.poll();
    expect(a.core.state).toBe(IBSocketState.READY);
    expect(a.readies).toBe(1);
  });

  it('an accepted socket without a probe fails at the accept timer with SocketError naming the peer', () => {
    const b = new Side('b', SMALL);
    b.core.attach(b.mem);
    b.core.accepted(250);
    b.fireTimer(CoreTimer.ACCEPT);
    expect(b.core.state).toBe(IBSocketState.ERROR);
    expect(b.finishes).toBe(1);
    const err = b.core.result!;
    expect(err).toBeInstanceOf(SocketError);
    expect(err.peer).toBe('peer of b');
    expect(err.cause).toBeInstanceOf(TimeoutError);
    expect((err.cause as Error).message).toContain('250 ms');
  });

  it('writes before READY are queued, then sent once the socket is READY', () => {
    const a = new Side('a', SMALL);
    const b = new Side('b', SMALL);
    a.peer = b;
    b.peer = a;
    a.core.attach(a.mem);
    b.core.attach(b.mem);
    b.core.accepted(15_000);
    a.core.connecting();
    const msg = bytes(40);
    expect(a.core.write([msg])).toBe(false);
    expect(a.core.pendingBytes).toBe(40);
    a.core.rts();
    a.core.probe();
    expect(dataSends(a.wire)).toHaveLength(0);
    settle(a, b);
    expect(b.core.resume()).toBe(true);
    settle(a, b);
    expect(b.received()).toEqual(msg);
    expect(a.drains).toBe(1);
    expect(a.writes).toBe(1);
  });
});

describe('IBSocketCore credits', () => {
  it('credit exhaustion: sendBufCnt buffers go out, the rest waits; ACKs from the peer let it flow', () => {
    const { a, b } = connectedPair(SMALL);
    const msg = bytes(S * B + 40, 2);
    expect(a.core.write([msg])).toBe(false);
    expect(dataSends(a.wire)).toHaveLength(S);
    expect(a.core.pendingBytes).toBe(40);
    expect(a.core.diagnostics().sendFree).toBe(0);
    // Local completions alone free nothing: the peer has not acknowledged.
    a.transmitAll();
    a.poll();
    expect(a.wire).toHaveLength(0);
    expect(a.core.pendingBytes).toBe(40);
    expect(a.core.diagnostics().sendSignaled).toBe(S);
    // The peer is paused: it holds the buffers, no ACK goes back, nothing more flows.
    b.poll();
    expect(b.wire).toHaveLength(0);
    a.poll();
    expect(a.wire).toHaveLength(0);
    // Resuming consumes, re-posts and acknowledges: 8 buffers / batch 2 = 4 ACK(2).
    expect(b.core.resume()).toBe(true);
    b.poll();
    expect(acks(b.wire).map((w) => immValue(w.imm))).toEqual([2, 2, 2, 2]);
    b.transmitAll();
    a.poll();
    expect(a.core.pendingBytes).toBe(0);
    expect(dataSends(a.wire).map((w) => w.len)).toEqual([16, 16, 8]);
    settle(a, b);
    expect(b.received()).toEqual(msg);
    expect(a.drains).toBe(1);
    expect(a.writes).toBe(1);
  });

  it('counters (for metrics) match the work requests the QP was given and count the writes that waited for credits', () => {
    const { a, b } = connectedPair(SMALL);
    const sentBefore = a.posted.length;
    expect(a.core.counters.sendWrs).toBe(sentBefore);
    expect(a.core.counters.recvWrs).toBe(a.reposts.length);
    expect(a.core.counters.creditStalls).toBe(0);
    expect(a.core.write([bytes(B, 3)])).toBe(true);
    expect(a.core.counters.creditStalls).toBe(0);
    // More than the send buffers hold: the write waits for the peer's ACKs.
    expect(a.core.write([bytes(S * B + 40, 4)])).toBe(false);
    const stalls = a.core.counters.creditStalls;
    expect(stalls).toBeGreaterThan(0);
    b.core.resume();
    settle(a, b);
    expect(b.received().length).toBe(B + S * B + 40);
    expect(a.core.counters.sendWrs).toBe(a.posted.length);
    expect(a.core.counters.sendWrs).toBeGreaterThan(sentBefore + S);
    expect(b.core.counters.sendWrs).toBe(b.posted.length);
    expect(b.core.counters.recvWrs).toBe(b.reposts.length);
    expect(a.core.counters.creditStalls).toBeGreaterThanOrEqual(stalls);
    expect(a.core.counters.rdmaWrs).toBe(0);
    a.core.submitRdma([
      { tag: 'w1', count: 3, id: a.core.nextRdmaId() },
      { tag: 'w2', count: 2, id: a.core.nextRdmaId() },
    ]);
    expect(a.rdmaPosted).toHaveLength(2);
    expect(a.core.counters.rdmaWrs).toBe(5);
  });

  it('a write that fits goes out at once and counts as written; the partly filled buffer is flushed', () => {
    const { a, b } = connectedPair(SMALL);
    b.core.resume();
    expect(a.core.write([bytes(10, 3), bytes(10, 4)])).toBe(true);
    expect(dataSends(a.wire).map((w) => w.len)).toEqual([16, 4]);
    expect(a.writes).toBe(1);
    settle(a, b);
    expect(b.received()).toEqual(Buffer.concat([bytes(10, 3), bytes(10, 4)]));
    expect(a.drains).toBe(0);
  });

  it('ACK batching: one ACK(bufAckBatch) per bufAckBatch consumed buffers, none per message and none for a partial batch when idle', () => {
    const cfg = { ...SMALL, bufAckBatch: 4 };
    const { a, b } = connectedPair(cfg);
    b.core.resume();
    for (let k = 1; k <= 3; k++) {
      a.core.write([bytes(B, k)]);
      a.transmitAll();
      b.poll();
      expect(acks(b.posted)).toHaveLength(0);
      expect(b.core.diagnostics().consumedUnacked).toBe(k);
    }
    // Idle: more poll rounds with nothing new send no ACK for the partial batch.
    b.poll();
    b.poll();
    expect(acks(b.posted)).toHaveLength(0);
    a.core.write([bytes(B, 4)]);
    a.transmitAll();
    b.poll();
    expect(acks(b.posted).map((w) => immValue(w.imm))).toEqual([4]);
    expect(b.core.diagnostics().consumedUnacked).toBe(0);
  });

  it('ACK sends are limited to qpAckBufs in flight; a completed ACK lets a deferred one go', () => {
    // bufAckBatch 1: every consumed buffer owes an ACK, more than qpAckBufs (8 + 4 = 12) at once.
    const cfg = { ...SMALL, sendBufCnt: 16, bufAckBatch: 1, bufSignalBatch: 1 };
    const { a, b } = connectedPair(cfg);
    const qpAckBufs = b.core.sizes.qpAckBufs;
    expect(qpAckBufs).toBe(20);
    b.core.resume();
    // Use up the ACK budget with ACKs that never complete.
    for (let round = 0; round < 2; round++) {
      a.core.write([bytes(16 * B, round)]);
      a.transmitAll();
      while (b.deliverRecv()) {}
      b.core.progress();
      // Transmit b's ACKs to a (they cost a's receive buffers), keep b's completions of them undelivered.
      b.transmitAll();
      a.poll();
    }
    expect(acks(b.posted)).toHaveLength(qpAckBufs);
    expect(b.core.diagnostics().ackAvail).toBe(0);
    expect(b.core.diagnostics().consumedUnacked).toBe(32 - qpAckBufs);
    // One ACK completes: exactly one deferred ACK goes out.
    b.deliverSend(b.sendCq.findIndex((c) => wrIdType(c.id) === WrType.ACK));
    b.core.progress();
    expect(acks(b.posted)).toHaveLength(qpAckBufs + 1);
    settle(a, b);
    expect(b.received()).toEqual(Buffer.concat([bytes(16 * B, 0), bytes(16 * B, 1)]));
  });

  it('signalling: every bufSignalBatch-th SEND is signaled and its wr_id counts the sends it covers', () => {
    const cfg = { ...SMALL, bufSignalBatch: 3 };
    const { a } = connectedPair(cfg);
    a.core.write([bytes(7 * B)]);
    const sends = dataSends(a.wire);
    expect(sends.map((w) => w.signaled)).toEqual([false, false, true, false, false, true, false]);
    for (const w of sends) {
      expect(wrIdType(w.id)).toBe(WrType.SEND);
      expect(wrIdValue(w.id)).toBe(w.signaled ? 3 : 0);
    }
    // The counter carries over to the next write: the 9th send is the next signaled one.
    a.core.write([bytes(B)]);
    expect(
      dataSends(a.wire)
        .slice(7)
        .map((w) => w.signaled),
    ).toEqual([false]);
  });

  it('completions in any order: a buffer is freed only once both its signaled completion and its ACK arrived', () => {
    for (const order of ['acks-first', 'sends-first', 'interleaved', 'sends-reversed'] as const) {
      const { a, b } = connectedPair(SMALL);
      b.core.resume();
      a.core.write([bytes(S * B + 5, 9)]);
      a.transmitAll();
      b.poll();
      b.transmitAll();
      const sendCqs = a.sendCq.length;
      const ackCqs = a.recvCq.length;
      expect(sendCqs).toBe(S / SMALL.bufSignalBatch);
      expect(ackCqs).toBe(S / SMALL.bufAckBatch);
      if (order === 'acks-first') {
        while (a.deliverRecv()) {}
        a.core.progress();
        expect(a.core.diagnostics().sendFree).toBe(0);
        while (a.deliverSend()) {}
      } else if (order === 'sends-first') {
        while (a.deliverSend()) {}
        a.core.progress();
        expect(a.core.diagnostics().sendFree).toBe(0);
        while (a.deliverRecv()) {}
      } else if (order === 'sends-reversed') {
        while (a.deliverSend(a.sendCq.length - 1)) {}
        while (a.deliverRecv()) {}
      } else {
        // One ACK (2 buffers) and one signaled completion (2 sends): exactly 2 buffers free.
        a.deliverRecv();
        a.deliverSend(1);
        a.core.progress();
        expect(a.core.diagnostics().sendFree).toBe(2 - 1);
        while (a.deliverSend()) {}
        while (a.deliverRecv()) {}
      }
      a.core.progress();
      expect(a.core.pendingBytes).toBe(0);
      settle(a, b);
      expect(b.received()).toEqual(bytes(S * B + 5, 9));
      expect(a.core.diagnostics()).toMatchObject({ sendFree: S - 1, sendSignaled: 0, sendAcked: 0 });
    }
  });

  it('receive buffers are re-posted only after their data was copied out; a paused reader keeps them and sends no ACK', () => {
    const { a, b } = connectedPair(SMALL);
    a.core.write([bytes(5 * B, 5)]);
    a.transmitAll();
    const before = b.reposts.length;
    b.poll();
    expect(b.reposts.length).toBe(before);
    expect(b.core.diagnostics().receivedUnconsumed).toBe(5);
    expect(acks(b.posted)).toHaveLength(0);
    const held = [...b.recvState].filter((s) => s === 2).length;
    expect(held).toBe(5);
    expect(b.core.resume()).toBe(true);
    b.poll();
    // The sim scribbles over a buffer the moment it is re-posted, so intact data proves the copy came first.
    expect(b.received()).toEqual(bytes(5 * B, 5));
    expect(b.reposts.length).toBe(before + 5);
    expect([...b.recvState].filter((s) => s === 2)).toHaveLength(0);
    expect(acks(b.posted)).toHaveLength(2);
  });

  it('immediates with data, unknown immediates and unknown wr_ids fail the socket with SocketError', () => {
    // What the simulated hardware does when a message lands in the oldest posted receive buffer.
    const land = (b: Side) => {
      const idx = b.postedRecv.shift()!;
      b.recvState[idx] = 2;
      return wrId(WrType.RECV, idx);
    };
    const cases: [string, (b: Side) => void, RegExp][] = [
      ['imm with data', (b) => b.core.completed(land(b), 4, encodeImm(ImmType.ACK, 2)), /arrived with 4 bytes/],
      ['unknown imm', (b) => b.core.completed(land(b), 0, (7 << 24) >>> 0), /unknown immediate type 7/],
      ['unknown wr_id', (b) => b.core.completed(wrId(31 as WrType, 1), 0, -1), /unknown wr_id/],
    ];
    for (const [, inject, message] of cases) {
      const { b } = connectedPair(SMALL);
      inject(b);
      expect(b.core.state).toBe(IBSocketState.ERROR);
      expect(b.core.result).toBeInstanceOf(SocketError);
      expect(b.core.result!.message).toMatch(message);
      expect(b.core.result!.peer).toBe('peer of b');
    }
  });
});

describe('IBSocketCore close and drain', () => {
  it('end() with writes waiting for credits sends them all, then the CLOSE; the peer gets the data and SocketClosedError', () => {
    const { a, b } = connectedPair(SMALL);
    const msg = bytes(3 * S * B + 7, 6);
    a.core.write([msg]);
    a.core.end();
    expect(a.timers.get(CoreTimer.CLOSE)).toBe(SMALL.drainTimeoutMs);
    expect(() => a.core.write([bytes(1)])).toThrow(SocketClosedError);
    // No CLOSE before the queued data.
    expect(a.wire.some((w) => w.kind === 'writeImm')).toBe(false);
    b.core.resume();
    settle(a, b);
    const last = a.posted[a.posted.length - 1]!;
    expect(last).toMatchObject({ kind: 'writeImm', imm: encodeImm(ImmType.CLOSE, 0), id: wrId(WrType.CLOSE, 0) });
    expect(b.received()).toEqual(msg);
    expect(a.core.finished).toBe(true);
    expect(a.core.result).toBeUndefined();
    expect(a.core.state).toBe(IBSocketState.CLOSE);
    expect(a.timers.size).toBe(0);
    expect(b.core.finished).toBe(true);
    expect(b.core.result).toBeInstanceOf(SocketClosedError);
    expect(b.core.result!.peer).toBe('peer of b');
  });

  it('a peer that stops acknowledging stalls the writer; end() bounds the stall: TimeoutError naming the peer and the unsent bytes', () => {
    const { a, b } = connectedPair(SMALL);
    const msg = bytes(S * B + 100, 7);
    a.core.write([msg]);
    a.transmitAll();
    // The peer never consumes (paused): no ACK, however many rounds go by.
    for (let i = 0; i < 5; i++) {
      b.poll();
      a.poll();
    }
    expect(a.core.pendingBytes).toBe(100);
    expect(a.wire).toHaveLength(0);
    a.core.end();
    expect(a.core.finished).toBe(false);
    a.fireTimer(CoreTimer.CLOSE);
    expect(a.core.finished).toBe(true);
    const err = a.core.result!;
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.code).toBe(StatusCode.Timeout);
    expect(err.peer).toBe('peer of a');
    expect(err.message).toContain('100 bytes');
    // The write that could not finish was never reported as written.
    expect(a.writes).toBe(0);
  });

  it('the drain timer after a posted CLOSE (all data on the wire) closes cleanly', () => {
    const { a } = connectedPair(SMALL);
    a.core.write([bytes(20)]);
    a.core.end();
    expect(a.wire.some((w) => w.kind === 'writeImm')).toBe(true);
    a.fireTimer(CoreTimer.CLOSE);
    expect(a.core.finished).toBe(true);
    expect(a.core.result).toBeUndefined();
  });

  it('destroy() drops queued writes on purpose and still tells the peer with a CLOSE', () => {
    const { a, b } = connectedPair(SMALL);
    a.core.write([bytes(S * B + 50)]);
    a.core.destroy();
    expect(a.core.pendingBytes).toBe(0);
    expect(a.wire[a.wire.length - 1]!.kind).toBe('writeImm');
    b.core.resume();
    settle(a, b);
    expect(a.core.result).toBeUndefined();
    expect(b.core.result).toBeInstanceOf(SocketClosedError);
    expect(b.received()).toHaveLength(S * B);
  });

  it('end() before RTS finishes at once; end() is idempotent; an error completion after the CLOSE was sent is a clean close', () => {
    const early = new Side('early', SMALL);
    early.core.end();
    early.core.end();
    expect(early.finishes).toBe(1);
    expect(early.core.state).toBe(IBSocketState.CLOSE);

    const { a } = connectedPair(SMALL);
    a.core.end();
    a.core.end();
    a.core.completionFailed(wrId(WrType.CLOSE, 0), wcError('WR_FLUSH_ERR', a.core.peer));
    expect(a.finishes).toBe(1);
    expect(a.core.result).toBeUndefined();
  });

  it('error completions fail the socket with SocketError naming the peer and carrying the completion error', () => {
    const { a } = connectedPair(SMALL);
    a.core.write([bytes(4 * B)]);
    const wcErr = wcError('RETRY_EXC_ERR', a.core.peer);
    a.core.completionFailed(a.wire.find((w) => w.signaled)!.id, wcErr);
    expect(a.core.state).toBe(IBSocketState.ERROR);
    expect(a.finishes).toBe(1);
    const err = a.core.result!;
    expect(err).toBeInstanceOf(SocketError);
    expect(err.message).toMatch(/^SEND work request failed: RETRY_EXC_ERR/);
    expect(err.cause).toBe(wcErr);
    expect(err.peer).toBe('peer of a');
    expect(() => a.core.write([bytes(1)])).toThrow(SocketError);
    expect(a.core.stateError('check')).toBeInstanceOf(SocketError);
    // Later completions are ignored.
    a.core.completed(wrId(WrType.CLOSE, 0), 0, -1);
    expect(a.core.state).toBe(IBSocketState.ERROR);
  });

  it('a refused post fails the socket with SocketError', () => {
    const { a } = connectedPair(SMALL);
    a.failNextPost = new Error('ENOMEM');
    expect(a.core.write([bytes(10)])).toBe(false);
    expect(a.core.result).toBeInstanceOf(SocketError);
    expect(a.core.result!.message).toMatch(/^send failed/);
    expect(a.core.result!.cause).toMatchObject({ message: 'ENOMEM' });
    expect(a.finishes).toBe(1);
  });
});

describe('IBSocketCore one-sided RDMA', () => {
  const work = (tag: string, count: number, a: Side): Work => ({ tag, count, id: a.core.nextRdmaId() });

  it('a semaphore of maxRdmaWr work requests: posts wait in order, and go as completions return tokens', () => {
    const { a } = connectedPair(SMALL);
    const w1 = work('w1', 5, a);
    const w2 = work('w2', 5, a);
    const w3 = work('w3', 2, a);
    a.core.submitRdma([w1, w2, w3]);
    // 7 tokens: w1 (5) goes; w2 (5) does not fit, and w3 waits behind it (order is kept).
    expect(a.rdmaPosted.map((w) => w.tag)).toEqual(['w1']);
    a.core.completed(wrId(WrType.RDMA_LAST, w1.id), 0, -1);
    expect(a.settled).toEqual([{ work: w1, err: null }]);
    expect(a.rdmaPosted.map((w) => w.tag)).toEqual(['w1', 'w2', 'w3']);
    expect(a.core.diagnostics().rdmaTokens).toBe(0);
  });

  it('cancel drops only queued work; an RDMA error completion settles its post with that error; closing settles the rest', () => {
    const { a } = connectedPair(SMALL);
    const w1 = work('w1', 5, a);
    const w2 = work('w2', 2, a);
    const w3 = work('w3', 5, a);
    const w4 = work('w4', 5, a);
    a.core.submitRdma([w1, w2, w3, w4]);
    expect(a.rdmaPosted.map((w) => w.tag)).toEqual(['w1', 'w2']);
    const cancel = new RDMAError('cancelled by the test');
    a.core.cancelRdma((w) => w.tag === 'w3', cancel);
    expect(a.settled).toEqual([{ work: w3, err: cancel }]);
    const wcErr = wcError('REM_ACCESS_ERR', a.core.peer);
    a.core.completionFailed(wrId(WrType.RDMA_LAST, w1.id), wcErr);
    expect(a.settled[1]).toEqual({ work: w1, err: wcErr });
    expect(a.core.result!.message).toMatch(/^RDMA work request failed: REM_ACCESS_ERR/);
    const reason = a.core.result!;
    a.core.settle(reason);
    const rest = new Map(a.settled.slice(2).map((s) => [s.work.tag, s.err]));
    expect(rest.get('w4')).toBe(reason);
    expect(rest.get('w2')).toBeInstanceOf(RDMAError);
    expect((rest.get('w2') as Error).cause).toBe(reason);
    expect(a.settled).toHaveLength(4);
  });

  it('a partly refused post settles that post and fails the socket; a wholly refused one only settles it', () => {
    const { a } = connectedPair(SMALL);
    a.failNextPost = Object.assign(new RDMAError('ibv_post_send refused'), { posted: 0 });
    const w1 = work('w1', 2, a);
    a.core.submitRdma([w1]);
    expect(a.settled[0]!.err!.message).toMatch(/^ibv_post_send refused/);
    expect(a.core.finished).toBe(false);
    a.failNextPost = Object.assign(new RDMAError('ibv_post_send refused'), { posted: 1 });
    a.core.submitRdma([work('w2', 2, a)]);
    expect(a.settled[1]!.err!.message).toMatch(/^ibv_post_send refused/);
    expect(a.core.result!.message).toMatch(/^RDMA post partly failed/);
  });
});

describe('IBSocketCore under random interleavings', () => {
  function rng(seed: number): () => number {
    let x = seed >>> 0 || 1;
    return () => {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      return x / 2 ** 32;
    };
  }

  function checkInvariants(s: Side): void {
    const d = s.core.diagnostics() as Record<string, number>;
    const c = s.config;
    if (d.sendFree! < 0 || d.sendFree! > c.sendBufCnt) throw new SimViolation(`${s.name}: sendFree ${d.sendFree}`);
    if (d.ackAvail! < 0 || d.ackAvail! > s.core.sizes.qpAckBufs) throw new SimViolation(`${s.name}: ackAvail ${d.ackAvail}`);
    // Data SENDs on the wire or awaiting their ACK never exceed the window the peer has receive buffers for.
    const inUse = c.sendBufCnt - d.sendFree!;
    if (inUse > c.sendBufCnt) throw new SimViolation(`${s.name}: ${inUse} send buffers in use`);
    if (d.sendSignaled! < 0 || d.sendAcked! < 0) throw new SimViolation(`${s.name}: negative counters`);
  }

  it('credits never go negative, the window is never exceeded, no RNR, and every byte arrives in order', () => {
    const configs = [SMALL, { ...SMALL, bufAckBatch: 3, bufSignalBatch: 5 }, { ...SMALL, sendBufCnt: 5, bufAckBatch: 4, bufSignalBatch: 4, bufSize: 7 }];
    for (let seed = 1; seed <= 120; seed++) {
      const r = rng(seed);
      const { a, b } = connectedPair(configs[seed % configs.length]!);
      a.core.resume();
      b.core.resume();
      const sent = new Map<Side, Buffer[]>([
        [a, []],
        [b, []],
      ]);
      const calls = new Map<Side, number>([
        [a, 0],
        [b, 0],
      ]);
      for (let step = 0; step < 400; step++) {
        const s = r() < 0.5 ? a : b;
        const x = r();
        if (x < 0.15) {
          const parts = [bytes(Math.floor(r() * 60), seed * 1000 + step), bytes(Math.floor(r() * 5), step)];
          s.core.write(parts);
          sent.get(s)!.push(...parts);
          calls.set(s, calls.get(s)! + 1);
        } else if (x < 0.35) {
          if (s.wire.length > 0) s.transmit();
        } else if (x < 0.5) {
          s.deliverRecv();
        } else if (x < 0.65) {
          if (s.sendCq.length > 0) s.deliverSend(Math.floor(r() * s.sendCq.length));
        } else if (x < 0.85) {
          s.core.progress();
        } else if (x < 0.9) {
          s.core.pause();
        } else {
          s.core.resume();
        }
        checkInvariants(a);
        checkInvariants(b);
      }
      a.core.resume();
      b.core.resume();
      settle(a, b);
      checkInvariants(a);
      checkInvariants(b);
      expect(a.core.finished || b.core.finished).toBe(false);
      expect(a.core.pendingBytes + b.core.pendingBytes).toBe(0);
      expect(b.received()).toEqual(Buffer.concat(sent.get(a)!));
      expect(a.received()).toEqual(Buffer.concat(sent.get(b)!));
      expect(a.writes).toBe(calls.get(a));
      expect(b.writes).toBe(calls.get(b));
    }
  });
});
