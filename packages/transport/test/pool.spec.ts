import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFrame, type FfnetError, InvalidArgError, NotImplementedError, SocketClosedError, StatusCode, TimeoutError } from '@ffnet/serde';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Address,
  type BackendListener,
  parseAddress,
  Transport,
  type TransportHandler,
  TransportPool,
  tcp,
  tcpAddress,
  unix,
  unixAddress,
} from '../src/index.js';
import { until } from './compliance.js';

const dir = mkdtempSync(join(tmpdir(), 'ffnet-pool-'));
const listeners: BackendListener[] = [];
const accepted: Transport[] = [];
const made: Transport[] = [];
const closes = new Map<Transport, FfnetError | undefined>();
const echo: TransportHandler = {
  onFrame: (t, b) => t.send(encodeFrame(b)),
  onClose: (t, e) => closes.set(t, e),
};
const handler: TransportHandler = { onFrame() {}, onClose: (t, e) => closes.set(t, e) };
let addr: Address;
let tcpAddr: Address;

async function serve(a: Address): Promise<Address> {
  const l = await (a.scheme === 'tcp' ? tcp() : unix()).listen(a, {}, (s) => accepted.push(Transport.adopt(s, echo)));
  listeners.push(l);
  return l.address;
}

const create = (a: Address): Transport => {
  const t = Transport.connect(a, handler);
  made.push(t);
  return t;
};

