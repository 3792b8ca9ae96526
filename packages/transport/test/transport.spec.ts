import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  crc32cBatched,
  decodeMessage,
  encodeFrame,
  encodeMessageParts,
  type FfnetError,
  frameHeader,
  InvalidAddrError,
  InvalidArgError,
  MessageFlags,
  SendFailedError,
  SocketClosedError,
  StatusCode,
} from '@ffnet/serde';
import { encodeMessageUnsealed } from '@ffnet/serde/internal';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type Address,
  type BackendListener,
  type BackendSocket,
  Transport,
  type TransportHandler,
  type TransportOptions,
  unix,
  unixAddress,
} from '../src/index.js';
import { socketOf } from '../src/internal.js';
import { until } from './compliance.js';

const dir = mkdtempSync(join(tmpdir(), 'ffnet-t-'));
let n = 0;
const listeners: BackendListener[] = [];
const live: Transport[] = [];

afterEach(async () => {
  for (const t of live.splice(0)) t.invalidate(new SocketClosedError('cleanup'));
  await Promise.all(listeners.splice(0).map((l) => l.close()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

class Rec implements TransportHandler {
  frames: Buffer[] = [];
  flags: boolean[] = [];
  closes: { error: FfnetError | undefined; unsent: readonly unknown[] }[] = [];
  onFrame(_t: Transport, body: Buffer, compressed: boolean): void {
    this.frames.push(body);
    this.flags.push(compressed);
  }
  onClose(_t: Transport, error: FfnetError | undefined, unsent: readonly unknown[]): void {
    this.closes.push({ error, unsent });
  }
}

async function server(h: TransportHandler, onAdopt?: (t: Transport) => void, opts: TransportOptions = {}): Promise<Address> {
  const l = await unix().listen(unixAddress(join(dir, `t${n++}.sock`)), {}, (s) => {
    const t = Transport.adopt(s, h, opts);
    live.push(t);
    onAdopt?.(t);
  });
  listeners.push(l);
  return l.address;
}

function connect(a: Address | string, h: TransportHandler, opts = {}): Transport {
  const t = Transport.connect(a, h, opts);
  live.push(t);
  return t;
}

const MiB = 1024 * 1024;
const frame = (s: string) => encodeFrame(Buffer.from(s));
const request = (uuid: number) => ({
  uuid,
  serviceId: 9,
  methodId: 1,
  flags: MessageFlags.IsReq,
  version: 0,
  timeoutMs: 1000,
  payload: { data: Buffer.alloc(64, uuid) },
});

describe('Transport', () => {
  it('exposes identity and direction', async () => {
    let adopted: Transport | undefined;
    const a = await server(new Rec(), (t) => (adopted = t));
    const t = connect(a, new Rec());
    expect(t.state).toBe('connecting');
    expect(t.address).toEqual(a);
    expect(t.peer).toBe(`unix://${a.path}`);
    expect(t.incoming).toBe(false);
    expect(t.capabilities.oneSided).toBe(false);
    await t.ready;
    expect(t.state).toBe('ready');
    await until(() => adopted !== undefined, 'accept');
    expect(adopted!.incoming).toBe(true);
    expect(adopted!.state).toBe('ready');
    expect(adopted!.id).not.toBe(t.id);
  });

  it('throws InvalidAddrError synchronously for a bad address', () => {
    expect(() => Transport.connect('tcp://nope', new Rec())).toThrow(InvalidAddrError);
  });

  it('passes allocateLargeBodyAt to its decoder: large frames arrive whole at any setting, bad values throw', async () => {
    expect(() => Transport.connect('tcp://127.0.0.1:1', new Rec(), { allocateLargeBodyAt: 0 })).toThrow(InvalidArgError);
    const body = Buffer.alloc(3 * 1024 * 1024 + 5);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    for (const at of [1, 1 / 64]) {
      const srv = new Rec();
      const a = await server(srv, undefined, { allocateLargeBodyAt: at });
      const t = connect(a, new Rec(), { allocateLargeBodyAt: at });
      t.send(encodeFrame(body));
      await until(() => srv.frames.length === 1, `frame at ${at}`);
      expect(srv.frames[0]!.equals(body)).toBe(true);
    }
  });

  it('frames sent while connecting go out once ready; close() while connecting still flushes them', async () => {
    const srv = new Rec();
    const a = await server(srv);
    const cli = new Rec();
    const t = connect(a, cli);
    t.send(frame('one'), 1);
    t.send(frame('two'), 2);
    const closing = t.close();
    expect(t.state).toBe('closing');
    await closing;
    await until(() => srv.frames.length === 2, 'frames at the server');
    expect(srv.frames.map(String)).toEqual(['one', 'two']);
    expect(cli.closes).toEqual([{ error: undefined, unsent: [] }]);
    await t.ready; // it did become connected
  });

  it('close() while connecting to nothing settles ready and closed', async () => {
    const l = await unix().listen(unixAddress(join(dir, `gone${n++}.sock`)), {}, () => {});
    await l.close();
    const cli = new Rec();
    const t = connect(l.address, cli);
    t.send(frame('lost'), 'lost');
    await t.close();
    await expect(t.ready).rejects.toMatchObject({ code: StatusCode.ConnectFailed });
    expect(cli.closes).toHaveLength(1);
    expect(cli.closes[0]!.unsent).toEqual(['lost']);
  });

  it('a throwing onFrame closes that connection with a FoundBug error carrying the cause', async () => {
    const boom = new Error('handler bug');
    const srv: TransportHandler & { closes: (FfnetError | undefined)[] } = {
      closes: [],
      onFrame() {
        throw boom;
      },
      onClose(_t, e) {
        this.closes.push(e);
      },
    };
    const a = await server(srv);
    const t = connect(a, new Rec());
    t.send(frame('x'));
    await until(() => srv.closes.length === 1, 'server close');
    expect(srv.closes[0]!.code).toBe(StatusCode.FoundBug);
    expect(srv.closes[0]!.message).toMatch(/onFrame handler threw: handler bug/);
    expect(srv.closes[0]!.cause).toBe(boom);
    await t.closed;
  });

  it('a stalled graceful close gives up at closeTimeoutMs and reports what was not written', async () => {
    const a = await server(new Rec(), (t) => t.pause());
    const cli = new Rec();
    const t = connect(a, cli, { closeTimeoutMs: 200, maxQueuedBytes: 128 * 1024 * 1024 });
    await t.ready;
    const big = encodeFrame(Buffer.alloc(1024 * 1024));
    for (let i = 0; i < 64; i++) t.send(big, i);
    await t.close();
    expect(t.state).toBe('closed');
    expect(cli.closes[0]!.error).toBeInstanceOf(SocketClosedError);
    expect(cli.closes[0]!.error!.message).toMatch(/graceful close gave up with \d+ bytes not yet written/);
    expect(cli.closes[0]!.unsent.length).toBeGreaterThan(0);
    expect(cli.closes[0]!.unsent.at(-1)).toBe(63);
  });

  it('close({ signal }) aborts a stalled graceful close', async () => {
    const a = await server(new Rec(), (t) => t.pause());
    const cli = new Rec();
    const t = connect(a, cli, { maxQueuedBytes: 128 * 1024 * 1024 });
    await t.ready;
    const big = encodeFrame(Buffer.alloc(1024 * 1024));
    for (let i = 0; i < 64; i++) t.send(big, i);
    const ac = new AbortController();
    const closing = t.close({ signal: ac.signal });
    expect(t.close()).toBeInstanceOf(Promise); // idempotent
    setTimeout(() => ac.abort(), 50);
    await closing;
    expect(cli.closes).toHaveLength(1);
    expect(cli.closes[0]!.unsent.length).toBeGreaterThan(0);
  });

  it('pause() before ready holds incoming frames until resume()', async () => {
    const a = await server(new Rec(), (s) => {
      for (let i = 0; i < 10; i++) s.send(frame(`f${i}`));
    });
    const cli = new Rec();
    const t = connect(a, cli);
    t.pause();
    await t.ready;
    await new Promise((r) => setTimeout(r, 50));
    expect(cli.frames).toHaveLength(0);
    t.resume();
    await until(() => cli.frames.length === 10, 'frames after resume');
    expect(cli.frames.map(String)).toEqual(Array.from({ length: 10 }, (_, i) => `f${i}`));
  });

  it('accepts one frame bigger than maxQueuedBytes on an empty queue, refuses it behind others', async () => {
    const a = await server(new Rec());
    const t = connect(a, new Rec(), { maxQueuedBytes: 1000 });
    await t.ready;
    const big = encodeFrame(Buffer.alloc(4000));
    expect(t.send(big)).toBe(true);
    expect(() => t.send(big)).toThrow(SendFailedError);
    expect(t.queuedBytes).toBe(big.length);
  });

  it("by default eight 1 MiB frames queue without back-pressure (a pipelining client's replies), a ninth reports it", async () => {
    const a = await server(new Rec());
    const t = connect(a, new Rec());
    await t.ready;
    // Sent in one turn, so none is confirmed written in between: queuedBytes counts every one of them.
    const big = encodeFrame(Buffer.alloc(MiB - 8, 7));
    const below: boolean[] = [];
    for (let i = 0; i < 9; i++) below.push(t.send(big));
    expect(t.queuedBytes).toBe(9 * MiB);
    // With the earlier 4 MiB mark the fifth already returned false, and a server stopped taking that peer's requests.
    expect(below).toEqual([true, true, true, true, true, true, true, true, false]);
    await until(() => t.queuedBytes === 0, 'written');
  });

  it('a frame sent in parts arrives as one frame, in order with whole frames around it', async () => {
    const srv = new Rec();
    const adopted: Transport[] = [];
    const a = await server(srv, (t) => adopted.push(t));
    const t = connect(a, new Rec());
    // Body parts of very different sizes, the big one handed over as it is (not copied by the sender).
    const parts = [Buffer.from('head-'), Buffer.alloc(300_000, 0xab), Buffer.from('-tail')];
    const whole = Buffer.concat(parts);
    const multi = [frameHeader(whole), ...parts];
    expect(t.send(frame('before'), 'a')).toBe(true);
    expect(t.send(multi, 'b')).toBe(true);
    expect(t.send(frame('after'), 'c')).toBe(true);
    expect(t.queuedBytes).toBe(frame('before').length + 8 + whole.length + frame('after').length);
    await until(() => srv.frames.length === 3, 'frames');
    expect(srv.frames[0]!.toString()).toBe('before');
    expect(srv.frames[1]!.equals(whole)).toBe(true);
    expect(srv.frames[2]!.toString()).toBe('after');
    await until(() => t.queuedBytes === 0, 'written');
    // And the other way, a frame whose parts are all small.
    const cli = new Rec();
    const t2 = connect(a, cli);
    await until(() => adopted.length === 2, 'second accept');
    const small = [Buffer.from('a'), Buffer.from('bc'), Buffer.from('')];
    adopted[1]!.send([frameHeader(Buffer.from('abc')), ...small]);
    await until(() => cli.frames.length === 1, 'reply');
    expect(cli.frames[0]!.toString()).toBe('abc');
    expect(t2.state).toBe('ready');
  });

  it('a multi-part frame counts its whole size against maxQueuedBytes and reports its tag once when unsent', async () => {
    const a = await server(new Rec());
    const t = connect(a, new Rec(), { maxQueuedBytes: 1000 });
    const body = [Buffer.alloc(600), Buffer.alloc(600)];
    const multi = [frameHeader(Buffer.concat(body)), ...body];
    expect(t.send(multi, 'first')).toBe(true);
    expect(t.queuedBytes).toBe(1208);
    expect(() => t.send(multi, 'second')).toThrow(SendFailedError);
    const closes: (readonly unknown[])[] = [];
    const h = new Rec();
    h.onClose = (_t, _e, unsent) => closes.push(unsent);
    const t3 = connect(a, h);
    t3.send(multi, 'x');
    t3.invalidate(new SocketClosedError('test'));
    expect(closes).toEqual([['x']]);
  });

  it('a turn that queues more than batchBytes writes in batches of at least batchBytes, in order', async () => {
    const srv = new Rec();
    const calls: number[] = [];
    const l = await unix().listen(unixAddress(join(dir, `t${n++}.sock`)), {}, (s) => {
      live.push(Transport.adopt(s, srv));
    });
    listeners.push(l);
    const raw: BackendSocket = await unix().connect(l.address, { timeoutMs: 5000 });
    const write = raw.write.bind(raw);
    raw.write = (bufs) => {
      calls.push(bufs.reduce((sum, b) => sum + b.length, 0));
      return write(bufs);
    };
    const t = Transport.adopt(raw, new Rec(), { batchBytes: 1000 });
    live.push(t);
    const f = (i: number) => encodeFrame(Buffer.alloc(92, i)); // 100 bytes with the header
    for (let i = 0; i < 25; i++) t.send(f(i));
    // Ten frames reach 1000 bytes: written at once, twice; the last five at the end of the turn.
    expect(calls).toEqual([1000, 1000]);
    await until(() => srv.frames.length === 25, 'frames');
    expect(calls).toEqual([1000, 1000, 500]);
    expect(srv.frames.map((b) => b[0])).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

  it('replies sent while frames are handled leave in one write at the end of the read, before the tick queue runs', async () => {
    const writes: { bytes: number; tickRan: boolean }[] = [];
    let tickRan = false;
    const replier: TransportHandler = {
      onFrame(t, body) {
        if (body.toString() === 'q0') process.nextTick(() => (tickRan = true));
        t.send(frame(`r${body.toString().slice(1)}`));
      },
      onClose() {},
    };
    const l = await unix().listen(unixAddress(join(dir, `t${n++}.sock`)), {}, (s) => {
      const write = s.write.bind(s);
      s.write = (bufs) => {
        writes.push({ bytes: bufs.reduce((sum, b) => sum + b.length, 0), tickRan });
        return write(bufs);
      };
      live.push(Transport.adopt(s, replier));
    });
    listeners.push(l);
    const cli = new Rec();
    const t = connect(l.address, cli);
    // One write of ten requests: they arrive in one read.
    for (let i = 0; i < 10; i++) t.send(frame(`q${i}`));
    await until(() => cli.frames.length === 10, 'replies');
    expect(cli.frames.map(String)).toEqual(Array.from({ length: 10 }, (_, i) => `r${i}`));
    expect(writes).toEqual([{ bytes: 10 * frame('r0').length, tickRan: false }]);
  });

  it('send(frame, tag, alone) writes the queue at once; without it the queue waits for the tick', async () => {
    const srv = new Rec();
    const a = await server(srv);
    const t = connect(a, new Rec());
    await t.ready;
    const sock = socketOf(t)!;
    const writes: number[] = [];
    const write = sock.write.bind(sock);
    sock.write = (bufs) => {
      writes.push(bufs.reduce((sum, b) => sum + b.length, 0));
      return write(bufs);
    };
    t.send(frame('x0'));
    expect(writes).toEqual([]);
    // The frame queued before goes out with it, first.
    t.send(frame('x1'), 'tag', true);
    expect(writes).toEqual([2 * frame('x0').length]);
    await until(() => srv.frames.length === 2, 'both frames');
    expect(srv.frames.map(String)).toEqual(['x0', 'x1']);
    t.send(frame('x2'));
    expect(writes.length).toBe(1);
    await until(() => writes.length === 2, 'the tick flush');
  });

  it('frames that lie back to back in one buffer are written as one buffer, others as they are', async () => {
    const srv = new Rec();
    const bufs: Uint8Array[][] = [];
    const l = await unix().listen(unixAddress(join(dir, `t${n++}.sock`)), {}, (s) => {
      live.push(Transport.adopt(s, srv));
    });
    listeners.push(l);
    const raw: BackendSocket = await unix().connect(l.address, { timeoutMs: 5000 });
    const write = raw.write.bind(raw);
    raw.write = (b) => {
      bufs.push([...b]);
      return write(b);
    };
    const t = Transport.adopt(raw, new Rec());
    live.push(t);
    // Three frames encoded into one slab, one after the other, then one elsewhere, then two more in the slab.
    const slab = Buffer.alloc(1000);
    const put = (at: number, s: string) => {
      const f = frame(s);
      f.copy(slab, at);
      return slab.subarray(at, at + f.length);
    };
    const a = put(0, 'aa');
    const b = put(a.length, 'bbb');
    const c = put(a.length + b.length, 'c');
    const other = frame('elsewhere');
    const d = put(500, 'dd');
    const e = put(500 + d.length, 'eeee');
    for (const f of [a, b, c, other, d, e]) t.send(f);
    await until(() => srv.frames.length === 6, 'frames');
    expect(srv.frames.map(String)).toEqual(['aa', 'bbb', 'c', 'elsewhere', 'dd', 'eeee']);
    expect(bufs).toHaveLength(1);
    expect(bufs[0]!.map((x) => x.length)).toEqual([a.length + b.length + c.length, other.length, d.length + e.length]);
    expect(bufs[0]![1]).toBe(other);
  });

  it("frames the encoder left unsealed leave sealed, in one write; any other frame's bytes go as they are", async () => {
    const srv = new Rec();
    const a = await server(srv);
    const t = connect(a, new Rec());
    await t.ready;
    const frames = [1, 2, 3].map((uuid) => encodeMessageUnsealed(request(uuid)) as Uint8Array);
    // Left unsealed where the native addon checksums a batch in one call; sealed at once elsewhere.
    expect(frames.map((f) => f[0])).toEqual(crc32cBatched() ? [0, 0, 0] : [0x86, 0x86, 0x86]);
    for (const f of frames) expect(t.send(f)).toBe(true);
    // An already sealed frame (compressed bit set) goes as it is.
    t.send(encodeFrame(Buffer.from('four'), true));
    await until(() => srv.frames.length === 4, 'frames');
    expect(srv.frames.slice(0, 3).map((b) => decodeMessage(b, false).uuid)).toEqual([1, 2, 3]);
    expect(srv.frames[3]!.toString()).toBe('four');
    expect(srv.flags).toEqual([false, false, false, true]);
    expect(frames.map((f, i) => Buffer.from(f).equals(Buffer.from(encodeMessageParts(request(i + 1)) as Uint8Array)))).toEqual([true, true, true]);
    // A frame whose checksum word is 0 but that the encoder never left unsealed goes out as it is, and the peer
    // refuses its magic.
    const raw = frame('raw');
    raw.fill(0, 0, 4);
    t.send(raw);
    await until(() => srv.closes.length === 1, 'close');
    expect(srv.closes[0]!.error?.code).toBe(StatusCode.InvalidMessageType);
    expect(srv.frames).toHaveLength(4);
  });

  it('an unsealed frame send() refuses, or that is never written, is handed back sealed', async () => {
    const l = await unix().listen(unixAddress(join(dir, `gone${n++}.sock`)), {}, () => {});
    await l.close();
    const cli = new Rec();
    const t = connect(l.address, cli);
    const lost = encodeMessageUnsealed(request(7)) as Uint8Array;
    t.send(lost, 'lost');
    await t.ready.catch(() => {});
    await until(() => cli.closes.length === 1, 'close');
    expect(cli.closes[0]!.unsent).toEqual(['lost']);
    expect(Buffer.from(lost).equals(Buffer.from(encodeMessageParts(request(7)) as Uint8Array))).toBe(true);
    const refused = encodeMessageUnsealed(request(8)) as Uint8Array;
    expect(() => t.send(refused, 'refused')).toThrow(SocketClosedError);
    expect(Buffer.from(refused).equals(Buffer.from(encodeMessageParts(request(8)) as Uint8Array))).toBe(true);
  });

  it('the compressed flag of a frame survives the trip', async () => {
    const srv = new Rec();
    const a = await server(srv);
    const t = connect(a, new Rec());
    t.send(encodeFrame(Buffer.from('plain')));
    t.send(encodeFrame(Buffer.from('zstd-ish'), true));
    await until(() => srv.frames.length === 2, 'frames');
    expect(srv.flags).toEqual([false, true]);
    expect(srv.frames[1]!.toString()).toBe('zstd-ish');
  });
});

describe('Transport: holding frames and memory caps', () => {
  it('pause() inside onFrame holds the rest of the read; resume() delivers it in order before reading again', async () => {
    const got: string[] = [];
    let srv: Transport | undefined;
    const h: TransportHandler = {
      onFrame(t, body) {
        got.push(body.toString());
        if (got.length === 3) t.pause();
      },
      onClose() {},
    };
    const a = await server(h, (t) => (srv = t));
    const t = connect(a, new Rec());
    await t.ready;
    // One write, so one read on the other side (10 small frames).
    t.send(Buffer.concat(Array.from({ length: 10 }, (_, i) => frame(`f${i}`))));
    await until(() => got.length === 3, 'three frames');
    // Never early: the 7 frames of that read stay held while paused.
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual(['f0', 'f1', 'f2']);
    expect(srv!.readingPaused).toBe(true);
    expect(srv!.receivedHeldBytes).toBe(7 * frame('f3').length);
    t.send(frame('f10'));
    srv!.resume();
    await until(() => got.length === 11, 'all frames');
    expect(got).toEqual(Array.from({ length: 11 }, (_, i) => `f${i}`));
  });

  it('readCount is the same for the frames of one read and moves on with the next read and with resume()', async () => {
    const seen: { f: string; read: number }[] = [];
    let srv: Transport | undefined;
    const h: TransportHandler = {
      onFrame(t, body) {
        seen.push({ f: body.toString(), read: t.readCount });
        if (seen.length === 2) t.pause();
      },
      onClose() {},
    };
    const a = await server(h, (t) => (srv = t));
    const t = connect(a, new Rec());
    await t.ready;
    // One write of four frames, one read on the other side: two delivered, two held by pause().
    t.send(Buffer.concat(Array.from({ length: 4 }, (_, i) => frame(`a${i}`))));
    await until(() => seen.length === 2, 'first read');
    const first = seen[0]!.read;
    expect(seen[1]!.read).toBe(first);
    srv!.resume();
    await until(() => seen.length === 4, 'held frames');
    // Held frames are delivered later, in a delivery of their own.
    expect(seen[2]!.read).toBeGreaterThan(first);
    expect(seen[3]!.read).toBe(seen[2]!.read);
    t.send(frame('b0'));
    await until(() => seen.length === 5, 'second read');
    expect(seen[4]!.read).toBeGreaterThan(seen[3]!.read);
    expect(srv!.readCount).toBe(seen[4]!.read);
  });

  it('an output budget refuses a frame behind others, but always lets an empty queue take one', async () => {
    const { ByteBudget } = await import('../src/index.js');
    const out = new ByteBudget(1000, 'test output budget');
    const a = await server(new Rec(), (t) => t.pause());
    const t1 = connect(a, new Rec(), { outputBudget: out });
    const t2 = connect(a, new Rec(), { outputBudget: out });
    await Promise.all([t1.ready, t2.ready]);
    expect(t1.send(encodeFrame(Buffer.alloc(900)))).toBe(true);
    // t2 has nothing queued: it may go over the budget with one frame.
    t2.send(encodeFrame(Buffer.alloc(900)));
    expect(out.used).toBeGreaterThan(1000);
    expect(() => t2.send(encodeFrame(Buffer.alloc(10)))).toThrow(/test output budget full/);
    await until(() => t1.queuedBytes === 0 && t2.queuedBytes === 0, 'the writes');
    expect(out.used).toBe(0);
    t1.send(encodeFrame(Buffer.alloc(10)));
    t1.invalidate(new SocketClosedError('done'));
    // What a closed transport had queued goes back.
    expect(out.used).toBe(0);
  });
});
