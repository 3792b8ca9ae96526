// What a server and a client log through a Logger passed in: connections, refusals, dropped frames, slow calls,
// and the errors that used to be swallowed. The logger is a real one that keeps its records (CaptureLogger).
import { spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { encodeFrame, frameHeader, StatusCode } from '@ffnet/serde';
import { tls } from '@ffnet/transport';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CaptureLogger } from '../../common/test/fixtures/log-capture.js';
import { TestPki } from '../../transport/test/fixtures/certs.js';
import { Client, type ClientOptions, CoreService, EchoService, implement, Server, type ServerOptions, staticToken } from '../src/index.js';
import { groupConfig, rejection, sleep, TestService } from './helpers.js';

const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of stops.splice(0).reverse()) await f();
});

const test = implement(TestService, {
  hello: (_ctx, req) => ({ greeting: `hello ${req.name}` }),
  fail: () => {
    throw new Error('disk /var/secret-path is full');
  },
  slow: async (_ctx, req) => {
    await sleep(req.ms);
    return { slept: req.ms };
  },
  blob: (_ctx, req) => req,
  waitAbort: () => 'x',
  peer: (ctx) => ctx.peer,
});

async function serve(opts: Partial<ServerOptions> = {}): Promise<{ server: Server; address: string; log: CaptureLogger }> {
  const log = new CaptureLogger();
  const server = new Server({ groups: [{ ...groupConfig('tcp'), services: ['Test'] }], logger: log, ...opts });
  server.addService(test);
  await server.start();
  stops.push(() => server.stop());
  return { server, address: server.groups[0]!.addresses[0]!, log };
}

function client(opts: ClientOptions = {}): Client {
  const c = new Client({ timeoutMs: 5000, ...opts });
  stops.push(() => c.stop());
  return c;
}

async function rawSocket(address: string): Promise<Socket> {
  const u = new URL(address.replace('tcp:', 'http:'));
  const s = connect(Number(u.port), u.hostname);
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  stops.push(async () => void s.destroy());
  return s;
}

describe('connections', () => {
  it('opened and closed are logged on both sides, with peer and component', async () => {
    const { address, log } = await serve();
    const clog = new CaptureLogger();
    const c = new Client({ timeoutMs: 5000, logger: clog });
    await c.stub(EchoService, address).echo({ str: 'hi' });
    const out = clog.find('connection opened')[0];
    expect(out?.fields).toMatchObject({ component: 'transport', peer: address, incoming: false, scheme: 'tcp' });
    const inc = await log.waitFor('connection opened');
    expect(inc.fields).toMatchObject({ component: 'transport', incoming: true });
    await c.stop();
    const closed = await log.waitFor('connection closed', (r) => r.fields.id === inc.fields.id);
    expect(closed.level).toBe('debug');
    expect(closed.fields.peer).toBe(inc.fields.peer);
    expect(clog.find('connection closed')[0]?.fields).toMatchObject({ component: 'transport', peer: address, incoming: false });
  });

  it('a connect that fails is logged as such, with the reason', async () => {
    const clog = new CaptureLogger();
    const c = client({ logger: clog, sendRetryTimes: 0 });
    // A port nobody listens on (the server's, after it stopped).
    const { server, address } = await serve();
    await server.stop();
    await rejection(c.stub(EchoService, address).echo({ str: 'x' }));
    const r = await clog.waitFor('connect failed');
    expect(r.fields).toMatchObject({ component: 'transport', peer: address });
    expect(typeof r.fields.reason).toBe('string');
  });
});

