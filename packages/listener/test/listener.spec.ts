import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FfnetError, StatusCode } from '@ffnet/serde';
import { type Backend, type BackendSocket, type ConnectionAuthenticator, type ListenOptions, tcp } from '@ffnet/transport';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type BoundAddress, Listener, nodeSupportsReusePort } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'ffnet-listener-'));
const open: Listener[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.stop()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function track(l: Listener): Listener {
  open.push(l);
  return l;
}

function dial(address: string): Promise<Socket> {
  const m = /^(tcp|unix):\/\/(.*)$/.exec(address)!;
  const target = m[1] === 'unix' ? { path: m[2]! } : { host: m[2]!.replace(/:\d+$/, ''), port: Number(/:(\d+)$/.exec(m[2]!)![1]) };
  return new Promise((resolve, reject) => {
    const s = connect(target, () => resolve(s));
    s.once('error', reject);
  });
}

/** Accepted sockets, awaitable one at a time. */
class Inbox {
  readonly got: { socket: BackendSocket; on: BoundAddress }[] = [];
  #waiters: (() => void)[] = [];
  readonly onSocket = (socket: BackendSocket, on: BoundAddress): void => {
    this.got.push({ socket, on });
    for (const w of this.#waiters.splice(0)) w();
  };
  async next(): Promise<{ socket: BackendSocket; on: BoundAddress }> {
    while (this.got.length === 0) await new Promise<void>((r) => this.#waiters.push(r));
    return this.got.shift()!;
  }
}

async function expectCode(p: Promise<unknown>, code: number, text?: string | RegExp): Promise<FfnetError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(FfnetError.is(e), `expected an FfnetError, got ${String(e)}`).toBe(true);
  const f = e as FfnetError;
  expect(f.code).toBe(code);
  if (text) expect(f.message).toMatch(text);
  return f;
}

function portOf(address: string): number {
  return Number(/:(\d+)$/.exec(address)![1]);
}

/** A socket file left by a SIGKILLed process (nobody accepts on it). */
async function staleSocket(p: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(p)}, () => console.log('up'))`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

describe('tcp', () => {
  it('port 0 is read back, and accepted sockets carry data once handlers are set', async () => {
    const inbox = new Inbox();
    const l = track(new Listener({ host: '127.0.0.1' }));
    await l.start(inbox.onSocket);
    expect(l.addresses).toHaveLength(1);
    const address = l.addresses[0]!;
    expect(address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(portOf(address)).toBeGreaterThan(0);
    expect(l.bound[0]).toEqual({ address, kind: 'local', interface: 'lo' });

    const client = await dial(address);
    const { socket, on } = await inbox.next();
    expect(on.address).toBe(address);
    const chunks: Buffer[] = [];
    const closed = new Promise<void>((resolve) => socket.setHandlers({ data: (c) => chunks.push(c), drain() {}, written() {}, close: () => resolve() }));
    client.end('hello');
    await closed;
    expect(Buffer.concat(chunks).toString()).toBe('hello');
  }, 5000);

  it('stop() closes the listening socket but leaves accepted connections to their owner', async () => {
    const inbox = new Inbox();
    const l = track(new Listener({ host: '127.0.0.1' }));
    await l.start(inbox.onSocket);
    const address = l.addresses[0]!;
    const client = await dial(address);
    const { socket } = await inbox.next();
    await l.stop();
    await expect(dial(address)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    const got = new Promise<string>((resolve) => client.once('data', (c: Buffer) => resolve(c.toString())));
    socket.write([Buffer.from('still here')]);
    expect(await got).toBe('still here');
    socket.destroy();
    client.destroy();
  });

  it('the interface scan listens on loopback as LOCAL', async () => {
    const l = track(new Listener({ filter: ['lo'] }));
    await l.setup();
    expect(l.bound.map((b) => [b.kind, b.interface, b.address.replace(/:\d+$/, '')])).toEqual([['local', 'lo', 'tcp://127.0.0.1']]);
  });

  it('a second listener on the same port fails setup with ListenFailed and binds nothing', async () => {
    const first = track(new Listener({ host: '127.0.0.1' }));
    await first.setup();
    const port = portOf(first.addresses[0]!);
    const second = track(new Listener({ host: '127.0.0.1', port }));
    await expectCode(second.setup(), StatusCode.ListenFailed, /EADDRINUSE/);
    expect(second.addresses).toEqual([]);
    expect(second.state).toBe('idle');
    // The first one is unaffected.
    const inbox = new Inbox();
    await first.start(inbox.onSocket);
    const c = await dial(first.addresses[0]!);
    await inbox.next();
    c.destroy();
  });

  it('a partial failure closes what was already bound', async () => {
    const blocker = track(new Listener({ host: '127.0.0.1' }));
    await blocker.setup();
    const port = portOf(blocker.addresses[0]!);
    // The scan binds every matching interface on the same fixed port; loopback is taken, so the whole setup fails.
    const l = track(new Listener({ port }));
    await expectCode(l.setup(), StatusCode.ListenFailed);
    expect(l.addresses).toEqual([]);
    // Whatever else the scan had bound on that port is free again.
    const again = track(new Listener({ port, interfaceKinds: ['tcp', 'ipoib'] }));
    const setup = await again.setup().then(
      () => 'bound',
      (e: FfnetError) => e.message,
    );
    expect(setup === 'bound' || /no up IPv4 interface/.test(setup)).toBe(true);
  });

  it('start/stop 100 times on one port, accepting a connection each time', async () => {
    const l = track(new Listener({ host: '127.0.0.1' }));
    await l.setup();
    const port = portOf(l.addresses[0]!);
    await l.stop();
    const fixed = track(new Listener({ host: '127.0.0.1', port }));
    for (let i = 0; i < 100; i++) {
      const inbox = new Inbox();
      await fixed.start(inbox.onSocket);
      await fixed.start(inbox.onSocket); // idempotent
      expect(fixed.addresses).toEqual([`tcp://127.0.0.1:${port}`]);
      const c = await dial(fixed.addresses[0]!);
      const { socket } = await inbox.next();
      socket.destroy();
      c.destroy();
      await fixed.stop();
      await fixed.stop(); // idempotent
      expect(fixed.state).toBe('idle');
      expect(fixed.addresses).toEqual([]);
    }
    await expect(dial(`tcp://127.0.0.1:${port}`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('connections that arrive between setup() and start() are handed over at start()', async () => {
    const l = track(new Listener({ host: '127.0.0.1' }));
    await l.setup();
    const clients = await Promise.all([dial(l.addresses[0]!), dial(l.addresses[0]!)]);
    // Give the accept callbacks a turn to run before start().
    await new Promise((r) => setTimeout(r, 20));
    const inbox = new Inbox();
    await l.start(inbox.onSocket);
    expect(inbox.got).toHaveLength(2);
    for (const g of inbox.got) g.socket.destroy();
    for (const c of clients) c.destroy();
  });

  it('concurrent setup() calls bind once', async () => {
    const l = track(new Listener({ host: '127.0.0.1' }));
    await Promise.all([l.setup(), l.setup(), l.setup()]);
    expect(l.addresses).toHaveLength(1);
  });

  it('an aborted signal rejects setup and binds nothing', async () => {
    const l = track(new Listener({ host: '127.0.0.1' }));
    const ac = new AbortController();
    ac.abort(new Error('caller gave up'));
    await expect(l.setup({ signal: ac.signal })).rejects.toThrow('caller gave up');
    expect(l.state).toBe('idle');
  });

  it(`reusePort: ${nodeSupportsReusePort() ? 'two listeners share a port' : 'this Node has no reusePort, so a clear InvalidConfig error'}`, async () => {
    if (nodeSupportsReusePort()) {
      const a = track(new Listener({ host: '127.0.0.1', reusePort: true }));
      await a.setup();
      const b = track(new Listener({ host: '127.0.0.1', port: portOf(a.addresses[0]!), reusePort: true }));
      await b.setup();
      expect(b.addresses).toEqual(a.addresses);
    } else {
      expect(() => new Listener({ host: '127.0.0.1', reusePort: true })).toThrow(
        expect.objectContaining({ code: StatusCode.InvalidConfig, message: expect.stringContaining(`Node ${process.versions.node}`) }),
      );
    }
  });

  it('reports the Node versions that support reusePort', () => {
    expect(nodeSupportsReusePort('20.20.2')).toBe(false);
    expect(nodeSupportsReusePort('22.11.0')).toBe(false);
    expect(nodeSupportsReusePort('22.12.0')).toBe(true);
    expect(nodeSupportsReusePort('23.0.0')).toBe(false);
    expect(nodeSupportsReusePort('23.1.0')).toBe(true);
    expect(nodeSupportsReusePort('24.0.0')).toBe(true);
  });

  it('rejects bad configuration with InvalidConfig', () => {
    for (const bad of [{ port: 70000 }, { port: -1 }, { backlog: 0 }, { mode: 0o10000 }, { networkType: 'udp' as 'tcp' }]) {
      expect(() => new Listener(bad)).toThrow(expect.objectContaining({ code: StatusCode.InvalidConfig }));
    }
  });

  it('an rdma listener without rdma() in its backends fails setup with NotImplemented saying what to pass', async () => {
    const l = track(new Listener({ networkType: 'rdma', host: '127.0.0.1' }));
    await expectCode(l.setup(), StatusCode.NotImplemented, /no backend for scheme 'rdma' \(backends: tcp, unix\): pass rdma\(\) from '@ffnet\/rdma'/);
    // Its own list is what it uses: one without unix cannot serve a unix listener either.
    const u = track(new Listener({ networkType: 'unix', path: join(tmpdir(), 'ffnet-no-backend.sock'), backends: [tcp()] }));
    await expectCode(u.setup(), StatusCode.NotImplemented, /no backend for scheme 'unix' \(backends: tcp\)/);
  });

  it("hands `authenticate` to the backend's listen (rdma runs it on each handshake), and nothing when unset", async () => {
    const real = tcp();
    const seen: ListenOptions[] = [];
    const recording: Backend = {
      scheme: 'tcp',
      available: () => real.available(),
      connect: (a, o) => real.connect(a, o),
      listen: (a, o, cb) => {
        seen.push(o);
        return real.listen(a, o, cb);
      },
    };
    const authenticate: ConnectionAuthenticator = () => ({ id: 'x' });
    await track(new Listener({ host: '127.0.0.1', backends: [recording], authenticate })).setup();
    await track(new Listener({ host: '127.0.0.1', backends: [recording] })).setup();
    expect(seen).toHaveLength(2);
    expect(seen[0]!.authenticate).toBe(authenticate);
    expect('authenticate' in seen[1]!).toBe(false);
  });

  it('no matching interface gives ListenFailed naming the filter', async () => {
    const l = track(new Listener({ filter: ['nosuchnic9'] }));
    await expectCode(l.setup(), StatusCode.ListenFailed, /filter \[nosuchnic9\]/);
  });

  it('a host that is no local address gives ListenFailed', async () => {
    const l = track(new Listener({ host: '192.0.2.254' }));
    await expectCode(l.setup(), StatusCode.ListenFailed, /EADDRNOTAVAIL/);
  });
});

