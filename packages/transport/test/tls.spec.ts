import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import * as nodeTls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { defaults } from '@ffnet/common';
import {
  ConnectFailedError,
  type FfnetError,
  InvalidArgError,
  PermissionDeniedError,
  SocketClosedError,
  TimeoutError,
  UnauthenticatedError,
} from '@ffnet/serde';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type Backend,
  type BackendHandlers,
  type BackendListener,
  type BackendSocket,
  formatAddress,
  parseAddress,
  type TlsBackendSocket,
  tcp,
  tcpAddress,
  tls,
  tlsAddress,
} from '../src/index.js';
import { TestPki } from './fixtures/certs.js';

const pki = new TestPki();
const ca = pki.ca('ffnet test CA');
const otherCa = pki.ca('some other CA');
const server = pki.leaf(ca, 'srv', 'IP:127.0.0.1,DNS:localhost');
const server2 = pki.leaf(otherCa, 'srv2', 'IP:127.0.0.1,DNS:localhost');
const client = pki.leaf(ca, 'cli', '', { client: true });
const expired = pki.leaf(ca, 'old', 'IP:127.0.0.1', { expired: true });
const wrongName = pki.leaf(ca, 'elsewhere', 'DNS:elsewhere.example');

afterAll(() => pki.cleanup());

const listeners: BackendListener[] = [];
const sockets: BackendSocket[] = [];
const servers: net.Server[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const l of listeners.splice(0)) await l.close();
  for (const s of servers.splice(0)) s.close();
});

/** A tls listener on 127.0.0.1 whose accepted sockets echo what they read. */
async function echoServer(backend: Backend, accepted: BackendSocket[] = []): Promise<BackendListener> {
  const l = await backend.listen(tlsAddress('127.0.0.1', 0), {}, (s) => {
    sockets.push(s);
    accepted.push(s);
    s.setHandlers({ data: (c) => s.write([Buffer.from(c)]), drain() {}, written() {}, close() {} });
  });
  listeners.push(l);
  return l;
}

async function dial(backend: Backend, l: BackendListener): Promise<TlsBackendSocket> {
  const s = (await backend.connect(l.address)) as TlsBackendSocket;
  sockets.push(s);
  return s;
}

interface Talk {
  got: string;
  want: number;
  done?: (s: string) => void;
}
const talks = new WeakMap<BackendSocket, Talk>();

/** Writes `text` and waits for it to come back (so the server's session tickets have arrived too). */
function roundTrip(s: BackendSocket, text: string): Promise<string> {
  let t = talks.get(s);
  if (t === undefined) {
    const talk: Talk = { got: '', want: 0 };
    t = talk;
    talks.set(s, talk);
    s.setHandlers({
      data(c) {
        talk.got += c.toString();
        if (talk.got.length >= talk.want) talk.done?.(talk.got);
      },
      drain() {},
      written() {},
      close() {},
    });
  }
  const talk = t;
  talk.got = '';
  talk.want = text.length;
  const p = new Promise<string>((resolve) => {
    talk.done = resolve;
  });
  s.write([Buffer.from(text)]);
  return p;
}

/** The error a socket closes with, or the connect's rejection. */
async function failure(p: Promise<BackendSocket>): Promise<FfnetError | undefined> {
  let s: BackendSocket;
  try {
    s = await p;
  } catch (e) {
    return e as FfnetError;
  }
  sockets.push(s);
  return new Promise((resolve) => {
    s.setHandlers({ data() {}, drain() {}, written() {}, close: (err) => resolve(err) });
    s.write([Buffer.from('hello')]);
  });
}

