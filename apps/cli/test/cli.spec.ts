import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ffnet-cli-'));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function ffnet(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

interface Serving {
  child: ChildProcessWithoutNullStreams;
  addresses: string[];
  out: () => string;
  exited: Promise<number | null>;
}

/** Starts `ffnet serve` and waits for its `ready` line; the printed `listening` lines give the addresses. */
function serve(...args: string[]): Promise<Serving> {
  const child = spawn(process.execPath, [MAIN, 'serve', ...args]);
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (c: Buffer) => {
      err += c;
    });
    child.stdout.on('data', (c: Buffer) => {
      out += c;
      if (/^ready$/m.test(out)) {
        const addresses = [...out.matchAll(/^listening (\S+)/gm)].map((m) => m[1]!);
        resolve({ child, addresses, out: () => out, exited });
      }
    });
    void exited.then((code) => reject(new Error(`ffnet serve exited with ${code} before it was ready: ${out}${err}`)));
  });
}

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build the CLI first (npx tsc -b)`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ffnet against a running server', () => {
  let server: Serving;
  let tcp: string;
  let unix: string;
  const sock = join(dir, 'serve.sock');

  beforeAll(async () => {
    server = await serve('--tcp', '127.0.0.1:0', '--unix', sock);
    tcp = server.addresses.find((a) => a.startsWith('tcp://'))!;
    unix = server.addresses.find((a) => a.startsWith('unix://'))!;
  });
  afterAll(async () => {
    if (server.child.exitCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('serve prints the bound addresses: a real port for tcp, the given path for unix', () => {
    expect(server.addresses).toHaveLength(2);
    expect(tcp).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(Number(tcp.split(':').pop())).toBeGreaterThan(0);
    expect(unix).toBe(`unix://${sock}`);
  });

  it.each([
    ['tcp', () => tcp],
    ['unix', () => unix],
  ])('call Echo.echo over %s prints the response', async (_name, addr) => {
    const r = await ffnet('call', addr(), 'Echo.echo', '{"str":"hello ffnet"}');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ str: 'hello ffnet' });
  });

  it('call accepts host:port and /path shorthands and raw ids', async () => {
    const viaHostPort = await ffnet('call', tcp.slice('tcp://'.length), 'Core.echo', '{"str":"a"}');
    expect(JSON.parse(viaHostPort.stdout)).toEqual({ str: 'a' });
    const viaPath = await ffnet('call', sock, '10000.1', '{"str":"b"}');
    expect(JSON.parse(viaPath.stdout)).toEqual({ str: 'b' });
  });

  it('call Core.getConfig returns the server config', async () => {
    const r = await ffnet('call', tcp, 'Core.getConfig', '{"configKey":"groups.1.listener.path"}');
    expect(r.code).toBe(0);
    expect(JSON.parse(JSON.parse(r.stdout).config)).toBe(sock);
  });

  it('a server error prints the code name, message and peer, and exits 1', async () => {
    const r = await ffnet('call', unix, '10000.77', '{}');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^ffnet call: InvalidMethodID \(2009\): .*method 77.*/);
    expect(r.stderr).toContain(`peer ${unix}`);
  });

  it('a bad config key is the server handler error, passed through', async () => {
    const r = await ffnet('call', tcp, 'Core.getConfig', '{"configKey":"no.such.key"}');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/InvalidArg \(3\): .*no config key no\.such\.key/);
  });

  it('an unknown method name or bad JSON is a usage error (exit 2) naming the known methods', async () => {
    const r = await ffnet('call', tcp, 'Echo.nope', '{}');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown method');
    expect(r.stderr).toContain('Echo.echo');
    expect(r.stderr).toContain('Core.getConfig');
    const j = await ffnet('call', tcp, 'Echo.echo', '{str:');
    expect(j.code).toBe(2);
    expect(j.stderr).toContain('not valid JSON');
    const a = await ffnet('call', 'tcp://127.0.0.1', 'Echo.echo', '{}');
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('missing :port');
  });

  it('ping --count 200 reports percentiles and calls/s, with progress on stderr', async () => {
    const r = await ffnet('ping', tcp, '--count', '200');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${tcp}: 200 calls in `);
    expect(r.stdout).toContain(', 0 errors');
    const lat = /latency p50 ([\d.]+) (m?s)\s+p90 ([\d.]+) (m?s)\s+p99 ([\d.]+) (m?s)\s+max ([\d.]+) (m?s)/.exec(r.stdout);
    expect(lat, r.stdout).not.toBeNull();
    const ms = [1, 3, 5, 7].map((i) => Number(lat![i]) * (lat![i + 1] === 's' ? 1000 : 1));
    expect(ms[0]).toBeGreaterThan(0);
    expect([...ms].sort((a, b) => a - b)).toEqual(ms);
    expect(Number(/throughput (\d+) calls\/s/.exec(r.stdout)?.[1])).toBeGreaterThan(0);
    expect(r.stderr).toContain('progress 200/200 calls, 0 errors');
  });

  it('ping --json over unix with concurrency', async () => {
    const r = await ffnet('ping', unix, '--count', '200', '--concurrency', '8', '--size', '1000', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, number | string>;
    expect(j).toMatchObject({ address: unix, concurrency: 8, size: 1000, calls: 200, errors: 0 });
    expect(j.p50Ms as number).toBeGreaterThan(0);
    expect(j.p50Ms as number).toBeLessThanOrEqual(j.p90Ms as number);
    expect(j.p90Ms as number).toBeLessThanOrEqual(j.p99Ms as number);
    expect(j.p99Ms as number).toBeLessThanOrEqual(j.maxMs as number);
    expect(j.callsPerSec as number).toBeGreaterThan(0);
  });

  it('Core.stats counts the calls made so far', async () => {
    const r = await ffnet('call', tcp, 'Core.stats');
    const stats = JSON.parse(r.stdout) as { methods: Record<string, { calls: number }>; uptimeMs: number };
    expect(stats.uptimeMs).toBeGreaterThan(0);
    expect(stats.methods['Echo.echo']?.calls).toBeGreaterThanOrEqual(402);
  });

  it('serve stops cleanly on SIGTERM and removes its unix socket', async () => {
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.out()).toMatch(/stopping \(SIGTERM\)\nstopped\n$/);
    expect(existsSync(sock)).toBe(false);
  });
});

describe('ffnet serve', () => {
  it('reads groups from --config, and Core.shutdown stops it with --allow-shutdown', async () => {
    const sock = join(dir, 'config.sock');
    const file = join(dir, 'serve.json');
    writeFileSync(file, JSON.stringify({ groups: [{ networkType: 'unix', listener: { path: sock, mode: 0o660 } }] }));
    const s = await serve('--config', file, '--allow-shutdown');
    expect(s.addresses).toEqual([`unix://${sock}`]);
    const r = await ffnet('call', sock, 'Core.shutdown', '{}');
    expect(r.code).toBe(0);
    expect(await s.exited).toBe(0);
    expect(s.out()).toContain('stopping (Core.shutdown)');
    expect(existsSync(sock)).toBe(false);
  });

  it('refuses Core.shutdown without --allow-shutdown and keeps serving', async () => {
    const s = await serve('--tcp', '127.0.0.1:0');
    try {
      const r = await ffnet('call', s.addresses[0]!, 'Core.shutdown', '{}');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/PermissionDenied|2102/);
      expect(r.stderr).toContain('Core.shutdown is disabled on this server');
      const echo = await ffnet('call', s.addresses[0]!, 'Echo.echo', '{"str":"still up"}');
      expect(echo.code).toBe(0);
    } finally {
      s.child.kill('SIGINT');
      await s.exited;
    }
  });

  it('stops on SIGINT', async () => {
    const s = await serve('--tcp', '127.0.0.1:0');
    s.child.kill('SIGINT');
    expect(await s.exited).toBe(0);
    expect(s.out()).toContain('stopping (SIGINT)');
  });

  it('a taken port fails with ListenFailed and exit 1', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await ffnet('serve', '--tcp', `127.0.0.1:${port}`);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^ffnet serve: ListenFailed \(2011\): .*EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });

  it('rdma groups are accepted by the flags and refused with the reason where RDMA is unusable (this host)', async () => {
    const r = await ffnet('serve', '--rdma', '127.0.0.1:0');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/IBDeviceNotInitialized \(2021\): .*rdma.*(no-library|no-kernel-support|no-devices)/);
  });
});

