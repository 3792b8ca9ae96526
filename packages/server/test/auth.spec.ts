import { defineService, method, StatusCode, UnauthenticatedError } from '@ffnet/serde';
import { type AuthRequest, type Backend, type BackendSocket, type ConnectOptions, type Credentials, type Principal, tcp, tls } from '@ffnet/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { TestPki } from '../../transport/test/fixtures/certs.js';
import {
  type AuthErrorInfo,
  type AuthorizeCall,
  Client,
  type ClientOptions,
  CoreService,
  EchoService,
  implement,
  type PeerIdentity,
  Server,
  type ServerInterceptor,
  type ServerOptions,
  staticToken,
  tokenCredentials,
} from '../src/index.js';
import { groupConfig, rejection, sleep } from './helpers.js';

const Vault = defineService({
  name: 'Vault',
  id: 300,
  methods: {
    whoami: method<Record<string, never>, { id: string | null; roles: string[] }>(1),
    open: method<Record<string, never>, string>(2),
    identity: method<Record<string, never>, { scheme: string; subject: string | null; uid: number | null }>(3),
    whoamiLater: method<{ ms: number }, string | null>(4),
  },
});

/** Handler runs, by method. */
let ran: Record<string, number> = {};
const vault = implement(Vault, {
  whoami: (ctx) => {
    ran.whoami = (ran.whoami ?? 0) + 1;
    const p = ctx.peerIdentity.principal;
    return { id: p?.id ?? null, roles: [...(p?.roles ?? [])] };
  },
  open: () => {
    ran.open = (ran.open ?? 0) + 1;
    return 'opened';
  },
  whoamiLater: async (ctx, req) => {
    await sleep(req.ms);
    return ctx.peerIdentity.principal?.id ?? null;
  },
  identity: (ctx) => {
    const id: PeerIdentity = ctx.peerIdentity;
    return { scheme: id.scheme, subject: id.certificate?.subject ?? null, uid: id.credentials?.uid ?? null };
  },
});

const TOKENS: Record<string, Principal> = {
  'Bearer alice-token': { id: 'alice', roles: ['reader'] },
  'Bearer root-token': { id: 'root', roles: ['admin'] },
};

/** A token authenticator that records what it was shown. */
function tokenAuth(seen: AuthRequest[] = []) {
  return (req: AuthRequest) => {
    seen.push(req);
    const token = req.metadata?.get('authorization');
    return typeof token === 'string' ? TOKENS[token] : undefined;
  };
}

const servers: Server[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.stop();
  for (const s of servers.splice(0)) await s.stop();
  ran = {};
});

async function serve(opts: Omit<ServerOptions, 'groups'> & { kind?: 'tcp' | 'unix' | 'tls' } = {}): Promise<{ server: Server; address: string }> {
  const { kind = 'tcp', ...rest } = opts;
  const server = new Server({ groups: [groupConfig(kind)], ...rest });
  server.addService(vault);
  servers.push(server);
  await server.start();
  return { server, address: server.addresses[0]! };
}

function client(opts: ClientOptions = {}): Client {
  const c = new Client({ timeoutMs: 5000, ...opts });
  clients.push(c);
  return c;
}

const bearer = (token: string) => ({ metadata: new Map([['authorization', token]]) });