describe('tls:// addresses', () => {
  it('parse, format and validate like tcp://', () => {
    const a = parseAddress('TLS://[::1]:9000');
    expect(a).toEqual({ scheme: 'tls', host: '::1', port: 9000, path: '' });
    expect(formatAddress(a)).toBe('tls://[::1]:9000');
    expect(formatAddress(tlsAddress('Example.COM', 1))).toBe('tls://example.com:1');
    expect(() => parseAddress('tls://host')).toThrow(/missing :port/);
    expect(() => parseAddress('tls://h:70000')).toThrow(/port/);
  });

  it('tls() checks its options', () => {
    expect(() => tls({ key: server.key })).toThrow(InvalidArgError);
    expect(() => tls({ handshakeTimeoutMs: -1 })).toThrow(InvalidArgError);
    expect(() => tls({ sessionCacheSize: 1.5 })).toThrow(InvalidArgError);
    expect(() => tls({ minVersion: 'TLSv1.1' as 'TLSv1.2' })).toThrow(InvalidArgError);
    expect(tls().scheme).toBe('tls');
    expect(defaults.TLS_HANDSHAKE_TIMEOUT_MS).toBe(5000);
  });

  it('a listener without key and cert is refused', async () => {
    await expect(tls({ ca: ca.cert }).listen(tlsAddress('127.0.0.1', 0), {}, () => {})).rejects.toThrow(/needs key and cert/);
  });
});

describe('tls() connections', () => {
  it('verifies the server, negotiates ALPN ffnet and TLS 1.3, and names both peers by certificate (mTLS)', async () => {
    const accepted: BackendSocket[] = [];
    const l = await echoServer(tls({ ...server, ca: ca.cert, requireClientCert: true }), accepted);
    const s = await dial(tls({ ...client, ca: ca.cert }), l);
    expect(await roundTrip(s, 'ping')).toBe('ping');
    expect(s.scheme).toBe('tls');
    expect(s.peer).toBe(formatAddress(l.address));
    const id = s.peerCertificate();
    expect(id?.subject).toContain('CN=srv');
    expect(id?.subjectAltNames).toEqual(['IP Address:127.0.0.1', 'DNS:localhost']);
    expect(id?.fingerprint256).toBe(new X509Certificate(server.cert).fingerprint256);
    const back = accepted[0] as TlsBackendSocket;
    expect(back.peer).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/);
    expect(back.peerCertificate()?.subject).toContain('CN=cli');
    expect(back.peerCertificate()?.fingerprint256).toBe(new X509Certificate(client.cert).fingerprint256);
  });

  it('a server without requestCert sees no client identity', async () => {
    const accepted: BackendSocket[] = [];
    const l = await echoServer(tls(server), accepted);
    const s = await dial(tls({ ca: ca.cert }), l);
    expect(await roundTrip(s, 'x')).toBe('x');
    expect((accepted[0] as TlsBackendSocket).peerCertificate()).toBeUndefined();
  });

  it('a second connection to the same address resumes the session; the cache is bounded per address', async () => {
    const srv = tls(server);
    const a = await echoServer(srv);
    const b = await echoServer(srv);
    const dialer = tls({ ca: ca.cert, sessionCacheSize: 1 });
    const first = await dial(dialer, a);
    expect(first.isSessionReused()).toBe(false);
    await roundTrip(first, 'one');
    const second = await dial(dialer, a);
    expect(second.isSessionReused()).toBe(true);
    await roundTrip(second, 'two');
    // Room for one address: b's session pushes a's out.
    await roundTrip(await dial(dialer, b), 'three');
    expect((await dial(dialer, a)).isSessionReused()).toBe(false);
  });

  it('reload() swaps credentials for new connections; open ones keep working', async () => {
    const srv = tls(server);
    const l = await echoServer(srv);
    const dialer = tls({ ca: ca.cert });
    const old = await dial(dialer, l);
    await roundTrip(old, 'a');
    srv.reload({ key: server2.key, cert: server2.cert });
    // The old client trusts only the first CA: a new connection now meets a certificate it cannot verify.
    const err = await failure(dialer.connect(l.address));
    expect(err).toBeInstanceOf(UnauthenticatedError);
    dialer.reload({ ca: otherCa.cert });
    const fresh = await dial(dialer, l);
    expect(fresh.isSessionReused()).toBe(false);
    expect(fresh.peerCertificate()?.fingerprint256).toBe(new X509Certificate(server2.cert).fingerprint256);
    expect(await roundTrip(old, 'still')).toBe('still');
    expect(() => srv.reload({ cert: 'not a certificate' })).toThrow();
    // A failed reload leaves the running credentials in place.
    expect((await dial(dialer, l)).peerCertificate()?.subject).toContain('CN=srv2');
  });
});