describe('tls handshakes', () => {
  const pki = new TestPki();
  const ca = pki.ca('ffnet logging test CA');
  const serverCert = pki.leaf(ca, 'srv', 'IP:127.0.0.1,DNS:localhost');
  afterAll(() => pki.cleanup());

  it('a client without the required certificate is logged as a failed handshake, with its peer', async () => {
    const log = new CaptureLogger();
    const server = new Server({
      groups: [{ networkType: 'tls', listener: { host: '127.0.0.1', port: 0 }, backends: [tls({ ...serverCert, ca: ca.cert, requireClientCert: true })] }],
      logger: log,
    });
    await server.start();
    stops.push(() => server.stop());
    const anonymous = client({ backends: [tls({ ca: ca.cert })] });
    await rejection(anonymous.stub(EchoService, server.addresses[0]!).echo({ str: 'x' }));
    const r = await log.waitFor('tls handshake failed');
    expect(r.level).toBe('warn');
    expect(r.fields.component).toBe('transport');
    expect(String(r.fields.peer)).toMatch(/^127\.0\.0\.1:\d+$|^tls:\/\//);
    expect(r.fields.err).toBeInstanceOf(Error);
  });
});

describe('dropped frames', () => {
  it('a corrupt CRC closes the connection with a warn naming peer and reason', async () => {
    const { address, log } = await serve();
    const s = await rawSocket(address);
    const frame = encodeFrame(Buffer.from('not what the CRC says'));
    frame[10] = frame[10]! ^ 0xff;
    s.write(frame);
    const r = await log.waitFor('frame dropped, closing connection');
    expect(r.level).toBe('warn');
    expect(r.fields).toMatchObject({ component: 'transport', code: StatusCode.DataCorruption });
    expect(String(r.fields.reason)).toMatch(/crc/i);
    expect(String(r.fields.peer)).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
  });

  it('bad magic and an oversized header are logged the same way', async () => {
    const { address, log } = await serve({ groups: [{ ...groupConfig('tcp'), services: ['Test'], ioWorker: { transport: { maxMessageSize: 1024 } } }] });
    const a = await rawSocket(address);
    a.write(Buffer.from([0x11, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4]));
    const b = await rawSocket(address);
    const big = frameHeader(Buffer.alloc(0));
    big.writeUInt32LE(4096, 4);
    b.write(big);
    await log.waitFor('frame dropped, closing connection', (r) => /magic/.test(String(r.fields.reason)));
    await log.waitFor('frame dropped, closing connection', (r) => /at or above the limit/.test(String(r.fields.reason)));
  });

  it('a frame whose body does not decode is logged by the worker', async () => {
    const { address, log } = await serve();
    const s = await rawSocket(address);
    s.write(encodeFrame(Buffer.from([0xc1, 0xc1, 0xc1])));
    const r = await log.waitFor(/message does not decode/);
    expect(r.level).toBe('warn');
    expect(r.fields.component).toBe('worker');
    expect(typeof r.fields.code).toBe('number');
  });
});

describe('refused requests', () => {
  it('over maxProcessingRequests: warn with the reason; frozen: a debug record per dropped request', async () => {
    const { server, address, log } = await serve({
      groups: [{ ...groupConfig('tcp'), services: ['Test'], processor: { maxProcessingRequests: 1 } }],
    });
    const c = client();
    const stub = c.stub(TestService, address);
    const first = stub.slow({ ms: 300 });
    await sleep(50);
    const e = await rejection(stub.hello({ name: 'x' }));
    expect(e.code).toBe(StatusCode.RequestRefused);
    await first;
    const r = log.find('request refused')[0];
    expect(r?.level).toBe('warn');
    expect(r?.fields).toMatchObject({ component: 'worker', service: 'Test', method: 'Test.hello' });
    expect(String(r?.fields.reason)).toContain('max 1');

    server.setFrozen(true);
    const f = await rejection(stub.hello({ name: 'y' }, { timeoutMs: 200 }));
    expect(f.code).toBe(StatusCode.Timeout);
    expect(log.find('request dropped unanswered: frozen')[0]?.fields).toMatchObject({ component: 'worker', serviceId: TestService.id });
    server.setFrozen(false);
  });

  it('an admin call refused is logged with peer and method', async () => {
    const { address, log } = await serve();
    const e = await rejection(client().stub(CoreService, address).stats({}));
    expect(e.code).toBe(StatusCode.PermissionDenied);
    const r = log.find('admin call refused')[0];
    expect(r?.level).toBe('warn');
    expect(r?.fields).toMatchObject({ component: 'server', method: 'Core.stats', access: 'admin' });
    expect(String(r?.fields.peer)).toMatch(/^tcp:\/\//);
  });

  it('an authentication refusal is logged, and no token (nor the authenticator words quoting it) appears anywhere', async () => {
    const SECRET = 'Bearer s3cr3t-T0KEN-value';
    const { address, log } = await serve({
      authenticate: (req) => {
        throw new Error(`token ${String(req.metadata?.get('authorization'))} is not valid`);
      },
      maxAuthFailures: 2,
    });
    const clog = new CaptureLogger();
    const c = client({ logger: clog, credentials: staticToken(SECRET) });
    const stub = c.stub(TestService, address);
    // One call, two refusals: the client sends it once more with its credentials refreshed, then the server closes.
    expect((await rejection(stub.hello({ name: 'x' }))).code).toBe(StatusCode.Unauthenticated);
    const refusals = log.find(/^call refused: unauthenticated/);
    expect(refusals.length).toBeGreaterThanOrEqual(2);
    expect(refusals[0]?.fields).toMatchObject({ component: 'server', method: 'Test.hello', cause: 'Error' });
    expect(refusals.some((r) => r.fields.closing === true)).toBe(true);
    await c.stop();
    // Everything either side logged, at trace level, with every error's message and cause spelled out.
    for (const text of [log.dump(), clog.dump()]) {
      expect(text).not.toContain('s3cr3t');
      expect(text).not.toContain('T0KEN');
    }
    expect(log.records.length).toBeGreaterThan(3);
  });
});

describe('swallowed errors are now observable', () => {
  it('a masked handler failure, and an onHandlerError hook that throws, are logged at warn', async () => {
    const { address, log } = await serve({
      onHandlerError: () => {
        throw new Error('the hook itself is broken');
      },
    });
    const e = await rejection(client().stub(TestService, address).fail({ message: 'x' }));
    expect(e.code).toBe(StatusCode.Unknown);
    expect(e.message).not.toContain('secret-path');
    const masked = log.find('handler failed (masked)')[0];
    expect(masked?.fields).toMatchObject({ component: 'worker', service: 'Test', method: 'Test.fail' });
    expect((masked?.fields.err as Error | undefined)?.message).toContain('secret-path');
    const hook = log.find('onHandlerError hook threw')[0];
    expect((hook?.fields.err as Error | undefined)?.message).toBe('the hook itself is broken');
  });

  it('an onAuthError hook that throws is logged at warn', async () => {
    const { address, log } = await serve({
      authenticate: () => undefined,
      onAuthError: () => {
        throw new Error('auth hook broken');
      },
    });
    await rejection(client().stub(TestService, address).hello({ name: 'x' }));
    const r = log.find('onAuthError hook threw')[0];
    expect(r?.level).toBe('warn');
    expect((r?.fields.err as Error | undefined)?.message).toBe('auth hook broken');
  });
});

describe('slow calls (slowCallMs)', () => {
  it('off by default: no slow-call record however long a call takes', async () => {
    const { address, log } = await serve();
    const clog = new CaptureLogger();
    await client({ logger: clog }).stub(TestService, address).slow({ ms: 120 });
    expect(log.find('slow call')).toEqual([]);
    expect(clog.find('slow call')).toEqual([]);
  });

  it('server and client log a call over the threshold with service, method, peer, duration and breakdown', async () => {
    const { address, log } = await serve({ slowCallMs: 50 });
    const clog = new CaptureLogger();
    const stub = client({ logger: clog, slowCallMs: 50 }).stub(TestService, address);
    await stub.hello({ name: 'fast' });
    await stub.slow({ ms: 150 });
    const s = log.find('slow call').filter((r) => r.fields.method === 'Test.slow');
    expect(s).toHaveLength(1);
    expect(s[0]!.level).toBe('warn');
    expect(s[0]!.fields).toMatchObject({ component: 'worker', service: 'Test', method: 'Test.slow', thresholdMs: 50 });
    expect(s[0]!.fields.durationMs).toBeGreaterThanOrEqual(140);
    const sb = s[0]!.fields.breakdown as { queueMs: number; handlerMs: number };
    expect(sb.handlerMs).toBeGreaterThanOrEqual(140);
    expect(sb.queueMs).toBeGreaterThanOrEqual(0);

    // The first call may be slow too on a loaded machine (it dials): only the slow method's record is checked.
    const c = clog.find('slow call').filter((r) => r.fields.method === 'slow');
    expect(c).toHaveLength(1);
    expect(c[0]!.fields).toMatchObject({ component: 'server', service: 'Test', method: 'slow', peer: address, code: 0 });
    expect(c[0]!.fields.durationMs).toBeGreaterThanOrEqual(140);
    const cb = c[0]!.fields.breakdown as Record<string, number>;
    expect(cb.serverHandleMs).toBeGreaterThanOrEqual(140);
    expect(Object.keys(cb).sort()).toEqual([
      'clientSerializeMs',
      'clientWakeMs',
      'serverHandleMs',
      'serverQueueMs',
      'serverSerializeMs',
      'toClientMs',
      'toServerMs',
    ]);
  });

  it('a negative slowCallMs is refused at construction', () => {
    expect(() => new Client({ slowCallMs: -1 })).toThrow(/slowCallMs/);
    expect(() => new Server({ groups: [groupConfig('tcp')], slowCallMs: -5 })).toThrow(/slowCallMs/);
  });
});

describe('silent by default, FFNET_DEBUG turns it on', () => {
  // A server and a client in a child process, one refused admin call and a closed connection.
  const script = `import { Client, CoreService, Server } from '@ffnet/server';
const server = new Server({ groups: [{ networkType: 'tcp', listener: { host: '127.0.0.1', port: 0 } }] });
await server.start();
const client = new Client({ timeoutMs: 5000 });
await client.stub(CoreService, server.groups[0].addresses[0]).stats({}).catch(() => {});
await client.stop();
await server.stop();`;
  const cwd = fileURLToPath(new URL('..', import.meta.url));
  function run(env: Record<string, string>) {
    const base = { ...process.env };
    delete base.FFNET_DEBUG;
    delete base.NODE_DEBUG;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd, env: { ...base, ...env }, encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    return r;
  }

  it('writes nothing to stderr without FFNET_DEBUG', () => {
    expect(run({}).stderr).toBe('');
  });

  it('FFNET_DEBUG=server,transport writes JSON lines: the admin refusal and the connections', () => {
    const recs = run({ FFNET_DEBUG: 'server,transport' })
      .stderr.trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(recs.find((r) => r.msg === 'admin call refused')).toMatchObject({ level: 'warn', component: 'server', method: 'Core.stats' });
    expect(recs.filter((r) => r.msg === 'connection opened').length).toBeGreaterThanOrEqual(2);
    expect(recs.some((r) => r.msg === 'connection closed')).toBe(true);
    // Not selected: nothing from the worker.
    expect(recs.every((r) => r.component === 'server' || r.component === 'transport')).toBe(true);
  });
});
