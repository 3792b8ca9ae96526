// `ffnet call --envelope 3fs` against the 3FS serde kit's own peer (3FS's serialize/deserialize and MessagePacket),
// spawned as a child and killed by pid.
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SerdeConformance } from '@ffnet/3fs';
import { NotImplementedError } from '@ffnet/serde';
import { implement, Server } from '@ffnet/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kitPaths } from '../../../packages/serde/test/fixtures/kit.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

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

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts on 127.0.0.1:port, polling (the peer prints nothing when it is ready). */
async function accepting(port: number, child: ChildProcessWithoutNullStreams, stderr: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`peer serve exited with ${child.exitCode}: ${stderr()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect({ host: '127.0.0.1', port }, () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`peer serve did not accept on port ${port} within 10 s: ${stderr()}`);
}

describe('ffnet call --envelope 3fs against the kit peer (peer serve)', () => {
  let peer: ChildProcessWithoutNullStreams;
  let addr: string;
  let peerErr = '';

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build the CLI first (npx tsc -b)`);
    const port = await freePort();
    peer = spawn(kitPaths.peer, ['serve', '--port', String(port)]);
    peer.stderr.on('data', (c: Buffer) => {
      peerErr += c;
    });
    await accepting(port, peer, () => peerErr);
    addr = `tcp://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    if (peer !== undefined && peer.exitCode === null && peer.pid !== undefined) {
      const exited = new Promise((r) => peer.once('exit', r));
      process.kill(peer.pid, 'SIGTERM');
      await exited;
    }
  });

  it('Core.echo: the README example prints the echoed struct', async () => {
    const r = await ffnet('call', '--envelope', '3fs', addr, 'Core.echo', '{"str":"hi"}');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ str: 'hi' });
  });

  it("serde's Echo.echo (service 10000) and raw ids of a known method", async () => {
    const byName = await ffnet('call', '--envelope', '3fs', addr, 'Echo.echo', '{"str":"über ✓"}');
    expect(byName.code).toBe(0);
    expect(JSON.parse(byName.stdout)).toEqual({ str: 'über ✓' });
    const byIds = await ffnet('call', '--envelope', '3fs', addr, '10001.1', '{"str":"ids"}');
    expect(byIds.code).toBe(0);
    expect(JSON.parse(byIds.stdout)).toEqual({ str: 'ids' });
  });

  it('conformance calls: bytes and fill print their data in the readable form', async () => {
    const bytes = await ffnet('call', '--envelope', '3fs', addr, 'SerdeConformance.bytes', '{"data":"hello"}');
    expect(bytes.stderr).toBe('');
    expect(JSON.parse(bytes.stdout)).toEqual({ data: 'hello', length: 5 });
    // 250..254 is not UTF-8, so the readable form gives the bytes as {$hex}.
    const fill = await ffnet('call', '--envelope', '3fs', addr, 'SerdeConformance.fill', '{"size":5,"seed":250}');
    expect(fill.code).toBe(0);
    expect(JSON.parse(fill.stdout)).toEqual({ data: { $hex: 'fafbfcfdfe' } });
  });

  it("a 3FS error answer exits 1 with the peer's code and message", async () => {
    const r = await ffnet('call', '--envelope', '3fs', addr, 'SerdeConformance.fail', '{"code":7003,"message":"boom"}');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/7003/);
    expect(r.stderr).toContain('boom');
  });

  it('a Core method the peer does not serve is answered kInvalidMethodID (2009)', async () => {
    const r = await ffnet('call', '--envelope', '3fs', addr, 'Core.getConfig', '{"configKey":""}');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/2009/);
  });

  it("fields left out take their defaults: conformance echo of a mostly default Everything, through 3FS's codec", async () => {
    const r = await ffnet('call', '--envelope', '3fs', addr, 'SerdeConformance.echo', '{"u32":7,"u64":"18446744073709551615","str":"x","nested":{"s":"in"}}');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out.u32).toBe(7);
    expect(out.u64).toBe('18446744073709551615');
    expect(out.str).toBe('x');
    // A nested struct given in part keeps its other fields' defaults.
    expect(out.nested).toEqual({ k: 0, s: 'in' });
    expect(out.i64).toBe('0');
    expect(out.vecStr).toEqual([]);
    expect(out.optEmpty).toBeNull();
    expect(out.var).toEqual({ tag: 'int', value: 0 });
  });

  it('a request that does not fit the schema is refused before sending, naming the field (exit 2)', async () => {
    // The complaint: {"wrong":1} used to print {} and exit 0.
    const wrong = await ffnet('call', '--envelope', '3fs', addr, 'Core.echo', '{"wrong":1}');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/InvalidArg \(3\)/);
    expect(wrong.stderr).toContain('wrong');
    expect(wrong.stdout).toBe('');
    const wrongType = await ffnet('call', '--envelope', '3fs', addr, 'Core.echo', '{"str":5}');
    expect(wrongType.code).toBe(2);
    expect(wrongType.stderr).toMatch(/InvalidArg \(3\)/);
    expect(wrongType.stderr).toMatch(/str/);
    const tooWide = await ffnet('call', '--envelope', '3fs', addr, 'SerdeConformance.fill', '{"size":5,"seed":300}');
    expect(tooWide.code).toBe(2);
    expect(tooWide.stderr).toMatch(/seed/);
    expect(tooWide.stdout).toBe('');
  });

  it('names only what it knows: an unknown 3FS method, and a bad --envelope, are usage errors', async () => {
    const unknown = await ffnet('call', '--envelope', '3fs', addr, 'Core.nope', '{}');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown method 'Core.nope'");
    expect(unknown.stderr).toContain('Storage.batchRead');
    const bad = await ffnet('call', '--envelope', 'grpc', addr, 'Core.echo', '{}');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--envelope must be ffnet or 3fs');
  });
});

describe('ffnet call (ffnet envelope) of a service whose definition has schemas', () => {
  let server: Server;
  let addr: string;
  const seen: unknown[] = [];

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build the CLI first (npx tsc -b)`);
    // The kit's conformance service, served by ffnet in msgpack: the same definitions, another envelope.
    const no = () => {
      throw new NotImplementedError('not in this test');
    };
    server = new Server({ groups: [{ networkType: 'tcp', listener: { host: '127.0.0.1', port: 0 } }] });
    server.addService(
      implement(SerdeConformance, {
        echo: no,
        fail: no,
        fill: no,
        bytes: (_ctx, req) => {
          seen.push(req);
          return { data: req.data, length: req.data.length };
        },
      }),
    );
    await server.start();
    addr = server.addresses[0]!;
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('reads the request with its schema and prints the response in the readable form', async () => {
    const r = await ffnet('call', addr, 'SerdeConformance.bytes', '{"data":"hi"}');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ data: 'hi', length: 2 });
  });

  it('{"wrong":1} is refused naming the field, and nothing reaches the server', async () => {
    const before = seen.length;
    const r = await ffnet('call', addr, 'SerdeConformance.bytes', '{"wrong":1}');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/InvalidArg \(3\): the request does not fit SerdeConformance\.bytes: value\.wrong/);
    expect(seen.length).toBe(before);
  });
});

describe("ffnet call Echo.echo against a plain ffnet server (the issue's complaint)", () => {
  it('{"wrong":1} and {"str":5} are refused naming the field and exit 2; a fitting request answers', async () => {
    // The built-in Echo carries 3FS's schema: before, {"wrong":1} printed {} and exited 0.
    const server = new Server({ groups: [{ networkType: 'tcp', listener: { host: '127.0.0.1', port: 0 } }] });
    await server.start();
    try {
      const addr = server.addresses[0]!;
      const wrong = await ffnet('call', addr, 'Echo.echo', '{"wrong":1}');
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toMatch(/InvalidArg \(3\): the request does not fit Echo\.echo: value\.wrong/);
      expect(wrong.stdout).toBe('');
      const mistyped = await ffnet('call', addr, 'Echo.echo', '{"str":5}');
      expect(mistyped.code).toBe(2);
      expect(mistyped.stderr).toMatch(/value\.str: expected string/);
      const ok = await ffnet('call', addr, 'Echo.echo', '{"str":"hi"}');
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout)).toEqual({ str: 'hi' });
      expect(server.stats().methods['Echo.echo']!.calls).toBe(1);
    } finally {
      await server.stop();
    }
  });
});