describe('authentication', () => {
  it('token over tcp: none or a bad one is refused with 2104 that says nothing; a good one reaches the handler with its principal', async () => {
    const errors: AuthErrorInfo[] = [];
    const { server, address } = await serve({ authenticate: tokenAuth(), onAuthError: (i) => errors.push(i), maxAuthFailures: 10 });
    const c = client();
    const v = c.stub(Vault, address);
    const none = await rejection(v.whoami({}));
    expect(none).toBeInstanceOf(UnauthenticatedError);
    expect(none.code).toBe(StatusCode.Unauthenticated);
    const bad = await rejection(v.whoami({}, bearer('Bearer guessed-s3cret')));
    expect(bad.code).toBe(StatusCode.Unauthenticated);
    expect(bad.message).not.toMatch(/guessed|s3cret|Bearer/);
    expect(bad.reason).toBe('unauthenticated');
    expect(ran.whoami).toBeUndefined();
    expect(await v.whoami({}, bearer('Bearer alice-token'))).toEqual({ id: 'alice', roles: ['reader'] });
    expect(ran.whoami).toBe(1);
    expect(errors.map((e) => [e.kind, e.method])).toEqual([
      ['unauthenticated', 'Vault.whoami'],
      ['unauthenticated', 'Vault.whoami'],
    ]);
    expect(server.stats().auth).toEqual({ authenticated: 1, refused: 2, denied: 0, closed: 0 });
  });

  it("an authenticator's error stays local: the caller gets 2104 'unauthenticated', the hook gets the error", async () => {
    const errors: AuthErrorInfo[] = [];
    const { address } = await serve({
      authenticate: () => {
        throw new Error('directory lookup for key=AKIA-SECRET failed at ldap://10.1.2.3');
      },
      onAuthError: (i) => errors.push(i),
    });
    const err = await rejection(client().stub(Vault, address).whoami({}, bearer('Bearer x')));
    expect(err.code).toBe(StatusCode.Unauthenticated);
    expect(err.message).not.toMatch(/AKIA|ldap|10\.1\.2\.3|lookup/);
    expect(err.cause).toBeUndefined();
    expect((errors[0]!.error as Error).message).toMatch(/AKIA-SECRET/);
  });

  it('an authenticator that does not answer within authTimeoutMs is a refusal', async () => {
    const errors: AuthErrorInfo[] = [];
    let aborted: unknown;
    let answered = false;
    const { address } = await serve({
      authTimeoutMs: 100,
      authenticate: (_req, { signal }) =>
        new Promise<Principal>((resolve) => {
          signal.addEventListener('abort', () => {
            aborted = signal.reason;
          });
          setTimeout(() => {
            answered = true;
            resolve({ id: 'late' });
          }, 3000).unref();
        }),
      onAuthError: (i) => errors.push(i),
    });
    const err = await rejection(client().stub(Vault, address).whoami({}));
    expect(err.code).toBe(StatusCode.Unauthenticated);
    // Refused by authTimeoutMs, before the authenticator's late answer (an order, not a wall-clock bound).
    expect(answered).toBe(false);
    expect((aborted as Error).name).toBe('TimeoutError');
    expect((errors[0]!.error as Error).name).toBe('TimeoutError');
    expect(ran.whoami).toBeUndefined();
  });

  it('unix: the authenticator sees the peer uid, and so does ctx.peerIdentity', async () => {
    const seen: AuthRequest[] = [];
    const { address } = await serve({
      kind: 'unix',
      authenticate: (req) => {
        seen.push(req);
        return req.credentials?.uid === process.getuid!() ? { id: `uid:${req.credentials.uid}` } : undefined;
      },
    });
    const v = client().stub(Vault, address);
    expect(await v.whoami({})).toEqual({ id: `uid:${process.getuid!()}`, roles: [] });
    expect(await v.identity({})).toEqual({ scheme: 'unix', subject: null, uid: process.getuid!() });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.scheme).toBe('unix');
    expect(seen[0]!.credentials).toMatchObject({ uid: process.getuid!(), pid: process.pid });
  });

  it('a changed token on the same connection runs the authenticator again', async () => {
    const seen: AuthRequest[] = [];
    const { address } = await serve({ authenticate: tokenAuth(seen) });
    const c = client();
    const v = c.stub(Vault, address);
    expect((await v.whoami({}, bearer('Bearer alice-token'))).id).toBe('alice');
    expect((await v.whoami({}, bearer('Bearer alice-token'))).id).toBe('alice');
    expect(seen).toHaveLength(1);
    expect((await v.whoami({}, bearer('Bearer root-token'))).id).toBe('root');
    expect(seen).toHaveLength(2);
    expect(c.connections).toBe(1);
  });

  it('a principal past expiresAt is authenticated again', async () => {
    let runs = 0;
    const { address } = await serve({
      authenticate: () => {
        runs++;
        return { id: `run${runs}`, expiresAt: Date.now() + 1500 };
      },
    });
    const v = client().stub(Vault, address);
    expect((await v.whoami({})).id).toBe('run1');
    expect((await v.whoami({})).id).toBe('run1');
    await sleep(1600);
    expect((await v.whoami({})).id).toBe('run2');
    expect(runs).toBe(2);
  });

  it('concurrent first calls on one connection share one authentication', async () => {
    let runs = 0;
    const { address } = await serve({
      authenticate: async (req) => {
        runs++;
        await sleep(50);
        return tokenAuth()(req);
      },
    });
    const c = client();
    const v = c.stub(Vault, address);
    const out = await Promise.all(Array.from({ length: 20 }, () => v.whoami({}, bearer('Bearer alice-token'))));
    expect(out.every((r) => r.id === 'alice')).toBe(true);
    expect(runs).toBe(1);
    expect(c.connections).toBe(1);
  });

  it('each handler sees the principal that let its own call in, though another token re-authenticated the connection meanwhile', async () => {
    const { address } = await serve({
      authenticate: async (req) => {
        await sleep(20);
        return tokenAuth()(req);
      },
    });
    const c = client();
    const v = c.stub(Vault, address);
    const [a, r, a2, later] = await Promise.all([
      v.whoami({}, bearer('Bearer alice-token')),
      v.whoami({}, bearer('Bearer root-token')),
      v.whoami({}, bearer('Bearer alice-token')),
      // Reads its identity only after root's call has re-authenticated the connection.
      v.whoamiLater({ ms: 200 }, bearer('Bearer alice-token')),
    ]);
    expect([a.id, r.id, a2.id, later]).toEqual(['alice', 'root', 'alice', 'alice']);
    expect(c.connections).toBe(1);
  });

  it('maxAuthFailures refusals close the connection (after answering)', async () => {
    const { server, address } = await serve({ authenticate: tokenAuth(), maxAuthFailures: 3 });
    const c = client();
    const v = c.stub(Vault, address);
    for (let i = 0; i < 3; i++) expect((await rejection(v.whoami({}, bearer(`Bearer guess-${i}`)))).code).toBe(StatusCode.Unauthenticated);
    for (let i = 0; i < 500 && c.connections > 0; i++) await sleep(10);
    expect(c.connections).toBe(0);
    expect(server.stats().auth).toMatchObject({ refused: 3, closed: 1 });
    // A new connection starts over.
    expect((await v.whoami({}, bearer('Bearer alice-token'))).id).toBe('alice');
  });

  it('a valid token between guesses does not reset the count', async () => {
    const { server, address } = await serve({ authenticate: tokenAuth(), maxAuthFailures: 3 });
    const c = client();
    const v = c.stub(Vault, address);
    for (let i = 0; i < 3; i++) {
      // Alternating valid tokens, so each one runs the authenticator and succeeds.
      const [token, id] = i % 2 === 0 ? ['Bearer alice-token', 'alice'] : ['Bearer root-token', 'root'];
      expect((await v.whoami({}, bearer(token))).id).toBe(id);
      expect((await rejection(v.whoami({}, bearer(`Bearer guess-${i}`)))).code).toBe(StatusCode.Unauthenticated);
      if (i < 2) expect(c.connections).toBe(1);
    }
    for (let i = 0; i < 500 && c.connections > 0; i++) await sleep(10);
    expect(c.connections).toBe(0);
    expect(server.stats().auth).toMatchObject({ authenticated: 3, refused: 3, closed: 1 });
  });

  it('interceptors run after authentication and see the principal', async () => {
    const seen: (string | undefined)[] = [];
    const spy: ServerInterceptor = (next) => (ctx, req) => {
      seen.push(ctx.peerIdentity.principal?.id);
      return next(ctx, req);
    };
    const { address } = await serve({ authenticate: tokenAuth(), interceptors: [spy] });
    const v = client().stub(Vault, address);
    await rejection(v.whoami({}));
    await v.whoami({}, bearer('Bearer alice-token'));
    expect(seen).toEqual(['alice']);
  });

  it('mTLS: the authenticator sees the verified client certificate, and so does ctx.peerIdentity', async () => {
    const pki = new TestPki();
    try {
      const ca = pki.ca('auth CA');
      const serverLeaf = pki.leaf(ca, 'server', 'IP:127.0.0.1');
      const clientLeaf = pki.leaf(ca, 'alice', '', { client: true });
      const seen: AuthRequest[] = [];
      const { address } = await serve({
        kind: 'tls',
        backends: [tls({ ...serverLeaf, ca: ca.cert, requireClientCert: true })],
        authenticate: (req) => {
          seen.push(req);
          const cn = /CN=([^,]+)/.exec(req.certificate?.subject ?? '')?.[1];
          return cn === undefined ? undefined : { id: cn, roles: ['reader'] };
        },
      });
      const v = client({ backends: [tls({ ...clientLeaf, ca: ca.cert })] }).stub(Vault, address);
      expect(await v.whoami({})).toEqual({ id: 'alice', roles: ['reader'] });
      expect(await v.identity({})).toMatchObject({ scheme: 'tls', subject: expect.stringMatching(/CN=alice/) });
      expect(seen).toHaveLength(1);
      expect(seen[0]!.scheme).toBe('tls');
      expect(seen[0]!.certificate?.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    } finally {
      pki.cleanup();
    }
  });

  it("a connection whose backend authenticated it (rdma's handshake) is not authenticated again, unless the token changes", async () => {
    // tcp() whose accepted sockets say the handshake authenticated them as `bob`.
    const real = tcp();
    const handshaked: Backend = {
      scheme: 'tcp',
      available: () => real.available(),
      connect: (a, o) => real.connect(a, o),
      listen: (a, o, onSocket) =>
        real.listen(a, o, (s) => {
          const principal = (): Principal => ({ id: 'bob', roles: ['reader'] });
          onSocket(new Proxy(s, { get: (t, k) => (k === 'principal' ? principal : Reflect.get(t, k, t)) }) as BackendSocket);
        }),
    };
    const seen: AuthRequest[] = [];
    const { address } = await serve({ backends: [handshaked], authenticate: tokenAuth(seen) });
    const v = client().stub(Vault, address);
    expect((await v.whoami({}, bearer('Bearer handshake-token'))).id).toBe('bob');
    expect((await v.whoami({}, bearer('Bearer handshake-token'))).id).toBe('bob');
    expect(seen).toHaveLength(0);
    expect((await v.whoami({}, bearer('Bearer root-token'))).id).toBe('root');
    expect(seen).toHaveLength(1);
  });
});

