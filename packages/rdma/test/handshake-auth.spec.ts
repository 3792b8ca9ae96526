// The IBConnect handshake's channel and authentication, on a host without RDMA: the listener side runs without
// devices (listenWithoutDevices), so a connect request that gets past the authenticator fails at the device
// lookup; the VM suite (test/rdma/handshake-security.spec.ts) covers the same with real queue pairs.
import {
  decodeMessage,
  encodeMessage,
  type FfnetError,
  FrameDecoder,
  InvalidArgError,
  MessageFlags,
  type MessagePacket,
  type Metadata,
  StatusCode,
  UnauthenticatedError,
} from '@ffnet/serde';
import {
  type AuthRequest,
  type BackendSocket,
  type ConnectionAuthenticator,
  type Principal,
  rdmaAddress,
  tcp,
  tcpAddress,
  tls,
  tlsAddress,
  unix,
} from '@ffnet/transport';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type KeyCert, TestPki } from '../../transport/test/fixtures/certs.js';
import { HandshakeClient, listenWithoutDevices, type VerbsBackend } from '../src/backend.js';
import { rdma } from '../src/index.js';
import { NodePki } from './fixtures/node-pki.js';

const stops: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of stops.splice(0).reverse()) await f();
});

/** A connect request for a device no host has: past the authenticator it fails with IBDeviceNotFound. */
const FORGED_CONNECT = {
  hostname: 'forger',
  dev: 0,
  devName: 'rxe0',
  port: 1,
  mtu: 3,
  qpNum: 77,
  link: { kind: 'ib', lid: 1 },
  targetDev: 0,
  targetDevName: 'nosuchdev',
  targetPort: 1,
  config: {},
};

const GOOD: Principal = { id: 'svc-a', roles: ['reader'] };

/** Accepts `Bearer good`, refuses the rest; remembers every request it saw. */
function tokenAuth(seen: AuthRequest[]): ConnectionAuthenticator {
  return (req) => {
    seen.push(req);
    const t = req.metadata?.get('authorization');
    if (t === 'Bearer good') return GOOD;
    throw new Error('token svc-a-SECRET is not valid');
  };
}

function bearer(token: string): Metadata {
  return new Map([['authorization', token]]);
}

async function listenRdma(b: VerbsBackend, authenticate?: ConnectionAuthenticator, onSocket: (s: BackendSocket) => void = (s) => s.destroy()) {
  const l = await listenWithoutDevices(b, rdmaAddress('127.0.0.1', 0), authenticate ? { authenticate } : {}, onSocket);
  stops.push(() => l.close());
  return l.address.port;
}

/** A handshake client over a fresh tcp connection, as rdma().connect drives it. */
async function dial(port: number, metadata?: Metadata) {
  const sock = await tcp().connect(tcpAddress('127.0.0.1', port));
  stops.push(() => sock.destroy());
  const hs = new HandshakeClient(sock, `rdma://127.0.0.1:${port}`, metadata);
  const closed = new Promise<void>((resolve) => hs.onClose(resolve));
  const call = (method: 'query' | 'connect', req: unknown) => hs.call(method, req as never, { signal: AbortSignal.timeout(10_000) });
  return { sock, hs, closed, call };
}

async function rejection(p: Promise<unknown>): Promise<FfnetError> {
  try {
    await p;
  } catch (e) {
    return e as FfnetError;
  }
  throw new Error('expected a rejection');
}

