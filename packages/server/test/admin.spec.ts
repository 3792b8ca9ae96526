import { InvalidConfigError, StatusCode } from '@ffnet/serde';
import { type Backend, type BackendSocket, type Transport, tcpAddress, unix, unixAddress } from '@ffnet/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, CoreService, EchoService, isLocalPeer, MAX_CONFIG_KEY_LENGTH, Server, type ServerOptions } from '../src/index.js';
import { groupConfig, rejection, sleep } from './helpers.js';

const servers: Server[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.stop();
  for (const s of servers.splice(0)) await s.stop();
});

async function serve(kind: 'tcp' | 'unix', opts: Omit<ServerOptions, 'groups'> = {}): Promise<{ server: Server; address: string; client: Client }> {
  const server = new Server({ groups: [groupConfig(kind)], ...opts });
  servers.push(server);
  await server.start();
  const client = new Client({ timeoutMs: 5000 });
  clients.push(client);
  return { server, address: server.addresses[0]!, client };
}

/** A transport as isLocalPeer sees it. */
function fakeTransport(address: Transport['address'], creds?: { uid: number }): Transport {
  return {
    address,
    peerCredentials: () => (creds === undefined ? undefined : { pid: 1, gid: 0, ...creds }),
  } as unknown as Transport;
}