describe('per group', () => {
  it("a group's own authenticate replaces the server's; a group without one uses the server's", async () => {
    const server = new Server({
      groups: [groupConfig('tcp'), { ...groupConfig('unix'), authenticate: (req) => ({ id: `unix-uid-${req.credentials?.uid}` }) }],
      authenticate: tokenAuth(),
    });
    servers.push(server);
    for (const g of server.groups) g.addService(vault);
    await server.start();
    const [tcpAddr, unixAddr] = server.addresses;
    const c = client();
    expect((await rejection(c.stub(Vault, tcpAddr!).whoami({}))).code).toBe(StatusCode.Unauthenticated);
    expect((await c.stub(Vault, tcpAddr!).whoami({}, bearer('Bearer alice-token'))).id).toBe('alice');
    expect((await c.stub(Vault, unixAddr!).whoami({})).id).toBe(`unix-uid-${process.getuid!()}`);
    expect(server.groups.map((g) => g.stats().auth.authenticated)).toEqual([1, 1]);
  });
});

describe('authorization', () => {
  const readersOnly = (call: AuthorizeCall) => call.method !== 'open' || call.identity.principal?.roles?.includes('admin') === true;

  it('a denied method fails with 2102 naming only Service.method, and its handler never runs', async () => {
    const errors: AuthErrorInfo[] = [];
    const calls: string[] = [];
    const { server, address } = await serve({
      authenticate: tokenAuth(),
      authorize: (call, { signal }) => {
        calls.push(`${call.service}.${call.method}:${call.identity.principal?.id}:${signal.aborted}`);
        return readersOnly(call);
      },
      onAuthError: (i) => errors.push(i),
    });
    const v = client().stub(Vault, address);
    expect((await v.whoami({}, bearer('Bearer alice-token'))).id).toBe('alice');
    const err = await rejection(v.open({}, bearer('Bearer alice-token')));
    expect(err.code).toBe(StatusCode.PermissionDenied);
    expect(err.reason).toBe('Vault.open is not allowed');
    expect(ran.open).toBeUndefined();
    expect(await v.open({}, bearer('Bearer root-token'))).toBe('opened');
    expect(ran.open).toBe(1);
    expect(calls).toEqual(['Vault.whoami:alice:false', 'Vault.open:alice:false', 'Vault.open:root:false']);
    expect(errors.map((e) => [e.kind, e.method])).toEqual([['denied', 'Vault.open']]);
    expect(server.stats().auth.denied).toBe(1);
  });

  it('an authorizer that throws or rejects denies, without its message', async () => {
    const { address } = await serve({
      authorize: async (call) => {
        if (call.method === 'open') throw new Error('policy engine at 10.9.9.9 down');
        return true;
      },
    });
    const v = client().stub(Vault, address);
    expect((await v.whoami({})).id).toBeNull();
    const err = await rejection(v.open({}));
    expect(err.code).toBe(StatusCode.PermissionDenied);
    expect(err.message).not.toMatch(/policy|10\.9/);
    expect(ran.open).toBeUndefined();
  });

  it("runs for Core's methods too", async () => {
    const { address } = await serve({ kind: 'unix', authorize: (call) => call.service !== 'Core' });
    const c = client();
    expect((await rejection(c.stub(CoreService, address).stats({}))).code).toBe(StatusCode.PermissionDenied);
    expect(await c.stub(EchoService, address).echo({ str: 'x' })).toEqual({ str: 'x' });
  });

  it('a server without authenticate or authorize adds no step to the call path', async () => {
    const { server } = await serve();
    expect(server.groups[0]!.auth).toBeUndefined();
    const { server: guarded } = await serve({ authorize: () => true });
    expect(guarded.groups[0]!.auth).toBeDefined();
  });
});