describe('unix', () => {
  let n = 0;
  const path = () => join(dir, `s${n++}.sock`);

  it('binds with mode 0600 by default, accepts, and removes the file on stop', async () => {
    const p = path();
    const inbox = new Inbox();
    const l = track(new Listener({ networkType: 'unix', path: p }));
    await l.start(inbox.onSocket);
    expect(l.addresses).toEqual([`unix://${p}`]);
    expect(l.bound[0]!.kind).toBe('unix');
    const st = statSync(p);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    const c = await dial(l.addresses[0]!);
    const { socket } = await inbox.next();
    socket.destroy();
    c.destroy();
    await l.stop();
    expect(existsSync(p)).toBe(false);
  });

  it('applies a configured mode', async () => {
    const p = path();
    const l = track(new Listener({ networkType: 'unix', path: p, mode: 0o660 }));
    await l.setup();
    expect(statSync(p).mode & 0o777).toBe(0o660);
  });

  it('replaces a stale socket file left by a killed process', async () => {
    const p = path();
    await staleSocket(p);
    expect(statSync(p).isSocket()).toBe(true); // SIGKILL left the file behind
    const inbox = new Inbox();
    const l = track(new Listener({ networkType: 'unix', path: p }));
    await l.start(inbox.onSocket);
    const c = await dial(`unix://${p}`);
    const { socket } = await inbox.next();
    socket.destroy();
    c.destroy();
  });

  it('refuses a socket file another listener is still accepting on', async () => {
    const p = path();
    const inbox = new Inbox();
    const live = track(new Listener({ networkType: 'unix', path: p }));
    await live.start(inbox.onSocket);
    const thief = track(new Listener({ networkType: 'unix', path: p }));
    await expectCode(thief.setup(), StatusCode.ListenFailed, /another process is accepting/);
    // The live one still owns the path and keeps accepting.
    const c = await dial(`unix://${p}`);
    await inbox.next();
    c.destroy();
    await thief.stop();
    expect(existsSync(p)).toBe(true);
  });

  it('never replaces a path that is not a socket', async () => {
    const p = path();
    writeFileSync(p, 'precious');
    const l = track(new Listener({ networkType: 'unix', path: p }));
    await expectCode(l.setup(), StatusCode.ListenFailed, /not a socket/);
    expect(readFileSync(p, 'utf8')).toBe('precious');
  });

  it('reusePort is rejected for unix sockets', () => {
    expect(() => new Listener({ networkType: 'unix', path: path(), reusePort: true })).toThrow(expect.objectContaining({ code: StatusCode.InvalidConfig }));
  });
});