describe('tls() sockets read into owner memory (onread)', () => {
  it.each(['dialled', 'accepted'] as const)('%s: decrypted bytes land in the region readInto offers, never past it, else in backend memory', async (side) => {
    const sent = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < sent.length; i += 4) sent.writeUInt32LE(i, i);
    // The second MiB of the stream is offered as the place for reads, the way a transport offers a large body.
    const target = Buffer.alloc(1024 * 1024);
    const st = { received: 0, inTarget: 0, firstOffer: -1, offered: undefined as Buffer | undefined, strays: 0 };
    const got: Buffer[] = [];
    let resolve!: () => void;
    const done = new Promise<void>((r) => {
      resolve = r;
    });
    const receiving: BackendHandlers = {
      readInto: () => {
        const r = st.received;
        st.offered = r >= 1024 * 1024 && r < 2 * 1024 * 1024 ? target.subarray(r - 1024 * 1024) : undefined;
        if (st.offered !== undefined && st.firstOffer < 0) st.firstOffer = r - 1024 * 1024;
        return st.offered;
      },
      data: (chunk) => {
        if (chunk.buffer === target.buffer) {
          st.inTarget += chunk.length;
          if (st.offered === undefined || chunk.byteOffset !== st.offered.byteOffset || chunk.length > st.offered.length) st.strays++;
        }
        got.push(chunk);
        st.received += chunk.length;
        if (st.received >= sent.length) resolve();
      },
      drain() {},
      written() {},
      close() {},
    };
    const idle: BackendHandlers = { data() {}, drain() {}, written() {}, close() {} };
    const l = await tls({ key: server.key, cert: server.cert }).listen(tlsAddress('127.0.0.1', 0), {}, (s) => {
      sockets.push(s);
      if (side === 'accepted') {
        s.setHandlers(receiving);
      } else {
        s.setHandlers(idle);
        s.write([sent]);
      }
    });
    listeners.push(l);
    const c = await dial(tls({ ca: ca.cert }), l);
    if (side === 'dialled') {
      c.setHandlers(receiving);
    } else {
      c.setHandlers(idle);
      c.write([sent]);
    }
    await done;
    expect(Buffer.concat(got).equals(sent)).toBe(true);
    expect(st.strays).toBe(0);
    expect(st.firstOffer).toBeGreaterThanOrEqual(0);
    expect(st.inTarget).toBe(1024 * 1024 - st.firstOffer);
    expect(target.subarray(st.firstOffer).equals(sent.subarray(1024 * 1024 + st.firstOffer, 2 * 1024 * 1024))).toBe(true);
  });

  it('bytes that arrive before the owner sets its handlers come first, in order', async () => {
    const l = await tls({ key: server.key, cert: server.cert }).listen(tlsAddress('127.0.0.1', 0), {}, (s) => {
      sockets.push(s);
      s.setHandlers({ data() {}, drain() {}, written() {}, close() {} });
      s.write([Buffer.from('early;')]);
      setTimeout(() => s.write([Buffer.from('late')]), 80);
    });
    listeners.push(l);
    const c = await dial(tls({ ca: ca.cert }), l);
    await new Promise((r) => setTimeout(r, 40));
    const got: Buffer[] = [];
    const done = new Promise<void>((resolve) =>
      c.setHandlers({
        data: (chunk) => {
          got.push(chunk);
          if (Buffer.concat(got).length >= 10) resolve();
        },
        drain() {},
        written() {},
        close() {},
      }),
    );
    await done;
    expect(Buffer.concat(got).toString()).toBe('early;late');
  });

  it('accepted: bytes a client sends with its handshake, and before the owner sets handlers, come first, in order', async () => {
    // A node:tls client queues its writes until the handshake ends and sends them behind its Finished, so some
    // arrive before (or with) secureConnection: both those and the ones read before setHandlers must come first.
    const received: Buffer[][] = [];
    const settled: Promise<void>[] = [];
    const l = await tls({ key: server.key, cert: server.cert }).listen(tlsAddress('127.0.0.1', 0), {}, (s) => {
      sockets.push(s);
      const got: Buffer[] = [];
      received.push(got);
      settled.push(
        new Promise<void>((resolve) =>
          setTimeout(
            () =>
              s.setHandlers({
                data: (chunk) => {
                  got.push(Buffer.from(chunk));
                  if (Buffer.concat(got).length >= 200_000) resolve();
                },
                drain() {},
                written() {},
                close() {},
              }),
            received.length % 2 === 0 ? 30 : 0,
          ),
        ),
      );
    });
    listeners.push(l);
    const sent = Buffer.alloc(200_000);
    for (let i = 0; i < sent.length; i++) sent[i] = (i * 7) & 0xff;
    const clients = Array.from({ length: 4 }, () => {
      const c = nodeTls.connect({
        host: '127.0.0.1',
        port: (l.address as { port: number }).port,
        ca: ca.cert,
        ALPNProtocols: ['ffnet'],
        servername: 'localhost',
      });
      c.on('error', () => {});
      for (let o = 0; o < sent.length; o += 1000) c.write(sent.subarray(o, o + 1000));
      return c;
    });
    const deadline = Date.now() + 10_000;
    while (settled.length < clients.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await Promise.all(settled);
    for (const got of received) expect(Buffer.concat(got).equals(sent)).toBe(true);
    for (const c of clients) c.destroy();
  });
});