describe('Core admin with identities', () => {
  it('Core.shutdown: refused for a non-admin principal and for an unauthenticated tcp loopback peer, run for an admin principal', async () => {
    const { server, address } = await serve({ authenticate: (req) => tokenAuth()(req) ?? { id: 'anonymous' } });
    const core = client().stub(CoreService, address);
    const anon = await rejection(core.shutdown({}));
    expect(anon.code).toBe(StatusCode.PermissionDenied);
    expect(anon.reason).toBe('Core.shutdown needs an admin identity');
    const reader = await rejection(core.shutdown({}, bearer('Bearer alice-token')));
    expect(reader.code).toBe(StatusCode.PermissionDenied);
    expect((await rejection(core.stats({}, bearer('Bearer alice-token')))).code).toBe(StatusCode.PermissionDenied);
    await sleep(30);
    expect(server.state).toBe('running');
    expect((await core.stats({}, bearer('Bearer root-token'))).auth.authenticated).toBeGreaterThanOrEqual(2);
    expect(await core.shutdown({}, bearer('Bearer root-token'))).toEqual({});
    for (let i = 0; i < 500 && server.state !== 'stopped'; i++) await sleep(10);
    expect(server.state).toBe('stopped');
  });

  it('an admin principal is refused when the authorizer says no', async () => {
    const { server, address } = await serve({ authenticate: tokenAuth(), authorize: (call) => call.method !== 'shutdown' });
    const core = client().stub(CoreService, address);
    expect((await rejection(core.shutdown({}, bearer('Bearer root-token')))).reason).toBe('Core.shutdown is not allowed');
    await sleep(30);
    expect(server.state).toBe('running');
  });
});