describe('rdma handshake authentication (host, no devices)', () => {
  it('rdma({ logger }): a refused handshake is logged at warn with its peer, and never the token', async () => {
    const records: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
    const logger = {
      records,
      bindings: {} as Record<string, unknown>,
      isLevelEnabled: () => true,
      child(b: Record<string, unknown>) {
        return { ...this, bindings: { ...this.bindings, ...b } };
      },
      trace(f: Record<string, unknown>, m?: string) {
        records.push({ level: 'trace', msg: m ?? '', fields: { ...this.bindings, ...f } });
      },
      debug(f: Record<string, unknown>, m?: string) {
        records.push({ level: 'debug', msg: m ?? '', fields: { ...this.bindings, ...f } });
      },
      info(f: Record<string, unknown>, m?: string) {
        records.push({ level: 'info', msg: m ?? '', fields: { ...this.bindings, ...f } });
      },
      warn(f: Record<string, unknown>, m?: string) {
        records.push({ level: 'warn', msg: m ?? '', fields: { ...this.bindings, ...f } });
      },
      error(f: Record<string, unknown>, m?: string) {
        records.push({ level: 'error', msg: m ?? '', fields: { ...this.bindings, ...f } });
      },
    };
    const b = rdma({ logger });
    const port = await listenRdma(b, tokenAuth([]));
    const c = await dial(port, bearer('Bearer svc-a-SECRET'));
    expect(await rejection(c.call('query', {}))).toBeInstanceOf(UnauthenticatedError);
    await c.closed;
    const refused = records.find((r) => r.msg === 'rdma handshake refused: unauthenticated');
    expect(refused?.level).toBe('warn');
    expect(refused?.fields).toMatchObject({ component: 'rdma', code: StatusCode.Unauthenticated });
    expect(String(refused?.fields.peer)).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$|^rdma:\/\//);
    // The authenticator threw "token svc-a-SECRET is not valid": its kind is logged, not its words.
    expect(records.find((r) => r.msg === 'rdma handshake authenticator threw')?.fields.cause).toBe('Error');
    expect(JSON.stringify(records)).not.toContain('SECRET');
  });

  it('no credentials: the first request is refused with UnauthenticatedError, no detail, the connection closes, no QP', async () => {
    const seen: AuthRequest[] = [];
    const b = rdma();
    const port = await listenRdma(b, tokenAuth(seen));
    const c = await dial(port);
    const err = await rejection(c.call('query', {}));
    expect(err).toBeInstanceOf(UnauthenticatedError);
    expect(err.code).toBe(StatusCode.Unauthenticated);
    expect(err.peer).toBe(`rdma://127.0.0.1:${port}`);
    expect(err.message).not.toContain('SECRET');
    expect(err.message).not.toContain('token');
    await c.closed;
    expect(seen).toHaveLength(1);
    expect(seen[0]!.scheme).toBe('rdma');
    expect(seen[0]!.peer).toMatch(/^rdma:\/\/127\.0\.0\.1:\d+$/);
    expect(seen[0]!.metadata).toBeUndefined();
    expect(seen[0]!.certificate).toBeUndefined();
    expect(b.acceptStats()).toMatchObject({ unauthenticated: 1, qps: 0, pendingHandshakes: 0, timedOut: 0 });
  });

  it('a bad token is refused the same way; a good one gets answers, authenticated once per connection', async () => {
    const seen: AuthRequest[] = [];
    const b = rdma();
    const port = await listenRdma(b, tokenAuth(seen));
    const bad = await dial(port, bearer('Bearer bad'));
    expect(await rejection(bad.call('query', {}))).toBeInstanceOf(UnauthenticatedError);
    await bad.closed;
    expect(b.acceptStats().unauthenticated).toBe(1);

    const good = await dial(port, bearer('Bearer good'));
    expect(await good.call('query', {})).toEqual({ devices: [] });
    // Past the authenticator the connect reaches the device lookup (no device on this host).
    const err = await rejection(good.call('connect', FORGED_CONNECT));
    expect(err.code).toBe(StatusCode.IBDeviceNotFound);
    expect(seen.map((r) => r.metadata?.get('authorization'))).toEqual(['Bearer bad', 'Bearer good']);
    expect(b.acceptStats()).toMatchObject({ unauthenticated: 1, qps: 0 });
  });

  it('a forged connect without query or credentials is refused before any device is looked at', async () => {
    const seen: AuthRequest[] = [];
    const b = rdma();
    const port = await listenRdma(b, tokenAuth(seen));
    const c = await dial(port);
    const err = await rejection(c.call('connect', FORGED_CONNECT));
    // Not IBDeviceNotFound: the request never reached the accept path.
    expect(err.code).toBe(StatusCode.Unauthenticated);
    await c.closed;
    expect(b.acceptStats()).toMatchObject({ unauthenticated: 1, qps: 0, pinnedBytes: 0 });
  });

  it('requests pipelined behind the first wait for the verdict and are answered in order', async () => {
    const b = rdma();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const port = await listenRdma(b, async (req) => {
      await gate;
      return req.metadata?.get('authorization') === 'Bearer good' ? GOOD : undefined;
    });
    const sock = await tcp().connect(tcpAddress('127.0.0.1', port));
    stops.push(() => sock.destroy());
    const got: MessagePacket[] = [];
    const decoder = new FrameDecoder((body, compressed) => got.push(decodeMessage(body, compressed)));
    sock.setHandlers({ data: (c) => decoder.push(c), drain() {}, written() {}, close() {} });
    const md = bearer('Bearer good');
    const frame = (uuid: number, methodId: number, payload: unknown) =>
      encodeMessage({ uuid, serviceId: 11, methodId, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload, metadata: md });
    sock.write([Buffer.concat([frame(1, 1, {}), frame(2, 2, FORGED_CONNECT)])]);
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toHaveLength(0);
    release();
    await expect.poll(() => got.length).toBe(2);
    expect(got.map((p) => p.uuid)).toEqual([1, 2]);
    expect(got[0]!.payload).toEqual({ ok: true, value: { devices: [] } });
    expect((got[1]!.payload as { code: number }).code).toBe(StatusCode.IBDeviceNotFound);
  });

  it('a peer pipelining a fifth request while the first waits for the authenticator is closed; the authenticator ran once', async () => {
    const b = rdma();
    let calls = 0;
    let aborted = false;
    const port = await listenRdma(b, (_req, { signal }) => {
      calls++;
      // Never answers on its own: the verdict can only come from the connection going away.
      return new Promise<undefined>((resolve) =>
        signal?.addEventListener('abort', () => {
          aborted = true;
          resolve(undefined);
        }),
      );
    });
    const sock = await tcp().connect(tcpAddress('127.0.0.1', port));
    stops.push(() => sock.destroy());
    const got: MessagePacket[] = [];
    const decoder = new FrameDecoder((body, compressed) => got.push(decodeMessage(body, compressed)));
    let closed = false;
    sock.setHandlers({
      data: (c) => decoder.push(c),
      drain() {},
      written() {},
      close: () => {
        closed = true;
      },
    });
    const md = bearer('Bearer good');
    const frame = (uuid: number) =>
      encodeMessage({ uuid, serviceId: 11, methodId: 1, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload: {}, metadata: md });
    // One write, so all five are in the chunk the server read before it paused: four are held (the first runs the
    // authenticator), the fifth is one too many.
    sock.write([Buffer.concat([1, 2, 3, 4, 5].map(frame))]);
    await expect.poll(() => closed, { timeout: 5000 }).toBe(true);
    expect(got).toHaveLength(0);
    expect(calls).toBe(1);
    await expect.poll(() => aborted, { timeout: 5000 }).toBe(true);
    await expect.poll(() => b.acceptStats().pendingHandshakes, { timeout: 5000 }).toBe(0);
  });

  it('four requests in all are held while the authenticator runs, then answered in order', async () => {
    const b = rdma();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const port = await listenRdma(b, async () => {
      await gate;
      return GOOD;
    });
    const sock = await tcp().connect(tcpAddress('127.0.0.1', port));
    stops.push(() => sock.destroy());
    const got: MessagePacket[] = [];
    const decoder = new FrameDecoder((body, compressed) => got.push(decodeMessage(body, compressed)));
    sock.setHandlers({ data: (c) => decoder.push(c), drain() {}, written() {}, close() {} });
    const frame = (uuid: number) => encodeMessage({ uuid, serviceId: 11, methodId: 1, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload: {} });
    sock.write([Buffer.concat([1, 2, 3, 4].map(frame))]);
    await new Promise((r) => setTimeout(r, 50));
    release();
    await expect.poll(() => got.length, { timeout: 5000 }).toBe(4);
    expect(got.map((p) => p.uuid)).toEqual([1, 2, 3, 4]);
  });

  it('the handshake deadline bounds the authenticator: its signal aborts and the connection closes', async () => {
    const b = rdma({ handshakeTimeoutMs: 300 });
    let signal: AbortSignal | undefined;
    const port = await listenRdma(b, (_req, opts) => {
      signal = opts.signal;
      return new Promise<Principal | undefined>(() => {});
    });
    const c = await dial(port, bearer('Bearer good'));
    const err = await rejection(c.call('query', {}));
    expect(err.code).toBe(StatusCode.ConnectFailed);
    await c.closed;
    expect(signal?.aborted).toBe(true);
    expect(b.acceptStats()).toMatchObject({ timedOut: 1, unauthenticated: 0, pendingHandshakes: 0 });
  });

  it('an authenticator resolving undefined refuses, as a rejection does', async () => {
    const b = rdma();
    const port = await listenRdma(b, () => undefined);
    const c = await dial(port, bearer('Bearer good'));
    expect(await rejection(c.call('query', {}))).toBeInstanceOf(UnauthenticatedError);
    await c.closed;
    expect(b.acceptStats().unauthenticated).toBe(1);
  });

  it('rdma({ authenticate }) applies when the listen options bring none; theirs wins when given', async () => {
    const b = rdma({ authenticate: () => undefined });
    const port = await listenRdma(b);
    const c = await dial(port, bearer('Bearer good'));
    expect(await rejection(c.call('query', {}))).toBeInstanceOf(UnauthenticatedError);
    const port2 = await listenRdma(b, () => GOOD);
    const c2 = await dial(port2);
    expect(await c2.call('query', {})).toEqual({ devices: [] });
  });

  it('a principal already expired is refused like no principal', async () => {
    const b = rdma();
    const port = await listenRdma(b, () => ({ id: 'stale', expiresAt: Date.now() - 1 }));
    const c = await dial(port, bearer('Bearer good'));
    expect(await rejection(c.call('query', {}))).toBeInstanceOf(UnauthenticatedError);
    const port2 = await listenRdma(b, () => ({ id: 'fresh', expiresAt: Date.now() + 60_000 }));
    const c2 = await dial(port2, bearer('Bearer good'));
    expect(await c2.call('query', {})).toEqual({ devices: [] });
    expect(b.acceptStats().unauthenticated).toBe(1);
  });

  it('without an authenticator nothing changes: a request without metadata is answered', async () => {
    const b = rdma();
    const port = await listenRdma(b);
    const c = await dial(port);
    expect(await c.call('query', {})).toEqual({ devices: [] });
    expect(b.acceptStats().unauthenticated).toBe(0);
  });

  it('a channel that is not tcp() or tls() is refused at construction', () => {
    expect(() => rdma({ channel: unix() })).toThrow(InvalidArgError);
    expect(() => rdma({ channel: rdma() })).toThrow(/tcp\(\) or tls\(\)/);
  });
});