describe('tls() failures are quick and typed, naming the peer and the reason', () => {
  async function refused(cert: { key: string; cert: string }, dialer: Backend): Promise<{ err: FfnetError; peer: string }> {
    const l = await echoServer(tls(cert));
    const err = await failure(dialer.connect(l.address));
    return { err: err as FfnetError, peer: formatAddress(l.address) };
  }

  it('wrong CA: UnauthenticatedError, unknown issuer', async () => {
    const { err, peer } = await refused(server2, tls({ ca: ca.cert }));
    expect(err).toBeInstanceOf(UnauthenticatedError);
    expect(err.code).toBe(2104);
    expect(err.peer).toBe(peer);
    expect(err.message).toMatch(/unknown issuer/);
    expect(err.message).not.toContain('PRIVATE KEY');
  });

  it('expired certificate: UnauthenticatedError, certificate expired', async () => {
    const { err, peer } = await refused(expired, tls({ ca: ca.cert }));
    expect(err).toBeInstanceOf(UnauthenticatedError);
    expect(err.peer).toBe(peer);
    expect(err.message).toMatch(/certificate expired \(CERT_HAS_EXPIRED\)/);
  });

  it('host name mismatch: UnauthenticatedError', async () => {
    const { err } = await refused(wrongName, tls({ ca: ca.cert }));
    expect(err).toBeInstanceOf(UnauthenticatedError);
    expect(err.message).toMatch(/host name mismatch/);
    // The same certificate passes when the client asks for the name it carries.
    const l = await echoServer(tls(wrongName));
    const ok = await dial(tls({ ca: ca.cert, servername: 'elsewhere.example' }), l);
    expect(await roundTrip(ok, 'ok')).toBe('ok');
  });

  it('mTLS without a client certificate: PermissionDeniedError on the client, nothing reaches the server owner', async () => {
    const accepted: BackendSocket[] = [];
    const l = await echoServer(tls({ ...server, ca: ca.cert, requireClientCert: true }), accepted);
    const err = await failure(tls({ ca: ca.cert }).connect(l.address));
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect(err?.peer).toBe(formatAddress(l.address));
    expect(err?.message).toMatch(/requires a client certificate/);
    expect(accepted).toHaveLength(0);
  });

  it('mTLS with a certificate from another CA: refused by the server before its owner sees the socket', async () => {
    const accepted: BackendSocket[] = [];
    const l = await echoServer(tls({ ...server, ca: ca.cert, requireClientCert: true }), accepted);
    const stranger = pki.leaf(otherCa, 'stranger', '', { client: true });
    const s = await tls({ ...stranger, ca: ca.cert }).connect(l.address);
    sockets.push(s);
    // node:tls checks a sent client certificate after the handshake and closes without an alert, so under
    // TLS 1.3 this client sees only the close (a Transport reports it as SocketClosedError).
    const closed = await new Promise<FfnetError | undefined>((resolve) => {
      s.setHandlers({ data() {}, drain() {}, written() {}, close: resolve });
      s.write([Buffer.from('x')]);
    });
    expect(closed === undefined || closed instanceof PermissionDeniedError).toBe(true);
    expect(accepted).toHaveLength(0);
  });

  it('a plain-tcp client on a TLS port is closed, and one that sends nothing is closed at the handshake timeout', async () => {
    const accepted: BackendSocket[] = [];
    const l = await echoServer(tls({ ...server, handshakeTimeoutMs: 300 }), accepted);
    const plain = await tcp().connect(tcpAddress('127.0.0.1', l.address.port));
    sockets.push(plain);
    const closed = await failure(Promise.resolve(plain));
    // Closed by the server (EOF or reset), as a close this client sees rather than a hang.
    expect(closed === undefined || closed instanceof SocketClosedError).toBe(true);
    const t0 = Date.now();
    const silent = net.connect(l.address.port, '127.0.0.1');
    silent.on('error', () => {});
    await new Promise<void>((resolve) => silent.on('close', () => resolve()));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(accepted).toHaveLength(0);
  });

  it('a server that stalls the handshake: TimeoutError at handshakeTimeoutMs', async () => {
    const stall = net.createServer(() => {});
    servers.push(stall);
    await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r));
    const port = (stall.address() as net.AddressInfo).port;
    const err = await failure(tls({ ca: ca.cert, handshakeTimeoutMs: 200 }).connect(tlsAddress('127.0.0.1', port)));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err?.message).toMatch(/TLS handshake timed out after 200 ms/);
    expect(err?.peer).toBe(`tls://127.0.0.1:${port}`);
  });

  it('a TLS server that does not negotiate ALPN ffnet is refused; a client without ALPN is dropped', async () => {
    const foreign = nodeTls.createServer({ ...server }, (s) => s.end());
    servers.push(foreign);
    await new Promise<void>((r) => foreign.listen(0, '127.0.0.1', r));
    const port = (foreign.address() as net.AddressInfo).port;
    const err = await failure(tls({ ca: ca.cert }).connect(tlsAddress('127.0.0.1', port)));
    expect(err).toBeInstanceOf(ConnectFailedError);
    expect(err?.message).toMatch(/ALPN 'ffnet'/);

    const accepted: BackendSocket[] = [];
    const l = await echoServer(tls(server), accepted);
    const noAlpn = nodeTls.connect({ host: '127.0.0.1', port: l.address.port, ca: ca.cert });
    noAlpn.on('error', () => {});
    await new Promise<void>((resolve) => noAlpn.on('close', () => resolve()));
    expect(accepted).toHaveLength(0);
  });
});

describe('README TLS example', () => {
  it('runs as written: an mTLS echo', async () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## TLS (tls://)'));
    const code = /```js\n([\s\S]*?)```/.exec(section)?.[1];
    expect(code).toContain("tls({ key: pem('server.key')");
    for (const [f, v] of Object.entries({
      'server.key': server.key,
      'server.pem': server.cert,
      'client.key': client.key,
      'client.pem': client.cert,
      'ca.pem': ca.cert,
    })) {
      writeFileSync(join(pki.dir, f), v);
    }
    // Inside the package, so '@ffnet/transport' resolves to this package (self-reference) and its deps to ours.
    const script = fileURLToPath(new URL(`./.readme-tls-${process.pid}.mjs`, import.meta.url));
    writeFileSync(script, code!);
    try {
      const out = await new Promise<string>((resolve, reject) => {
        execFile(process.execPath, [script], { cwd: pki.dir, timeout: 20_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
      });
      expect(out).toContain('server: client is CN=cli');
      expect(out).toContain('client got over tls');
    } finally {
      rmSync(script, { force: true });
    }
  });
});