describe('Core admin access', () => {
  it('refuses Core.shutdown by default to a tcp loopback peer (no admin identity) with PermissionDenied, and keeps serving', async () => {
    const { server, address, client } = await serve('tcp');
    const err = await rejection(client.stub(CoreService, address).shutdown({ graceful: true }));
    expect(err.code).toBe(StatusCode.PermissionDenied);
    expect(err.message).toMatch(/^Core\.shutdown needs an admin identity/);
    await sleep(50);
    expect(server.state).toBe('running');
    expect(await client.stub(EchoService, address).echo({ str: 'still up' })).toEqual({ str: 'still up' });
  });

  it("shutdown: 'none' refuses everyone, a unix peer of our own uid included", async () => {
    const { server, address, client } = await serve('unix', { admin: { shutdown: 'none' } });
    const err = await rejection(client.stub(CoreService, address).shutdown({ graceful: true }));
    expect(err.code).toBe(StatusCode.PermissionDenied);
    expect(err.message).toMatch(/^Core\.shutdown is disabled on this server/);
    await sleep(50);
    expect(server.state).toBe('running');
  });

  it('refuses Core.shutdown by default even to a unix peer running as our uid: with no authenticator nobody is an admin', async () => {
    const { server, address, client } = await serve('unix');
    const err = await rejection(client.stub(CoreService, address).shutdown({}));
    expect(err.code).toBe(StatusCode.PermissionDenied);
    expect(err.message).toMatch(/^Core\.shutdown needs an admin identity/);
    await sleep(50);
    expect(server.state).toBe('running');
  });

  it('runs Core.shutdown by default for a unix peer of our uid once the authenticator names it an admin', async () => {
    const { server, address, client } = await serve('unix', {
      authenticate: (req) => (req.credentials?.uid === process.getuid!() ? { id: 'operator', roles: ['admin'] } : undefined),
    });
    expect(await client.stub(CoreService, address).shutdown({})).toEqual({});
    for (let i = 0; i < 500 && server.state !== 'stopped'; i++) await sleep(10);
    expect(server.state).toBe('stopped');
  });

  it('runs Core.shutdown when enabled for local peers, over unix as our uid', async () => {
    const { server, address, client } = await serve('unix', { admin: { shutdown: 'local' } });
    expect(await client.stub(CoreService, address).shutdown({})).toEqual({});
    for (let i = 0; i < 500 && server.state !== 'stopped'; i++) await sleep(10);
    expect(server.state).toBe('stopped');
  });

  it("answers getConfig and stats to a unix peer as our uid or a tcp loopback peer only with inspect: 'local'", async () => {
    for (const kind of ['unix', 'tcp'] as const) {
      const { address, client } = await serve(kind, { admin: { inspect: 'local' } });
      const core = client.stub(CoreService, address);
      expect(JSON.parse((await core.getConfig({ configKey: 'groups.0.networkType' })).config)).toBe(kind);
      expect((await core.stats({})).groups[0]!.addresses).toEqual([address]);
      const closed = await serve(kind);
      expect((await rejection(closed.client.stub(CoreService, closed.address).stats({}))).code).toBe(StatusCode.PermissionDenied);
    }
    const { address, client } = await serve('tcp');
    const core = client.stub(CoreService, address);
    const err = await rejection(core.stats({}));
    expect(err.code).toBe(StatusCode.PermissionDenied);
    expect(err.message).toMatch(/^Core\.stats needs an admin identity/);
    expect((await rejection(core.getConfig({ configKey: '' }))).code).toBe(StatusCode.PermissionDenied);
  });

  it('treats a unix peer whose credentials cannot be read as remote: getConfig and stats are refused', async () => {
    // The unix backend, minus peerCredentials: what a platform without SO_PEERCRED looks like.
    const real = unix();
    const blind: Backend = {
      scheme: 'unix',
      available: () => real.available(),
      connect: (a, o) => real.connect(a, o),
      listen: (a, o, onSocket) =>
        real.listen(a, o, (s) => {
          onSocket(new Proxy(s, { get: (t, k) => (k === 'peerCredentials' ? undefined : Reflect.get(t, k, t)) }) as BackendSocket);
        }),
    };
    {
      const { address, client } = await serve('unix', { backends: [blind], admin: { inspect: 'local' } });
      const core = client.stub(CoreService, address);
      const stats = await rejection(core.stats({}));
      expect(stats.code).toBe(StatusCode.PermissionDenied);
      expect(stats.message).toMatch(/^Core\.stats is only answered to local peers/);
      expect((await rejection(core.getConfig({ configKey: '' }))).code).toBe(StatusCode.PermissionDenied);
      // Echo is not administrative.
      expect(await core.echo({ str: 'x' })).toEqual({ str: 'x' });
    }
    // The blind backend was this server's only: another server, with the default backends, still sees the uid.
    const { address, client } = await serve('unix', { admin: { inspect: 'local' } });
    expect((await client.stub(CoreService, address).stats({})).groups[0]!.addresses).toEqual([address]);
  });

  it("inspect: 'none' refuses everyone, 'any' answers everyone", async () => {
    const closed = await serve('tcp', { admin: { inspect: 'none' } });
    const err = await rejection(closed.client.stub(CoreService, closed.address).stats({}));
    expect(err.code).toBe(StatusCode.PermissionDenied);
    expect(err.message).toMatch(/^Core\.stats is disabled on this server/);
    const open = await serve('unix', { admin: { inspect: 'any', shutdown: 'none' } });
    expect((await open.client.stub(CoreService, open.address).stats({})).connections).toBeGreaterThanOrEqual(1);
  });

  it('refuses unknown admin levels at construction', () => {
    expect(() => new Server({ groups: [groupConfig('tcp')], admin: { shutdown: true as never } })).toThrow(InvalidConfigError);
    expect(() => new Server({ groups: [groupConfig('tcp')], admin: { inspect: 'all' as never } })).toThrow(
      /admin\.inspect must be one of none, admin, local, any/,
    );
  });

  it('knows which peers are local', () => {
    const uid = process.getuid!();
    expect(isLocalPeer(fakeTransport(tcpAddress('127.0.0.1', 1)))).toBe(true);
    expect(isLocalPeer(fakeTransport(tcpAddress('127.9.8.7', 1)))).toBe(true);
    expect(isLocalPeer(fakeTransport(tcpAddress('::1', 1)))).toBe(true);
    expect(isLocalPeer(fakeTransport(tcpAddress('::ffff:127.0.0.1', 1)))).toBe(true);
    expect(isLocalPeer(fakeTransport(tcpAddress('10.0.0.1', 1)))).toBe(false);
    expect(isLocalPeer(fakeTransport(tcpAddress('128.0.0.1', 1)))).toBe(false);
    expect(isLocalPeer(fakeTransport(tcpAddress('::ffff:10.0.0.1', 1)))).toBe(false);
    expect(isLocalPeer(fakeTransport(tcpAddress('fd00::1', 1)))).toBe(false);
    expect(isLocalPeer(fakeTransport(tcpAddress('localhost', 1)))).toBe(false);
    const path = unixAddress('/tmp/x.sock');
    expect(isLocalPeer(fakeTransport(path, { uid }))).toBe(true);
    expect(isLocalPeer(fakeTransport(path, { uid: uid + 1 }))).toBe(false);
    expect(isLocalPeer(fakeTransport(path))).toBe(false);
    expect(isLocalPeer(fakeTransport({ ...tcpAddress('127.0.0.1', 1), scheme: 'rdma' }))).toBe(false);
  });
});