describe('client credentials', () => {
  it('staticToken goes with every call; a call that sets its own authorization sends that one', async () => {
    const seen: AuthRequest[] = [];
    const { address } = await serve({ authenticate: tokenAuth(seen) });
    const v = client({ credentials: staticToken('Bearer alice-token') }).stub(Vault, address);
    expect((await v.whoami({})).id).toBe('alice');
    expect((await v.whoami({}, { metadata: new Map([['trace', 't1']]) })).id).toBe('alice');
    expect((await v.whoami({}, bearer('Bearer root-token'))).id).toBe('root');
    expect(seen.map((r) => r.metadata?.get('authorization'))).toEqual(['Bearer alice-token', 'Bearer root-token']);
  });

  it('tokenCredentials: one fetch for concurrent calls, cached while fresh, refreshed before expiresAt', async () => {
    const { address } = await serve({ authenticate: (req) => ({ id: String(req.metadata?.get('authorization')) }) });
    let fetches = 0;
    const creds = tokenCredentials({
      // The first token enters its refresh window 500 ms after it was fetched, and expires 9.5 s later.
      refreshBeforeMs: 9500,
      fetch: async () => {
        fetches++;
        await sleep(20);
        return { token: `tok-${fetches}`, expiresAt: Date.now() + (fetches === 1 ? 10_000 : 60_000) };
      },
    });
    const v = client({ credentials: creds }).stub(Vault, address);
    const first = await Promise.all(Array.from({ length: 10 }, () => v.whoami({})));
    expect(first.every((r) => r.id === 'tok-1')).toBe(true);
    expect(fetches).toBe(1);
    // Fresh: answered from the cache, synchronously.
    expect(creds.metadata({ peer: address })).toBeInstanceOf(Map);
    // Within refreshBeforeMs of expiry: the cached token still goes out while one refresh runs.
    await sleep(700);
    expect((await v.whoami({})).id).toBe('tok-1');
    for (let i = 0; i < 100 && fetches < 2; i++) await sleep(10);
    await sleep(50);
    expect(fetches).toBe(2);
    expect((await v.whoami({})).id).toBe('tok-2');
  });

  it('after UnauthenticatedError the client invalidates its credentials and sends the call once more', async () => {
    const { address } = await serve({ authenticate: tokenAuth(), maxAuthFailures: 10 });
    let fetches = 0;
    let invalidated = 0;
    const tokens = ['Bearer stale', 'Bearer alice-token'];
    const inner = tokenCredentials({ fetch: () => ({ token: tokens[Math.min(fetches++, 1)]! }) });
    const creds: Credentials = {
      metadata: (o) => inner.metadata(o),
      invalidate: () => {
        invalidated++;
        inner.invalidate!();
      },
    };
    const v = client({ credentials: creds }).stub(Vault, address);
    expect((await v.whoami({})).id).toBe('alice');
    expect([fetches, invalidated, ran.whoami]).toEqual([2, 1, 1]);
    // Only once: credentials the server keeps refusing fail the call.
    const never = client({ credentials: staticToken('Bearer wrong') }).stub(Vault, address);
    let attempts = 0;
    const wrong = staticToken('Bearer wrong');
    const counting: Credentials = {
      metadata: (o) => {
        attempts++;
        return wrong.metadata(o);
      },
      invalidate: () => undefined,
    };
    expect((await rejection(never.whoami({}))).code).toBe(StatusCode.Unauthenticated);
    expect((await rejection(client({ credentials: counting }).stub(Vault, address).whoami({}))).code).toBe(StatusCode.Unauthenticated);
    expect(attempts).toBe(2);
    expect(ran.whoami).toBe(1);
  });

  it('a failed fetch fails the call with UnauthenticatedError and no token in the message', async () => {
    const { address } = await serve({ authenticate: tokenAuth() });
    const creds = tokenCredentials({
      fetch: async () => {
        throw new Error('idp refused client secret cs-123');
      },
    });
    const err = await rejection(client({ credentials: creds }).stub(Vault, address).whoami({}));
    expect(err.code).toBe(StatusCode.Unauthenticated);
    expect(err.message).not.toMatch(/cs-123/);
    expect((err.cause as Error).message).toMatch(/cs-123/);
  });

  it('a call waits for credentials being fetched no longer than its deadline, or its signal', async () => {
    const { address } = await serve({ authenticate: tokenAuth() });
    const creds = tokenCredentials({ fetch: () => new Promise((resolve) => setTimeout(() => resolve({ token: 'Bearer alice-token' }), 1500)) });
    const v = client({ credentials: creds }).stub(Vault, address);
    const late = await rejection(v.whoami({}, { timeoutMs: 100 }));
    expect(late.code).toBe(StatusCode.Timeout);
    expect(late.message).toMatch(/deadline passed while the credentials were being fetched/);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    expect((await rejection(v.whoami({}, { signal: ac.signal }))).code).toBe(StatusCode.Cancelled);
    expect(ran.whoami).toBeUndefined();
    // The shared fetch still lands, and later calls use it.
    expect((await v.whoami({}, { timeoutMs: 5000 })).id).toBe('alice');
  });

  it('a connect the peer refuses for who we are fails the call at once with that code, not SendFailed after retries', async () => {
    const { address } = await serve({});
    const real = tcp();
    let dials = 0;
    const refusing: Backend = {
      scheme: 'tcp',
      available: () => real.available(),
      connect: async (a) => {
        dials++;
        throw new UnauthenticatedError('unauthenticated', { peer: `tcp://${a.host}:${a.port}` });
      },
      listen: (a, o, cb) => real.listen(a, o, cb),
    };
    const c = client({ backends: [refusing], credentials: staticToken('Bearer nobody') });
    const err = await rejection(c.stub(Vault, address).whoami({}, { timeoutMs: 5000 }));
    expect(err.code).toBe(StatusCode.Unauthenticated);
    expect(err.message).not.toContain('nobody');
    // Neither the IO worker's send retries (sendRetryTimes) nor the client dial again with the same credentials.
    expect(dials).toBe(1);
  });

  it('credentials reach the backend as ConnectOptions.credentials', async () => {
    const { address } = await serve({ authenticate: tokenAuth() });
    const real = tcp();
    const recorded: (ConnectOptions | undefined)[] = [];
    const recording: Backend = {
      scheme: 'tcp',
      available: () => real.available(),
      connect: (a, o) => {
        recorded.push(o);
        return real.connect(a, o);
      },
      listen: (a, o, cb) => real.listen(a, o, cb),
    };
    const creds = staticToken('Bearer alice-token');
    expect(
      (
        await client({ backends: [recording], credentials: creds })
          .stub(Vault, address)
          .whoami({})
      ).id,
    ).toBe('alice');
    expect(recorded).toHaveLength(1);
    expect(recorded[0]!.credentials).toBe(creds);
  });
});