beforeAll(async () => {
  addr = await serve(unixAddress(join(dir, 'pool.sock')));
  tcpAddr = await serve(tcpAddress('localhost', 0));
});
afterEach(() => {
  for (const t of [...made.splice(0), ...accepted.splice(0)]) t.invalidate(new SocketClosedError('cleanup'));
});
afterAll(async () => {
  await Promise.all(listeners.map((l) => l.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe('TransportPool', () => {
  it('rejects a bad connection count', () => {
    expect(() => new TransportPool({ connectionsPerAddress: 0 })).toThrow(InvalidArgError);
  });

  it('dials through its own backends when given a handler: [tcp()] refuses unix:// with NotImplementedError', async () => {
    const pool = new TransportPool({ handler, backends: [tcp()] });
    const t = pool.get(tcpAddr)!;
    made.push(t);
    await t.ready;
    expect(t.state).toBe('ready');
    expect(pool.get(tcpAddr)).toBe(t);
    let err: unknown;
    try {
      pool.get(addr);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NotImplementedError);
    expect(err).toMatchObject({ code: StatusCode.NotImplemented, message: expect.stringContaining('unix') });
    // The refused address leaves no empty entry behind (a flood of refused addresses would grow it otherwise).
    expect(pool.size).toBe(1);
    expect((pool as unknown as { outgoing: Map<string, unknown> }).outgoing.size).toBe(1);
  });

  it('defaults its backends to tcp and unix, and without a handler or create it does not dial', async () => {
    const pool = new TransportPool({ handler });
    const t = pool.get(addr)!;
    made.push(t);
    await t.ready;
    expect(t.address.scheme).toBe('unix');
    expect(new TransportPool({ backends: [tcp()] }).get(tcpAddr)).toBeUndefined();
  });

  it('keeps one transport per address by default and replaces it once it closes', async () => {
    const pool = new TransportPool({ create });
    const a = pool.get(addr)!;
    expect(pool.get(addr)).toBe(a);
    expect(pool.get(`unix://${addr.path}`)).toBe(a);
    expect(pool.size).toBe(1);
    await a.ready;
    a.invalidate(new SocketClosedError('gone'));
    await a.closed;
    await until(() => pool.size === 0, 'automatic removal');
    const b = pool.get(addr)!;
    expect(b).not.toBe(a);
    expect(pool.all()).toEqual([b]);
  });

  it('hands out the last string address its transport only while that one is usable', async () => {
    const pool = new TransportPool({ create });
    const s = `unix://${addr.path}`;
    const a = pool.get(s)!;
    expect(pool.get(s)).toBe(a);
    // Closed but not yet removed from its slot: a fresh one is dialled, not the dead one handed out.
    a.invalidate(new SocketClosedError('gone'));
    const b = pool.get(s)!;
    expect(b).not.toBe(a);
    expect(pool.get(s)).toBe(b);
    // Dropped: its slots leave the pool, and the next get() dials again.
    expect(pool.drop(s)).toBe(1);
    const c = pool.get(s)!;
    expect([a, b]).not.toContain(c);
    expect(c.state).not.toBe('closed');
    expect(pool.all()).toEqual([c]);
    await pool.close();
    const d = pool.get(s)!;
    expect([a, b, c]).not.toContain(d);
    expect(pool.all()).toEqual([d]);
    // Another address in between does not confuse the two.
    const t = pool.get(`tcp://127.0.0.1:${tcpAddr.port}`)!;
    expect(pool.get(s)).toBe(d);
    expect(pool.get(`tcp://127.0.0.1:${tcpAddr.port}`)).toBe(t);
    expect(t).not.toBe(d);
  });

  it('spreads over N connections round robin', async () => {
    const pool = new TransportPool({ connectionsPerAddress: 3, create });
    const first = [pool.get(addr), pool.get(addr), pool.get(addr)];
    expect(new Set(first).size).toBe(3);
    expect([pool.get(addr), pool.get(addr), pool.get(addr), pool.get(addr)]).toEqual([...first, first[0]]);
    expect(pool.size).toBe(3);
    // The same host spelled differently is the same address.
    const t1 = pool.get(`tcp://LOCALHOST:${tcpAddr.port}`)!;
    expect(pool.get(tcpAddress('localhost', tcpAddr.port))).not.toBe(t1); // next slot of the same set
    expect(pool.size).toBe(5);
    await Promise.all(pool.all().map((t) => t.ready));
    // Frames really travel over pooled transports.
    const echoes: Buffer[] = [];
    const own = Transport.connect(addr, { onFrame: (_t, b) => echoes.push(b), onClose() {} });
    made.push(own);
    own.send(encodeFrame(Buffer.from('hi')));
    await until(() => echoes.length === 1, 'echo');
  });

  it('without a factory, get() returns only what was added', async () => {
    const pool = new TransportPool({ connectionsPerAddress: 2 });
    expect(pool.get(addr)).toBeUndefined();
    const a = create(addr);
    const b = create(addr);
    const c = create(addr);
    expect(pool.add(a)).toBe(true);
    expect(pool.add(a)).toBe(true); // already there
    expect(pool.get(addr)).toBe(a);
    expect(pool.add(b)).toBe(true);
    expect(pool.add(c)).toBe(false); // both slots live
    expect(new Set([pool.get(addr), pool.get(addr)])).toEqual(new Set([a, b]));
    expect(pool.remove(a)).toBe(true);
    expect(pool.remove(a)).toBe(false);
    expect(pool.get(addr)).toBe(b);
    expect(pool.add(c)).toBe(true);
    expect(pool.size).toBe(2);
    c.invalidate(new SocketClosedError('x'));
    expect(pool.add(c)).toBe(false); // closed transports are not taken
  });

  it('keeps incoming transports apart: listed, dropped on request, never handed out', async () => {
    const pool = new TransportPool();
    const out = create(addr);
    pool.add(out);
    await out.ready;
    await until(() => accepted.length > 0, 'accept');
    const inc = accepted[accepted.length - 1]!;
    expect(inc.incoming).toBe(true);
    expect(pool.add(inc)).toBe(true);
    expect(pool.all()).toEqual([out, inc]);
    expect(pool.get(inc.address)).toBe(out); // same unix path, but only the outgoing one is handed out
    expect(pool.drop()).toBe(1);
    expect(closes.get(out)).toBeInstanceOf(SocketClosedError);
    expect(pool.all()).toEqual([inc]);
    expect(pool.drop(undefined, { incoming: true })).toBe(1);
    expect(pool.size).toBe(0);
  });

  it('drop(addr) drops only that address', async () => {
    const pool = new TransportPool({ create });
    const u = pool.get(addr)!;
    const t = pool.get(tcpAddr)!;
    expect(pool.drop(`tcp://localhost:${tcpAddr.port}`)).toBe(1);
    expect(t.state).toBe('closed');
    expect(closes.get(t)!.message).toMatch(/dropped from the transport pool/);
    expect(u.state).not.toBe('closed');
    expect(pool.drop(parseAddress('tcp://127.0.0.9:1'))).toBe(0);
    expect(pool.all()).toEqual([u]);
  });

  it('check() drops idle transports with TimeoutError and keeps busy ones', async () => {
    const pool = new TransportPool({ create });
    const u = pool.get(addr)!;
    const t = pool.get(tcpAddr)!;
    await Promise.all([u.ready, t.ready]);
    const now = Date.now();
    expect(pool.check(0, now + 10_000)).toBe(0); // 0 disables the idle check
    expect(pool.check(60_000, now)).toBe(0);
    u.send(encodeFrame(Buffer.from('keep me busy')));
    await until(() => u.lastActiveAt > t.lastActiveAt, 'activity on u');
    expect(pool.check(u.lastActiveAt - t.lastActiveAt, u.lastActiveAt)).toBe(1);
    expect(closes.get(t)).toBeInstanceOf(TimeoutError);
    expect(closes.get(t)!.message).toMatch(/idle for \d+ ms/);
    expect(pool.all()).toEqual([u]);
  });

  it('close() closes every transport gracefully and empties the pool', async () => {
    const pool = new TransportPool({ connectionsPerAddress: 2, create });
    const ts = [pool.get(addr)!, pool.get(addr)!, pool.get(tcpAddr)!];
    for (const t of ts) t.send(encodeFrame(Buffer.from('bye')), 'tag');
    await pool.close();
    expect(pool.size).toBe(0);
    for (const t of ts) {
      expect(t.state).toBe('closed');
      expect(closes.get(t)).toBeUndefined();
      expect(closes.has(t)).toBe(true);
    }
  });
});
