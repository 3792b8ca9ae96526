import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFrame, type FfnetError, InvalidAddrError, SendFailedError, SocketClosedError, StatusCode } from '@ffnet/serde';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type Address, type BackendListener, getBackend, Transport, type TransportHandler, unixAddress } from '../src/index.js';
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

async function server(h: TransportHandler, onAdopt?: (t: Transport) => void): Promise<Address> {
  const l = await getBackend('unix').listen(unixAddress(join(dir, `t${n++}.sock`)), {}, (s) => {
    const t = Transport.adopt(s, h);
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

const frame = (s: string) => encodeFrame(Buffer.from(s));

describe('Transport', () => {
  it('exposes identity and direction', async () => {
    let adopted: Transport | undefined;
    const a = await server(new Rec(), (t) => (adopted = t));
    const t = connect(a, new Rec());
    expect(t.state).toBe('connecting');
    expect(t.address).toEqual(a);
    expect(t.peer).toBe(`unix://${a.path}`);
    expect(t.incoming).toBe(false);
    expect(t.isRDMA).toBe(false);
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
    const l = await getBackend('unix').listen(unixAddress(join(dir, `gone${n++}.sock`)), {}, () => {});
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
    const t = connect(a, cli, { closeTimeoutMs: 200 });
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
    const t = connect(a, cli);
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