describe('rdma handshake over a tls() channel (host, no devices)', () => {
  let pki: TestPki;
  let ca: KeyCert & { name: string };
  let server: KeyCert;
  let client: KeyCert;
  beforeAll(() => {
    pki = new TestPki();
    ca = pki.ca('rdmahs test CA');
    server = pki.leaf(ca, 'rdma-server', 'IP:127.0.0.1,DNS:localhost');
    client = pki.leaf(ca, 'rdma-client-7', 'DNS:client', { client: true });
  });
  afterAll(() => pki?.cleanup());

  async function tlsDial(port: number, creds: { key?: string; cert?: string }, metadata?: Metadata) {
    const sock = await tls({ ca: ca.cert, ...creds }).connect(tlsAddress('127.0.0.1', port));
    stops.push(() => sock.destroy());
    const hs = new HandshakeClient(sock, `rdma://127.0.0.1:${port}`, metadata);
    const closed = new Promise<void>((resolve) => hs.onClose(resolve));
    return { sock, closed, call: (method: 'query' | 'connect', req: unknown) => hs.call(method, req as never, { signal: AbortSignal.timeout(10_000) }) };
  }

  it('mTLS: the authenticator sees the verified client certificate and the token; answers flow over TLS', async () => {
    const seen: AuthRequest[] = [];
    const b = rdma({ channel: tls({ key: server.key, cert: server.cert, ca: ca.cert, requireClientCert: true }) });
    const port = await listenRdma(b, tokenAuth(seen));
    const c = await tlsDial(port, client, bearer('Bearer good'));
    expect(c.sock.scheme).toBe('tls');
    expect(await c.call('query', {})).toEqual({ devices: [] });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.certificate?.subject).toContain('CN=rdma-client-7');
    expect(seen[0]!.certificate?.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(seen[0]!.peer).toMatch(/^rdma:\/\/127\.0\.0\.1:\d+$/);
    // The client end sees the server's certificate, which the channel verified.
    expect(c.sock.peerCertificate?.()?.subject).toContain('CN=rdma-server');
  });

  it('an authenticator may decide on the certificate alone', async () => {
    const b = rdma({ channel: tls({ key: server.key, cert: server.cert, ca: ca.cert, requestCert: true }) });
    const port = await listenRdma(b, (req) => (req.certificate?.subject.includes('CN=rdma-client-7') ? { id: 'rdma-client-7' } : undefined));
    const withCert = await tlsDial(port, client);
    expect(await withCert.call('query', {})).toEqual({ devices: [] });
    const without = await tlsDial(port, {});
    expect(await rejection(without.call('query', {}))).toBeInstanceOf(UnauthenticatedError);
    await without.closed;
    expect(b.acceptStats().unauthenticated).toBe(1);
  });

  it('acceptTcp over tls: a first frame that is not IBConnect is handed up as a tls socket with the client certificate', async () => {
    const b = rdma({ channel: tls({ key: server.key, cert: server.cert, ca: ca.cert, requireClientCert: true }) });
    const handed: BackendSocket[] = [];
    const received: MessagePacket[] = [];
    const l = await listenWithoutDevices(b, rdmaAddress('127.0.0.1', 0), { acceptTcp: true, authenticate: () => undefined }, (s) => {
      handed.push(s);
      const decoder = new FrameDecoder((body, compressed) => received.push(decodeMessage(body, compressed)));
      s.setHandlers({ data: (c) => decoder.push(c), drain() {}, written() {}, close() {} });
    });
    stops.push(() => l.close());
    const sock = await tls({ ca: ca.cert, ...client }).connect(tlsAddress('127.0.0.1', l.address.port));
    stops.push(() => sock.destroy());
    sock.setHandlers({ data() {}, drain() {}, written() {}, close() {} });
    sock.write([encodeMessage({ uuid: 9, serviceId: 4242, methodId: 1, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload: { hello: 'tls' } })]);
    await expect.poll(() => received.length).toBe(1);
    expect(handed).toHaveLength(1);
    expect(handed[0]!.scheme).toBe('tls');
    expect(handed[0]!.peerCertificate?.()?.subject).toContain('CN=rdma-client-7');
    expect(received[0]!.payload).toEqual({ hello: 'tls' });
    // The handshake authenticator is not asked about a stream connection: the server authenticates its calls.
    expect(b.acceptStats().unauthenticated).toBe(0);
    for (const s of handed) s.destroy();
  });
});

