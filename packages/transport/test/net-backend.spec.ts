import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  ConnectFailedError,
  encodeFrame,
  type FfnetError,
  InvalidArgError,
  ListenFailedError,
  NotImplementedError,
  StatusCode,
  TimeoutError,
} from '@ffnet/serde';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type Backend,
  type BackendListener,
  type BackendSocket,
  DEFAULT_BACKENDS,
  DEFAULT_UNIX_SEND_BUFFER_BYTES,
  findBackend,
  formatAddress,
  parseAddress,
  Transport,
  tcp,
  tcpAddress,
  unix,
  unixAddress,
} from '../src/index.js';
import { sendBufferSize } from '../src/net-backend.js';

const dir = mkdtempSync(join(tmpdir(), 'ffnet-nb-'));
const listeners: BackendListener[] = [];
const sockets: BackendSocket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(listeners.splice(0).map((l) => l.close()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const backendFor = (k: 'tcp' | 'unix'): Backend => (k === 'tcp' ? tcp() : unix());

async function failure(p: Promise<unknown>): Promise<FfnetError> {
  try {
    await p;
  } catch (e) {
    return e as FfnetError;
  }
  throw new Error('expected a rejection');
}

function noHandlers(s: BackendSocket): BackendSocket {
  s.setHandlers({ data() {}, drain() {}, written() {}, close() {} });
  sockets.push(s);
  return s;
}

describe('backend factories', () => {
  it('tcp() and unix() make fresh backends with the 1 s connect default; rdma:// without a backend says what to pass', () => {
    const t1 = tcp();
    expect(t1.scheme).toBe('tcp');
    expect(unix().scheme).toBe('unix');
    expect(t1.available()).toEqual({ ok: true });
    expect(t1).not.toBe(tcp());
    expect(t1.connectTimeoutMs).toBe(1000);
    expect(tcp({ connectTimeoutMs: 250 }).connectTimeoutMs).toBe(250);
    expect(() => tcp({ connectTimeoutMs: -1 })).toThrow(InvalidArgError);
    expect(DEFAULT_BACKENDS.map((b) => b.scheme)).toEqual(['tcp', 'unix']);
    expect(Object.isFrozen(DEFAULT_BACKENDS)).toBe(true);
    expect(findBackend([t1], 'tcp')).toBe(t1);
    let err: unknown;
    try {
      Transport.connect('rdma://127.0.0.1:1', { onFrame() {}, onClose() {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NotImplementedError);
    expect((err as FfnetError).code).toBe(StatusCode.NotImplemented);
    expect((err as Error).message).toMatch(/no backend for scheme 'rdma' \(backends: tcp, unix\): pass rdma\(\) from '@ffnet\/rdma'/);
    // A list without unix refuses unix:// the same way: nothing falls back to a global table.
    expect(() => Transport.connect('unix:///tmp/x.sock', { onFrame() {}, onClose() {} }, { backends: [t1] })).toThrow(
      /no backend for scheme 'unix' \(backends: tcp\)/,
    );
  });

  it('a backend unusable here fails the connect at once with its own error', () => {
    const broken: Backend = {
      scheme: 'rdma',
      available: () => ({ ok: false, reason: 'no-devices: none', error: new ConnectFailedError('no devices here') }),
      connect: () => Promise.reject(new Error('not reached')),
      listen: () => Promise.reject(new Error('not reached')),
    };
    expect(() => Transport.connect('rdma://127.0.0.1:1', { onFrame() {}, onClose() {} }, { backends: [broken] })).toThrow(ConnectFailedError);
    const quiet: Backend = { ...broken, available: () => ({ ok: false, reason: 'why not' }) };
    expect(() => Transport.connect('rdma://127.0.0.1:1', { onFrame() {}, onClose() {} }, { backends: [quiet] })).toThrow(
      /rdma:\/\/ cannot be used here: why not/,
    );
  });
});

describe.each(['tcp', 'unix'] as const)('%s backend', (scheme) => {
  let n = 0;
  const fresh = () => (scheme === 'tcp' ? tcpAddress('127.0.0.1', 0) : unixAddress(join(dir, `${scheme}-${n++}.sock`)));

  it('connect to nothing fails with ConnectFailedError naming the peer and the OS cause', async () => {
    const l = await backendFor(scheme).listen(fresh(), {}, () => {});
    const addr = l.address;
    await l.close();
    await l.close(); // idempotent
    const err = await failure(backendFor(scheme).connect(addr));
    expect(err).toBeInstanceOf(ConnectFailedError);
    expect(err.peer).toBe(formatAddress(addr));
    expect(err.message).toMatch(scheme === 'tcp' ? /ECONNREFUSED/ : /ENOENT/);
    expect(err.message).toContain(formatAddress(addr));
  });

  it('listening twice on one address fails with ListenFailedError', async () => {
    const l = await backendFor(scheme).listen(fresh(), {}, () => {});
    listeners.push(l);
    const err = await failure(backendFor(scheme).listen(l.address, {}, () => {}));
    expect(err).toBeInstanceOf(ListenFailedError);
    expect(err.message).toMatch(/EADDRINUSE/);
    expect(err.message).toContain(formatAddress(l.address));
  });

  it('an aborted connect or listen rejects with the reason', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    const l = await backendFor(scheme).listen(fresh(), {}, () => {});
    listeners.push(l);
    const c = await failure(backendFor(scheme).connect(l.address, { signal: ac.signal }));
    expect(c.code).toBe(StatusCode.ConnectFailed);
    expect(c.message).toMatch(/aborted: stop/);
    const e = await failure(backendFor(scheme).listen(fresh(), { signal: ac.signal }, () => {}));
    expect(e).toBeInstanceOf(ListenFailedError);
  });

  it('write() of many buffers arrives as one in-order byte stream and written() confirms it', async () => {
    const got: Buffer[] = [];
    let written = 0;
    const l = await backendFor(scheme).listen(fresh(), {}, (s) => {
      sockets.push(s);
      s.setHandlers({ data: (c) => got.push(c), drain() {}, written() {}, close() {} });
    });
    listeners.push(l);
    const c = await backendFor(scheme).connect(l.address);
    sockets.push(c);
    c.setHandlers({ data() {}, drain() {}, written: () => written++, close() {} });
    const bufs = Array.from({ length: 300 }, (_, i) => Buffer.from(`<${i}>`));
    c.write(bufs);
    c.write([Buffer.from('end')]);
    const want = Buffer.concat([...bufs, Buffer.from('end')]);
    const deadline = Date.now() + 5000;
    while (Buffer.concat(got).length < want.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(Buffer.concat(got).equals(want)).toBe(true);
    expect(written).toBe(2);
  });
});

describe.each(['tcp', 'unix'] as const)('%s dialled sockets read into owner memory (onread)', (scheme) => {
  let n = 0;
  const fresh = () => (scheme === 'tcp' ? tcpAddress('127.0.0.1', 0) : unixAddress(join(dir, `direct-${n++}.sock`)));
  const until = async (cond: () => boolean): Promise<void> => {
    const deadline = Date.now() + 5000;
    while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
  };

  /** Handlers that offer the second MiB of `target` as the place for reads, the way a transport offers a body. */
  function offering(target: Buffer, got: Buffer[]) {
    const st = { received: 0, inTarget: 0, firstOffer: -1, offered: undefined as Buffer | undefined };
    const handlers = {
      readInto: () => {
        const r = st.received;
        st.offered = r >= 1024 * 1024 && r < 2 * 1024 * 1024 ? target.subarray(r - 1024 * 1024) : undefined;
        if (st.offered !== undefined && st.firstOffer < 0) st.firstOffer = r - 1024 * 1024;
        return st.offered;
      },
      data: (chunk: Buffer) => {
        if (chunk.buffer === target.buffer) {
          st.inTarget += chunk.length;
          expect(st.offered).toBeDefined();
          expect(chunk.byteOffset).toBe(st.offered!.byteOffset);
          expect(chunk.length).toBeLessThanOrEqual(st.offered!.length);
        }
        got.push(chunk);
        st.received += chunk.length;
      },
      drain() {},
      written() {},
      close() {},
    };
    return { st, handlers };
  }

  it.each(['dialled', 'accepted'] as const)('%s: reads land in the region readInto offers, never past it, else in backend memory', async (side) => {
    const sent = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < sent.length; i += 4) sent.writeUInt32LE(i, i);
    const target = Buffer.alloc(1024 * 1024);
    const got: Buffer[] = [];
    const { st, handlers } = offering(target, got);
    const l = await backendFor(scheme).listen(fresh(), {}, (s) => {
      sockets.push(s);
      if (side === 'accepted') s.setHandlers(handlers);
      else {
        s.setHandlers({ data() {}, drain() {}, written() {}, close() {} });
        s.write([sent]);
      }
    });
    listeners.push(l);
    const c = await backendFor(scheme).connect(l.address);
    sockets.push(c);
    if (side === 'dialled') c.setHandlers(handlers);
    else {
      c.setHandlers({ data() {}, drain() {}, written() {}, close() {} });
      c.write([sent]);
    }
    await until(() => st.received >= sent.length);
    expect(Buffer.concat(got).equals(sent)).toBe(true);
    // Everything offered was used, and only that: the second MiB, from the first read that started inside it,
    // arrived in the target; the rest did not.
    expect(st.firstOffer).toBeGreaterThanOrEqual(0);
    expect(st.inTarget).toBe(1024 * 1024 - st.firstOffer);
    expect(target.subarray(st.firstOffer).equals(sent.subarray(1024 * 1024 + st.firstOffer, 2 * 1024 * 1024))).toBe(true);
  });

  it('accepting and closing 200 connections leaves no file descriptor behind', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const l = await backendFor(scheme).listen(fresh(), {}, (s) => {
      s.setHandlers({ data() {}, drain() {}, written() {}, close() {} });
      s.end();
    });
    listeners.push(l);
    const before = fds();
    for (let i = 0; i < 200; i++) {
      const c = await backendFor(scheme).connect(l.address);
      const closed = new Promise<void>((resolve) => c.setHandlers({ data() {}, drain() {}, written() {}, close: () => resolve() }));
      await closed;
    }
    await new Promise((r) => setTimeout(r, 20));
    expect(fds() - before).toBeLessThanOrEqual(2);
  });

  it('bytes that arrive before the owner sets its handlers come first, in order', async () => {
    const l = await backendFor(scheme).listen(fresh(), {}, (s) => {
      noHandlers(s);
      s.write([Buffer.from('early;')]);
      setTimeout(() => s.write([Buffer.from('late')]), 80);
    });
    listeners.push(l);
    const c = await backendFor(scheme).connect(l.address);
    sockets.push(c);
    await new Promise((r) => setTimeout(r, 40));
    const got: Buffer[] = [];
    c.setHandlers({ data: (chunk) => got.push(chunk), drain() {}, written() {}, close() {} });
    await until(() => Buffer.concat(got).length >= 10);
    expect(Buffer.concat(got).toString()).toBe('early;late');
  });
});

describe('tcp specifics', () => {
  it('names accepted peers by their address and connects by hostname and IPv6', async () => {
    const peers: BackendSocket[] = [];
    const l = await tcp().listen(tcpAddress('localhost', 0), {}, (s) => {
      peers.push(noHandlers(s));
    });
    listeners.push(l);
    expect(l.address.host).toBe('localhost');
    expect(l.address.port).toBeGreaterThan(0);
    const c = noHandlers(await tcp().connect(l.address));
    expect(c.peer).toBe(formatAddress(l.address));
    const deadline = Date.now() + 5000;
    while (peers.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(peers[0]!.peer).toBe(c.local);
    expect(peers[0]!.remote.scheme).toBe('tcp');

    const l6 = await tcp().listen(parseAddress('tcp://[::1]:0'), {}, (s) => {
      noHandlers(s);
    });
    listeners.push(l6);
    const c6 = noHandlers(await tcp().connect(l6.address));
    expect(c6.peer).toMatch(/^tcp:\/\/\[::1\]:\d+$/);
  });

  it('honours timeoutMs when the peer never answers the handshake', async () => {
    // A listener whose thread is blocked never accepts; once its accept queue is full the kernel drops SYNs.
    const gate = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const s = require('node:net').createServer();
       s.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
         parentPort.postMessage(s.address().port);
         Atomics.wait(workerData, 0, 0);
       });`,
      { eval: true, workerData: gate },
    );
    const fillers: net.Socket[] = [];
    try {
      const port = await new Promise<number>((r) => worker.once('message', r));
      for (let i = 0; i < 4; i++) fillers.push(net.connect({ host: '127.0.0.1', port }).on('error', () => {}));
      await new Promise((r) => setTimeout(r, 100));
      const addr = tcpAddress('127.0.0.1', port);
      const err = await failure(tcp().connect(addr, { timeoutMs: 300 }));
      expect(err).toBeInstanceOf(TimeoutError);
      expect(err.message).toMatch(/connect timed out after 300 ms/);
      expect(err.peer).toBe(formatAddress(addr));

      // Through a Transport: onClose and ready carry the same TimeoutError, queued tags come back.
      let closed: [FfnetError | undefined, readonly unknown[]] | undefined;
      const t = Transport.connect(addr, { onFrame() {}, onClose: (_t, e, u) => (closed = [e, u]) }, { timeoutMs: 200 });
      t.send(encodeFrame(Buffer.from('x')), 'req-1');
      await expect(t.ready).rejects.toBeInstanceOf(TimeoutError);
      expect(closed![0]).toBeInstanceOf(TimeoutError);
      expect(closed![1]).toEqual(['req-1']);
    } finally {
      for (const f of fillers) f.destroy();
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      await worker.terminate();
    }
  });
});

describe('unix specifics', () => {
  it('applies the socket file mode and unlinks the path on close', async () => {
    const path = join(dir, 'mode.sock');
    const l = await unix().listen(unixAddress(path), { mode: 0o600 }, () => {});
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await l.close();
    expect(() => statSync(path)).toThrow(/ENOENT/);
  });

  it('reports the peer process credentials (SO_PEERCRED) of accepted and dialled sockets; tcp has none', async () => {
    const path = join(dir, 'cred.sock');
    const accepted: BackendSocket[] = [];
    const l = await unix().listen(unixAddress(path), {}, (s) => {
      accepted.push(s);
      sockets.push(s);
    });
    listeners.push(l);
    // A child process dials: its pid, not ours, must come back, so the value is read from the kernel.
    const child = spawn(process.execPath, [
      '-e',
      `const s = require('node:net').connect(${JSON.stringify(path)}); s.on('connect', () => process.stdout.write('up')); s.on('close', () => process.exit(0)); process.stdin.on('end', () => s.destroy()); process.stdin.resume();`,
    ]);
    try {
      await new Promise<void>((r) => child.stdout.once('data', () => r()));
      const deadline = Date.now() + 5000;
      while (accepted.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
      const t = Transport.adopt(accepted[0]!, { onFrame() {}, onClose() {} });
      expect(t.peerCredentials()).toEqual({ pid: child.pid, uid: process.getuid!(), gid: process.getgid!() });
    } finally {
      child.stdin.end();
      await new Promise((r) => child.once('exit', r));
    }
    // Dialled: the listener is this process.
    const c = noHandlers(await unix().connect(l.address));
    expect(c.peerCredentials?.()).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });

    const lt = await tcp().listen(tcpAddress('127.0.0.1', 0), {}, (s) => void noHandlers(s));
    listeners.push(lt);
    const ct = noHandlers(await tcp().connect(lt.address));
    expect(ct.peerCredentials?.()).toBeUndefined();
  });

  it('asks for a 1 MiB send buffer (SO_SNDBUF) on dialled and accepted sockets; sendBufferBytes sets or disables it', async () => {
    // What the kernel reports: twice the value asked for, capped at net.core.wmem_max; untouched, wmem_default.
    const sysctl = (name: string): number => Number(readFileSync(`/proc/sys/net/core/${name}`, 'utf8').trim());
    const reported = (asked: number): number => 2 * Math.min(asked, sysctl('wmem_max'));
    const underlying = (s: BackendSocket): net.Socket => (s as unknown as { sock: net.Socket }).sock;
    async function pair(b: Backend, name: string): Promise<[number | undefined, number | undefined]> {
      const accepted: BackendSocket[] = [];
      const l = await b.listen(unixAddress(join(dir, name)), {}, (s) => accepted.push(noHandlers(s)));
      listeners.push(l);
      const c = noHandlers(await b.connect(l.address));
      const deadline = Date.now() + 5000;
      while (accepted.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
      return [sendBufferSize(underlying(c)), sendBufferSize(underlying(accepted[0]!))];
    }
    expect(DEFAULT_UNIX_SEND_BUFFER_BYTES).toBe(1024 * 1024);
    const want = reported(DEFAULT_UNIX_SEND_BUFFER_BYTES);
    expect(await pair(unix(), 'sndbuf-default.sock')).toEqual([want, want]);
    const asked = 300_000;
    expect(await pair(unix({ sendBufferBytes: asked }), 'sndbuf-set.sock')).toEqual([reported(asked), reported(asked)]);
    const untouched = sysctl('wmem_default');
    expect(await pair(unix({ sendBufferBytes: 0 }), 'sndbuf-off.sock')).toEqual([untouched, untouched]);
    for (const bad of [-1, 1.5, 2 ** 31, Number.NaN]) {
      expect(() => unix({ sendBufferBytes: bad })).toThrow(InvalidArgError);
      expect(() => tcp({ sendBufferBytes: bad })).toThrow(/tcp\(\) sendBufferBytes must be an integer/);
    }
  });

  it('hints at a stale socket file', async () => {
    const path = join(dir, 'stale.sock');
    const l = await unix().listen(unixAddress(path), {}, () => {});
    listeners.push(l);
    const err = await failure(unix().listen(unixAddress(path), {}, () => {}));
    expect(err.message).toMatch(/EADDRINUSE.*stale socket file/);
  });
});

describe('backends are passed, not registered', () => {
  it('routes rdma:// addresses to the rdma backend in the list, and takes its capabilities', async () => {
    const carrier = tcp();
    const seen: string[] = [];
    const caps = { oneSided: true, closeOnCallTimeout: true };
    // A backend for the rdma scheme that carries bytes over TCP: enough to prove the list routes by scheme.
    const fake: Backend = {
      scheme: 'rdma',
      capabilities: caps,
      available: () => ({ ok: true }),
      connect(addr, opts) {
        seen.push(formatAddress(addr));
        return carrier.connect(tcpAddress(addr.host, addr.port), opts);
      },
      listen: (addr, opts, on) => carrier.listen(tcpAddress(addr.host, addr.port), opts, on),
    };
    const l = await fake.listen(parseAddress('rdma://127.0.0.1:0'), {}, (s) => {
      Transport.adopt(s, { onFrame: (t, b) => t.send(encodeFrame(b)), onClose() {} });
    });
    listeners.push(l);
    const frames: Buffer[] = [];
    const t = Transport.connect(`rdma://127.0.0.1:${l.address.port}`, { onFrame: (_t, b) => frames.push(b), onClose() {} }, { backends: [tcp(), fake] });
    expect(t.capabilities).toBe(caps);
    t.send(encodeFrame(Buffer.from('over rdma://')));
    const deadline = Date.now() + 5000;
    while (frames.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(frames[0]!.toString()).toBe('over rdma://');
    expect(seen).toEqual([`rdma://127.0.0.1:${l.address.port}`]);
    // Its capabilities say a timed-out call leaves the connection untrusted: callTimedOut closes it.
    expect(t.callTimedOut(new TimeoutError('no answer'))).toBe(true);
    expect(t.state).toBe('closed');
    expect(await t.closed).toBeInstanceOf(TimeoutError);
  });

  it('a stream connection stays open when a call on it times out', async () => {
    const l = await tcp().listen(tcpAddress('127.0.0.1', 0), {}, (s) => void noHandlers(s));
    listeners.push(l);
    const t = Transport.connect(l.address, { onFrame() {}, onClose() {} });
    await t.ready;
    expect(t.capabilities).toEqual({ oneSided: false, closeOnCallTimeout: false });
    expect(t.callTimedOut(new TimeoutError('no answer'))).toBe(false);
    expect(t.state).toBe('ready');
    t.invalidate(new TimeoutError('done'));
  });

  it('two lists do not affect each other: a connect with a list lacking tcp fails while the default still dials', async () => {
    const l = await tcp().listen(tcpAddress('127.0.0.1', 0), {}, (s) => void noHandlers(s));
    listeners.push(l);
    expect(() => Transport.connect(l.address, { onFrame() {}, onClose() {} }, { backends: [unix()] })).toThrow(NotImplementedError);
    const t = Transport.connect(l.address, { onFrame() {}, onClose() {} });
    await t.ready;
    expect(t.state).toBe('ready');
    t.invalidate(new TimeoutError('done'));
  });
});