describe('unix socket paths cannot be squatted', () => {
  // Tests run as root, so they can chown files to another uid the way another user's files would look.
  const me = process.getuid!();
  const OTHER = me === 65534 ? 65533 : 65534;
  let n = 0;
  const saved = { TMPDIR: process.env.TMPDIR, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR };
  let sandbox = '';

  /** Default paths are derived from TMPDIR / XDG_RUNTIME_DIR: point them at a fresh private sandbox. */
  function useSandbox(xdg?: string): string {
    sandbox = mkdtempSync(join(dir, 'tmp-'));
    process.env.TMPDIR = sandbox;
    if (xdg === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = xdg;
    return sandbox;
  }
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('without a path: ffnet.<port>.sock in <tmpdir>/ffnet-<uid>/, a directory created 0700 and owned by us', async () => {
    const tmp = useSandbox();
    const privateDir = join(tmp, `ffnet-${me}`);
    expect(existsSync(privateDir)).toBe(false);
    const l = track(new Listener({ networkType: 'unix', port: 47001 }));
    await l.setup();
    expect(l.addresses).toEqual([`unix://${join(privateDir, 'ffnet.47001.sock')}`]);
    const st = lstatSync(privateDir);
    expect(st.isDirectory()).toBe(true);
    expect(st.uid).toBe(me);
    expect(st.mode & 0o777).toBe(0o700);
    const random = track(new Listener({ networkType: 'unix' }));
    await random.setup();
    expect(random.addresses[0]).toMatch(new RegExp(`^unix://${privateDir}/ffnet\\.\\d+\\.sock$`));
    // The directory is reused as it is by the next listener.
    await l.stop();
    await l.setup();
    expect(lstatSync(privateDir).mode & 0o777).toBe(0o700);
  });

  it('uses $XDG_RUNTIME_DIR when it is private, and falls back when others can write to it', async () => {
    const xdg = mkdtempSync(join(dir, 'xdg-'));
    useSandbox(xdg);
    const l = track(new Listener({ networkType: 'unix', port: 47002 }));
    await l.setup();
    expect(l.addresses).toEqual([`unix://${join(xdg, 'ffnet.47002.sock')}`]);
    chmodSync(xdg, 0o777);
    const tmp = useSandbox(xdg);
    const fallback = track(new Listener({ networkType: 'unix', port: 47003 }));
    await fallback.setup();
    expect(fallback.addresses).toEqual([`unix://${join(tmp, `ffnet-${me}`, 'ffnet.47003.sock')}`]);
  });

  it('refuses a pre-existing default directory that others can write to, that is not ours, or that is a symlink', async () => {
    const tmp = useSandbox();
    const privateDir = join(tmp, `ffnet-${me}`);
    mkdirSync(privateDir);
    chmodSync(privateDir, 0o777);
    await expectCode(track(new Listener({ networkType: 'unix' })).setup(), StatusCode.ListenFailed, /writable by group or other \(mode 0777\)/);
    chmodSync(privateDir, 0o1733);
    await expectCode(track(new Listener({ networkType: 'unix' })).setup(), StatusCode.ListenFailed, /writable by group or other \(mode 1733\)/);
    chmodSync(privateDir, 0o700);
    chownSync(privateDir, OTHER, OTHER);
    const e = await expectCode(track(new Listener({ networkType: 'unix' })).setup(), StatusCode.ListenFailed, `owned by uid ${OTHER}`);
    expect(e.message).toContain(privateDir);
    rmSync(privateDir, { recursive: true });
    const elsewhere = mkdtempSync(join(dir, 'target-'));
    symlinkSync(elsewhere, privateDir);
    await expectCode(track(new Listener({ networkType: 'unix' })).setup(), StatusCode.ListenFailed, `the directory ${privateDir} is a symlink`);
    // Nothing was bound through the link.
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it('refuses a path in a 0777 directory, a sticky 1777 one, or /tmp itself, unless allowSharedDirectory', async () => {
    const shared = mkdtempSync(join(dir, 'shared-'));
    chmodSync(shared, 0o777);
    const p = join(shared, `s${n++}.sock`);
    const e = await expectCode(
      track(new Listener({ networkType: 'unix', path: p })).setup(),
      StatusCode.ListenFailed,
      /writable by group or other \(mode 0777\)/,
    );
    expect(e.message).toContain(`unix://${p}`);
    expect(existsSync(p)).toBe(false);
    chmodSync(shared, 0o1777);
    await expectCode(track(new Listener({ networkType: 'unix', path: p })).setup(), StatusCode.ListenFailed, /mode 1777/);
    const inTmp = join('/tmp', `ffnet-listener-test-${process.pid}-${n++}.sock`);
    await expectCode(track(new Listener({ networkType: 'unix', path: inTmp })).setup(), StatusCode.ListenFailed, /\/tmp/);
    expect(existsSync(inTmp)).toBe(false);

    const allowed = track(new Listener({ networkType: 'unix', path: p, allowSharedDirectory: true }));
    await allowed.setup();
    expect(statSync(p).isSocket()).toBe(true);
    const allowedTmp = track(new Listener({ networkType: 'unix', path: inTmp, allowSharedDirectory: true }));
    await allowedTmp.setup();
    expect(statSync(inTmp).isSocket()).toBe(true);
    await allowedTmp.stop();
    expect(existsSync(inTmp)).toBe(false);
  });

  it('refuses a directory owned by another (non-root) user even when only they can write to it', async () => {
    const theirs = mkdtempSync(join(dir, 'theirs-'));
    chmodSync(theirs, 0o755);
    chownSync(theirs, OTHER, OTHER);
    await expectCode(
      track(new Listener({ networkType: 'unix', path: join(theirs, 'x.sock') })).setup(),
      StatusCode.ListenFailed,
      `the directory ${theirs} is owned by uid ${OTHER}`,
    );
  });

  it('never removes a stale socket file owned by another user, and never follows a symlink', async () => {
    const p = join(dir, `stale${n++}.sock`);
    await staleSocket(p);
    chownSync(p, OTHER, OTHER);
    await expectCode(track(new Listener({ networkType: 'unix', path: p })).setup(), StatusCode.ListenFailed, `owned by uid ${OTHER}`);
    expect(lstatSync(p).isSocket()).toBe(true);
    // Ours again: the same stale file is now replaced.
    chownSync(p, me, me);
    await track(new Listener({ networkType: 'unix', path: p })).setup();

    const target = join(dir, `target${n++}.sock`);
    await staleSocket(target);
    const link = join(dir, `link${n++}.sock`);
    symlinkSync(target, link);
    await expectCode(track(new Listener({ networkType: 'unix', path: link })).setup(), StatusCode.ListenFailed, /not a socket/);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(lstatSync(target).isSocket()).toBe(true);
  });
});
