// The IBConnect handshake over TLS and authenticated, with real queue pairs on rxe0 (Soft-RoCE VM: pnpm test:rdma).
// Certificates come from NodePki: the VM has no openssl CLI for transport's TestPki.
import { IBManager } from '@ffnet/device';
import {
  decodeMessage,
  encodeMessage,
  type FfnetError,
  FrameDecoder,
  MessageFlags,
  PermissionDeniedError,
  StatusCode,
  UnauthenticatedError,
} from '@ffnet/serde';
import { Client, CoreService, EchoService, Server, staticToken } from '@ffnet/server';
import {
  type AuthRequest,
  type BackendListener,
  type BackendSocket,
  type ConnectionAuthenticator,
  type Credentials,
  type Principal,
  rdmaAddress,
  tcp,
  tcpAddress,
  tls,
} from '@ffnet/transport';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { secureRdmaEcho } from '../../examples/secure-handshake.js';
import { rdma, type VerbsBackend } from '../../src/index.js';
import { type NodeKeyCert, NodePki } from '../fixtures/node-pki.js';

const HOST = process.env.FFNET_RDMA_HOST ?? '10.0.2.15';

const pki = new NodePki();
const ca = pki.ca('rdmahs VM CA');
const otherCa = pki.ca('someone else');
const serverCert: NodeKeyCert = pki.leaf(ca, 'rdma-server', `IP:${HOST},IP:127.0.0.1`);
const clientCert: NodeKeyCert = pki.leaf(ca, 'rdma-client-3', 'DNS:client3', { client: true });

async function rejection(p: Promise<unknown>): Promise<FfnetError> {
  try {
    await p;
  } catch (e) {
    return e as FfnetError;
  }
  throw new Error('expected a rejection');
}

const ALICE: Principal = { id: 'alice', roles: ['admin'] };

function tokenAuth(seen: AuthRequest[]): ConnectionAuthenticator {
  return (req) => {
    seen.push(req);
    return req.metadata?.get('authorization') === 'Bearer alice' ? ALICE : undefined;
  };
}

function bearer(token: string): Credentials & { invalidated: number } {
  const c = {
    invalidated: 0,
    metadata: () => new Map([['authorization', token]]),
    invalidate: () => {
      c.invalidated++;
    },
  };
  return c;
}

/** A well-formed connect request for this VM's rxe0 (made-up QP number: no probe will come). */
function connectReq(): Record<string, unknown> {
  const dev = IBManager.devices[0]!;
  const port = dev.ports.find((p) => p.gid !== null)!;
  const me = { hostname: 'forger', dev: dev.id, devName: dev.name, port: port.portNum, mtu: 3, qpNum: 0x4321 };
  return { ...me, link: { kind: 'roce', gid: Buffer.from(port.gid!.gid) }, targetDev: dev.id, targetDevName: dev.name, targetPort: port.portNum, config: {} };
}

/** A raw TCP peer that skips query and credentials and sends one IBConnect connect; resolves with the reply. */
async function forgeConnect(port: number): Promise<{ reply: { ok: boolean; code?: number }; closed: Promise<void> }> {
  const sock = await tcp().connect(tcpAddress(HOST, port));
  let closed!: () => void;
  const done = new Promise<void>((r) => (closed = r));
  const reply = new Promise<{ ok: boolean; code?: number }>((resolve, reject) => {
    const decoder = new FrameDecoder((body, compressed) => resolve(decodeMessage(body, compressed).payload as { ok: boolean; code?: number }));
    sock.setHandlers({
      data: (c) => decoder.push(c),
      drain() {},
      written() {},
      close: (err) => {
        closed();
        reject(err ?? new Error('closed before a reply'));
      },
    });
  });
  sock.write([encodeMessage({ uuid: 1, serviceId: 11, methodId: 2, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload: connectReq() })]);
  const r = await reply;
  setTimeout(() => sock.destroy(), 10_000).unref();
  return { reply: r, closed: done };
}