describe('ffnet', () => {
  it('a call to nothing fails with an error code and the peer', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    await new Promise((r) => blocker.close(r));
    const r = await ffnet('call', `127.0.0.1:${port}`, 'Echo.echo', '{"str":"x"}', '--timeout', '2000');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ffnet call: [A-Za-z]+ \(\d+\): /);
    expect(r.stderr).toContain(`tcp://127.0.0.1:${port}`);
    // Wrapped errors embed their cause's reason, so the peer is named once.
    expect(r.stderr.match(/\(peer /g)).toHaveLength(1);
  });

  it('devices says why there is no RDMA device here, and exits 1', async () => {
    // This host has no verbs device (the listing itself is tested on rxe0 in the VM: test/rdma/devices.spec.ts).
    const r = await ffnet('devices');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^no RDMA devices \((no-library|no-kernel-support|no-devices)\): \S/);
    const j = await ffnet('devices', '--json');
    expect(j.code).toBe(1);
    const report = JSON.parse(j.stdout) as { availability: { available: boolean; reason: string }; devices: unknown[] };
    expect(report.availability.available).toBe(false);
    expect(report.devices).toEqual([]);
    expect((await ffnet('devices', '--bogus')).code).toBe(2);
  });

  it('lists commands, and rejects unknown ones and bad flags with exit 2', async () => {
    const help = await ffnet('--help');
    expect(help.code).toBe(0);
    for (const c of ['serve', 'call', 'ping', 'devices']) expect(help.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    const unknown = await ffnet('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    const flag = await ffnet('ping', '127.0.0.1:1', '--bogus');
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('--bogus');
    expect(flag.stderr).toContain('usage: ffnet ping');
  });
});