describe('built-ins check their requests', () => {
  it('answers InvalidArg, not a crash message, to nil and mistyped requests', async () => {
    const { address, client } = await serve('unix', { admin: { shutdown: 'local', inspect: 'local' } });
    const cases: [number, number, unknown, RegExp][] = [
      [EchoService.id, 1, null, /^Echo\.echo request does not fit its schema: request: expected hf3fs::serde::echo::Message \(object\), got null/],
      [EchoService.id, 1, undefined, /^Echo\.echo request does not fit its schema: request: expected hf3fs::serde::echo::Message \(object\), got undefined/],
      [EchoService.id, 1, [1, 2], /request: expected hf3fs::serde::echo::Message \(object\), got/],
      [EchoService.id, 1, 'hi', /request: expected hf3fs::serde::echo::Message \(object\), got/],
      [EchoService.id, 1, { str: 5 }, /request\.str: expected string, got/],
      [EchoService.id, 1, {}, /request\.str: expected string \(field missing\)/],
      [CoreService.id, 1, null, /^Core\.echo request does not fit its schema: request: expected hf3fs::core::EchoMessage \(object\), got null/],
      [CoreService.id, 1, { str: Buffer.from('x') }, /request\.str: expected string, got/],
      [CoreService.id, 2, null, /^Core\.getConfig expects a request \{configKey: string\}, got null/],
      [CoreService.id, 2, { configKey: 7 }, /configKey must be a string, got number/],
      [
        CoreService.id,
        2,
        { configKey: 'x'.repeat(MAX_CONFIG_KEY_LENGTH + 1) },
        new RegExp(`configKey is ${MAX_CONFIG_KEY_LENGTH + 1} characters long \\(max ${MAX_CONFIG_KEY_LENGTH}\\)`),
      ],
      [CoreService.id, 2, { configKey: '__proto__' }, /configKey may not name __proto__/],
      [CoreService.id, 2, { configKey: 'groups.constructor.name' }, /configKey may not name constructor/],
      [CoreService.id, 2, { configKey: 'groups..0' }, /dot-separated names/],
      [CoreService.id, 2, { configKey: 'groups[0]' }, /dot-separated names/],
      [CoreService.id, 2, { configKey: 'groups.0.toString' }, /no config key groups\.0\.toString/],
      [CoreService.id, 2, { configKey: 'groups.0.networkType.length' }, /no config key/],
      [CoreService.id, 6, null, /^Core\.shutdown expects a request \{graceful\?: boolean\}, got null/],
      [CoreService.id, 6, { graceful: 'yes' }, /graceful must be a boolean, got string/],
      [CoreService.id, 7, null, /^Core\.stats expects a request \{\}, got null/],
      [CoreService.id, 7, { a: 1 }, /^Core\.stats expects an empty request \{\}/],
    ];
    for (const [serviceId, methodId, req, message] of cases) {
      const err = await rejection(client.callRaw(address, serviceId, methodId, req));
      expect({ req, code: err.code }).toEqual({ req, code: StatusCode.InvalidArg });
      expect(err.message).toMatch(message);
    }
    // None of the refused shutdowns stopped it.
    expect(await client.stub(CoreService, address).echo({ str: 'ok' })).toEqual({ str: 'ok' });
  });
});