describe('rdma handshake over TLS, authenticated (rxe0)', () => {
  const listeners: BackendListener[] = [];
  const sockets: BackendSocket[] = [];
  const backends: VerbsBackend[] = [];
  const stops: (() => Promise<void>)[] = [];

  beforeAll(() => {
    IBManager.start();
  });
  afterEach(async () => {
    for (const f of stops.splice(0).reverse()) await f();
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(listeners.splice(0).map((l) => l.close()));
    for (const b of backends.splice(0)) await expect.poll(() => b.acceptStats().qps, { timeout: 60_000 }).toBe(0);
  });
  afterAll(() => {
    IBManager.stop();
  });

  async function serve(b: VerbsBackend, opts: { authenticate?: ConnectionAuthenticator } = {}) {
    backends.push(b);
    const accepted: BackendSocket[] = [];
    const l = await b.listen(rdmaAddress(HOST, 0), opts, (s) => {
      sockets.push(s);
      accepted.push(s);
    });
    listeners.push(l);
    return { port: l.address.port, accepted };
  }

  it('mTLS: the handshake runs over tls, each end sees the other certificate, and bytes flow over the QP', async () => {
    const server = rdma({ channel: tls({ ...serverCert, ca: ca.cert, requireClientCert: true }) });
    const { port, accepted } = await serve(server);
    const client = rdma({ channel: tls({ ...clientCert, ca: ca.cert }) });
    const sock = await client.connect(rdmaAddress(HOST, port));
    sockets.push(sock);
    expect(sock.scheme).toBe('rdma');
    expect(sock.peerCertificate?.()?.subject).toContain('CN=rdma-server');
    await expect.poll(() => accepted.length, { timeout: 30_000 }).toBe(1);
    const srv = accepted[0]!;
    expect(srv.peerCertificate?.()?.subject).toContain('CN=rdma-client-3');
    expect(srv.peerCertificate?.()?.subjectAltNames).toEqual(['DNS:client3']);
    // No authenticator: no principal.
    expect(srv.principal?.()).toBeUndefined();
    const got: Buffer[] = [];
    srv.setHandlers({ data: (c) => got.push(Buffer.from(c)), drain() {}, written() {}, close() {} });
    sock.setHandlers({ data() {}, drain() {}, written() {}, close() {} });
    sock.write([Buffer.from('over the queue pair')]);
    await expect.poll(() => Buffer.concat(got).toString(), { timeout: 30_000 }).toBe('over the queue pair');
  });

  it('a server certificate from a CA the client does not trust: UnauthenticatedError naming the rdma peer, no QP', async () => {
    const server = rdma({ channel: tls({ ...serverCert, ca: ca.cert }) });
    const { port } = await serve(server);
    const client = rdma({ channel: tls({ ca: otherCa.cert }) });
    const err = await rejection(client.connect(rdmaAddress(HOST, port)));
    expect(err).toBeInstanceOf(UnauthenticatedError);
    expect(err.code).toBe(StatusCode.Unauthenticated);
    expect(err.peer).toBe(`rdma://${HOST}:${port}`);
    expect(err.message).toMatch(/unknown issuer|self-signed/);
    expect(server.acceptStats().qps).toBe(0);
  });

  it('a client without a certificate on an mTLS channel: PermissionDeniedError naming the rdma peer, no QP', async () => {
    const server = rdma({ channel: tls({ ...serverCert, ca: ca.cert, requireClientCert: true }) });
    const { port } = await serve(server);
    const client = rdma({ channel: tls({ ca: ca.cert }) });
    const err = await rejection(client.connect(rdmaAddress(HOST, port)));
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect(err.peer).toBe(`rdma://${HOST}:${port}`);
    expect(server.acceptStats().qps).toBe(0);
  });

  it('with an authenticator: no credentials and a bad token are refused (2104), a good token connects with principal()', async () => {
    const seen: AuthRequest[] = [];
    const server = rdma();
    const { port, accepted } = await serve(server, { authenticate: tokenAuth(seen) });
    const addr = rdmaAddress(HOST, port);
    const client = rdma();

    const none = await rejection(client.connect(addr));
    expect(none).toBeInstanceOf(UnauthenticatedError);
    expect(none.peer).toBe(`rdma://${HOST}:${port}`);

    const bad = bearer('Bearer mallory');
    const refused = await rejection(client.connect(addr, { credentials: bad }));
    expect(refused).toBeInstanceOf(UnauthenticatedError);
    expect(refused.message).not.toContain('mallory');
    // The refused token is dropped from the provider's cache.
    expect(bad.invalidated).toBe(1);
    expect(server.acceptStats()).toMatchObject({ unauthenticated: 2, qps: 0 });

    const sock = await client.connect(addr, { credentials: bearer('Bearer alice') });
    sockets.push(sock);
    await expect.poll(() => accepted.length, { timeout: 30_000 }).toBe(1);
    expect(accepted[0]!.principal?.()).toEqual(ALICE);
    expect(seen.map((r) => r.metadata?.get('authorization'))).toEqual([undefined, 'Bearer mallory', 'Bearer alice']);
    expect(seen.every((r) => r.scheme === 'rdma')).toBe(true);
    expect(server.acceptStats().unauthenticated).toBe(2);
  });

  it('rdma({ credentials }) is sent when the connect brings none', async () => {
    const server = rdma();
    const { port, accepted } = await serve(server, { authenticate: tokenAuth([]) });
    const sock = await rdma({ credentials: bearer('Bearer alice') }).connect(rdmaAddress(HOST, port));
    sockets.push(sock);
    await expect.poll(() => accepted.length, { timeout: 30_000 }).toBe(1);
    expect(accepted[0]!.principal?.()?.id).toBe('alice');
  });

  it('a credentials provider that fails fails the connect with ConnectFailedError, before any handshake is sent', async () => {
    const seen: AuthRequest[] = [];
    const server = rdma();
    const { port } = await serve(server, { authenticate: tokenAuth(seen) });
    const failing: Credentials = {
      metadata: () => {
        throw new Error('token service down');
      },
    };
    const err = await rejection(rdma().connect(rdmaAddress(HOST, port), { credentials: failing }));
    expect(err.code).toBe(StatusCode.ConnectFailed);
    expect(err.message).toContain('token service down');
    expect(err.peer).toBe(`rdma://${HOST}:${port}`);
    expect(seen).toHaveLength(0);
  });

  it('a forged handshake (raw TCP, a connect without query or credentials) is refused and leaves no QP', async () => {
    const server = rdma({ handshakeTimeoutMs: 3000 });
    const { port } = await serve(server, { authenticate: tokenAuth([]) });
    const forged = await forgeConnect(port);
    expect(forged.reply.ok).toBe(false);
    expect(forged.reply.code).toBe(StatusCode.Unauthenticated);
    await forged.closed;
    expect(server.acceptStats()).toMatchObject({ unauthenticated: 1, qps: 0, pinnedBytes: 0 });

    // The same bytes against a listener without an authenticator do make a QP: the refusal above is the check.
    const open = rdma({ handshakeTimeoutMs: 3000 });
    const { port: openPort } = await serve(open);
    const accepted = await forgeConnect(openPort);
    expect(accepted.reply.ok).toBe(true);
    expect(open.acceptStats().qps).toBe(1);
  });

  it('Client and Server over an rdma group whose handshake is mTLS; a tls:// caller on the same port is served too', async () => {
    const server = new Server({
      backends: [tcp(), rdma({ channel: tls({ ...serverCert, ca: ca.cert, requireClientCert: true }) })],
      groups: [{ networkType: 'rdma', listener: { host: HOST, port: 0 } }],
    });
    await server.start();
    stops.push(() => server.stop());
    const address = server.addresses[0]!;
    expect(address).toMatch(/^rdma:\/\//);
    const client = new Client({ backends: [tcp(), rdma({ channel: tls({ ...clientCert, ca: ca.cert }) })], timeoutMs: 10_000 });
    stops.push(() => client.stop());
    expect(await client.stub(EchoService, address).echo({ str: 'rdma over tls handshake' })).toEqual({ str: 'rdma over tls handshake' });
    const tlsClient = new Client({ backends: [tls({ ...clientCert, ca: ca.cert })], timeoutMs: 10_000 });
    stops.push(() => tlsClient.stop());
    expect(await tlsClient.stub(EchoService, address.replace(/^rdma:/, 'tls:')).echo({ str: 'tls on the rdma port' })).toEqual({ str: 'tls on the rdma port' });
  });

  it("Server's authenticate guards the rdma handshake: no token is refused before any QP, a token's principal is the caller's identity", async () => {
    const seen: AuthRequest[] = [];
    const backend = rdma();
    backends.push(backend);
    const server = new Server({
      backends: [tcp(), backend],
      authenticate: tokenAuth(seen),
      groups: [{ networkType: 'rdma', listener: { host: HOST, port: 0 } }],
    });
    await server.start();
    stops.push(() => server.stop());
    const address = server.addresses[0]!;
    const anonymous = new Client({ backends: [tcp(), rdma()], timeoutMs: 10_000 });
    stops.push(() => anonymous.stop());
    const refused = await rejection(anonymous.stub(EchoService, address).echo({ str: 'x' }));
    expect(refused.code).toBe(StatusCode.Unauthenticated);
    expect(backend.acceptStats().unauthenticated).toBeGreaterThanOrEqual(1);
    expect(backend.acceptStats().qps).toBe(0);
    const alice = new Client({ backends: [tcp(), rdma()], credentials: staticToken('Bearer alice'), timeoutMs: 10_000 });
    stops.push(() => alice.stop());
    // Core.stats wants an admin identity: alice's principal, from the handshake, is one.
    const stats = await alice.stub(CoreService, address).stats({});
    expect(stats.groups[0]!.addresses).toEqual([address]);
    expect(seen.some((r) => r.scheme === 'rdma' && r.metadata?.get('authorization') === 'Bearer alice')).toBe(true);
    expect(backend.acceptStats().qps).toBe(1);
  });

  it('the README example runs: mTLS handshake plus a token, an echo over rdma://', async () => {
    const rsp = await secureRdmaEcho({ ca: ca.cert, server: serverCert, client: clientCert }, HOST);
    expect(rsp).toEqual({ str: 'over a verified handshake' });
  });
});