// The VM suite's certificates come from NodePki (no openssl CLI in the VM): checked here against tls() itself.
describe('NodePki (certificates for the VM suite)', () => {
  it('makes a CA and leaves that tls() verifies for mTLS, and a foreign CA that it refuses', async () => {
    const pki = new NodePki();
    const ca = pki.ca('node-pki CA');
    const other = pki.ca('other CA');
    const srv = pki.leaf(ca, 'node-server', 'IP:127.0.0.1,DNS:localhost');
    const cli = pki.leaf(ca, 'node-client', 'DNS:client', { client: true });
    const b = rdma({ channel: tls({ ...srv, ca: ca.cert, requireClientCert: true }) });
    const seen: AuthRequest[] = [];
    const port = await listenRdma(b, (req) => {
      seen.push(req);
      return GOOD;
    });
    const sock = await tls({ ca: ca.cert, ...cli }).connect(tlsAddress('127.0.0.1', port));
    stops.push(() => sock.destroy());
    const hs = new HandshakeClient(sock, `rdma://127.0.0.1:${port}`);
    expect(await hs.call('query', {} as never, { signal: AbortSignal.timeout(10_000) })).toEqual({ devices: [] });
    expect(seen[0]!.certificate?.subject).toContain('CN=node-client');
    expect(seen[0]!.certificate?.subjectAltNames).toEqual(['DNS:client']);
    expect(sock.peerCertificate?.()?.subjectAltNames).toEqual(['IP Address:127.0.0.1', 'DNS:localhost']);
    const wrong = await rejection(tls({ ca: other.cert, ...cli }).connect(tlsAddress('127.0.0.1', port)));
    expect(wrong).toBeInstanceOf(UnauthenticatedError);
  });
});
