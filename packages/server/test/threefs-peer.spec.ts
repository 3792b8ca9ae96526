// Live calls with the kit's 3FS peer (../shared/3fs-serde/peer, 3FS's own serde and MessagePacket) over tcp, both
// ways: an ffnet Server with envelope '3fs' passes every check of `peer call`, and an ffnet Client with envelope
// '3fs' gets 3FS's answers from `peer serve`. The conformance service's schemas come from the kit's services.json.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { decode3fs, defineService, encode3fs, errorFromCode, FfnetError, fromJson, fromNeutral, InvalidArgError, method, type Schema } from '@ffnet/serde';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kitPaths, loadServices, loadVectors } from '../../serde/test/fixtures/kit.js';
import { Client, CoreService3fs, EchoService3fs, implement, Server } from '../src/index.js';

const MiB = 1024 * 1024;
/** The conformance service's limit on bytes and fill (kit README, "The peer"). */
const LIMIT = 16 * MiB;

/** A port nobody listens on now (the peer binds it next). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * SerdeConformance (12345) from services.json. Its strings are bytes (`bin` in Everything is not UTF-8, and bytes
 * carries arbitrary data), so every neutral "string" is s.bytes here.
 */
function conformanceMethods() {
  const { services, types } = loadServices();
  const svc = services.find((x) => x.name === 'SerdeConformance');
  if (svc === undefined) throw new Error('services.json has no SerdeConformance service');
  const one = (name: string) => {
    const m = svc.methods.find((x) => x.name === name);
    if (m === undefined) throw new Error(`services.json: SerdeConformance has no method ${name}`);
    return method(m.id, {
      request: fromNeutral(m.request, types, { strings: 'bytes' }),
      response: fromNeutral(m.response, types, { strings: 'bytes' }),
    });
  };
  return { id: svc.id, methods: { echo: one('echo'), fail: one('fail'), bytes: one('bytes'), fill: one('fill') } };
}

const conformance = conformanceMethods();
const Conformance = defineService({ name: 'SerdeConformance', id: conformance.id, methods: conformance.methods });
type Bytes = Uint8Array;

function schemaOf(name: string): Schema {
  const info = (Conformance.methods as unknown as Record<string, { request: Schema }>)[name];
  return info!.request;
}

const text = (b: Bytes) => Buffer.from(b).toString('utf8');

const conformanceService = implement(Conformance, {
  echo: (_ctx, req) => req,
  fail: (_ctx, req) => {
    const r = req as { code: number; message: Bytes };
    throw errorFromCode(r.code, text(r.message));
  },
  bytes: (_ctx, req) => {
    const { data } = req as { data: Bytes };
    if (data.length > LIMIT) throw new InvalidArgError(`bytes: ${data.length} bytes is more than ${LIMIT}`);
    return { data, length: data.length };
  },
  fill: (_ctx, req) => {
    const { size, seed } = req as { size: number; seed: number };
    if (size > LIMIT) throw new InvalidArgError(`fill: ${size} bytes is more than ${LIMIT}`);
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = (seed + i) & 0xff;
    return { data };
  },
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(kitPaths.peer, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`peer ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('3fs envelope: an ffnet Server passes `peer call`', () => {
  it('every check PASSes and the peer exits 0', async () => {
    const server = new Server({ groups: [{ envelope: '3fs', listener: { host: '127.0.0.1', port: 0 } }] });
    server.addService(conformanceService);
    await server.start();
    try {
      const port = Number(new URL(server.addresses[0]!.replace('tcp:', 'http:')).port);
      const r = await run(['call', '--port', String(port)], 120_000);
      const lines = r.stdout.split('\n').filter((l) => l.length > 0);
      const failed = lines.filter((l) => !l.startsWith('PASS') && l !== 'ALL PASS');
      expect(failed, `${r.stdout}\n${r.stderr}`).toEqual([]);
      // The checks the kit README lists, each seen passing (not merely absent from the failures).
      for (const check of [
        'serde.echo',
        'core.echo',
        'conformance.echo(Everything sample 0)',
        'conformance.fail',
        'kInvalidMethodID',
        'kVerifyRequestFailed',
        'conformance.bytes(16 MiB + 1) -> kInvalidArg',
        'conformance.fill',
        'zstd-compressed',
        'pipelined',
        'bad CRC',
        'bad magic',
        '512 MiB',
      ]) {
        expect(
          lines.some((l) => l.startsWith('PASS') && l.includes(check)),
          check,
        ).toBe(true);
      }
      expect(lines.length).toBeGreaterThanOrEqual(27);
      expect(r.code).toBe(0);
    } finally {
      await server.stop();
    }
  }, 180_000);
});

describe('3fs envelope: an ffnet Client against `peer serve`', () => {
  let peer: ChildProcess | undefined;
  let address = '';
  const client = new Client({ envelope: '3fs', timeoutMs: 30_000 });

  beforeAll(async () => {
    const port = await freePort();
    const child = spawn(kitPaths.peer, ['serve', '--port', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    peer = child;
    await new Promise<void>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`peer serve did not start: ${err}`)), 20_000);
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('serving')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`peer serve exited with ${code}: ${err}`));
      });
    });
    address = `tcp://127.0.0.1:${port}`;
  }, 30_000);

  afterAll(async () => {
    await client.stop();
    if (peer?.pid !== undefined && peer.exitCode === null) {
      const exited = new Promise((r) => peer!.once('exit', r));
      process.kill(peer.pid, 'SIGTERM');
      await exited;
    }
  });

  it('serde echo (10000) and Core echo (10001)', async () => {
    expect(await client.stub(EchoService3fs, address).echo({ str: 'héllo serde' })).toEqual({ str: 'héllo serde' });
    expect(await client.stub(CoreService3fs, address).echo({ str: 'hello core' })).toEqual({ str: 'hello core' });
  });

  it('conformance echo of Everything: the kit sample, a changed copy and the defaults come back byte for byte', async () => {
    const everything = schemaOf('echo');
    const vector = loadVectors().find((v) => v.name === 'packet.req.conformance.echo')!;
    const payload = (vector.value as { payload: unknown }).payload;
    const sample = fromJson(everything, payload) as Record<string, unknown>;
    const changed = { ...sample, u32: 12345, i8: -5, f64: 2.5 };
    const defaults = decode3fs(everything, Uint8Array.of(0));
    const stub = client.stub(Conformance, address);
    for (const value of [sample, changed, defaults]) {
      const back = await stub.echo(value);
      expect(Buffer.from(encode3fs(everything, back)).toString('hex')).toBe(Buffer.from(encode3fs(everything, value)).toString('hex'));
    }
    // The changed copy is not the sample: the comparison above can tell them apart.
    expect(Buffer.from(encode3fs(everything, changed)).equals(Buffer.from(encode3fs(everything, sample)))).toBe(false);
  });

  it('fail with and without a message gives the typed error, code and message as sent', async () => {
    const stub = client.stub(Conformance, address);
    const caught = async (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => e as FfnetError,
      );
    const withMessage = await caught(stub.fail({ code: 7007, message: Buffer.from('seven') }));
    expect(withMessage).toBeInstanceOf(FfnetError);
    expect(withMessage?.code).toBe(7007);
    expect(withMessage?.reason).toBe('seven');
    expect(withMessage?.peer).toBe(address);
    const bare = await caught(stub.fail({ code: 3, message: new Uint8Array(0) }));
    expect(bare).toBeInstanceOf(InvalidArgError);
    expect(bare?.reason).toBe('');
  });

  it('bytes of the sizes the kit lists, and 16 MiB + 1 is InvalidArg (3)', async () => {
    const stub = client.stub(Conformance, address);
    for (const n of [0, 1, 127, 128, 65536, MiB, LIMIT]) {
      const data = new Uint8Array(n);
      for (let i = 0; i < n; i += 997) data[i] = (i * 31) & 0xff;
      const rsp = (await stub.bytes({ data })) as { data: Bytes; length: number };
      expect(rsp.length).toBe(n);
      expect(Buffer.from(rsp.data).equals(Buffer.from(data))).toBe(true);
    }
    const over = await stub.bytes({ data: new Uint8Array(LIMIT + 1) }).then(
      () => undefined,
      (e: unknown) => e as FfnetError,
    );
    expect(over).toBeInstanceOf(InvalidArgError);
    expect(over?.code).toBe(3);
  }, 60_000);

  it('fill of 100000 bytes', async () => {
    const rsp = (await client.stub(Conformance, address).fill({ size: 100_000, seed: 7 })) as { data: Bytes };
    expect(rsp.data.length).toBe(100_000);
    for (let i = 0; i < 100_000; i += 1001) expect(rsp.data[i]).toBe((7 + i) & 0xff);
    expect(rsp.data[99_999]).toBe((7 + 99_999) & 0xff);
  });

  it('an unknown method and an unknown service are kInvalidMethodID (2009)', async () => {
    const Msg = schemaOf('fill');
    const Extra = defineService({ name: 'SerdeConformance', id: conformance.id, methods: { nope: method(99, { request: Msg, response: Msg }) } });
    const e1 = await client
      .stub(Extra, address)
      .nope({ size: 1, seed: 1 })
      .then(
        () => undefined,
        (e: unknown) => e as FfnetError,
      );
    expect(e1?.code).toBe(2009);
    const Other = defineService({ name: 'Other', id: 4321, methods: { echo: method(1, { request: Msg, response: Msg }) } });
    const e2 = await client
      .stub(Other, address)
      .echo({ size: 1, seed: 1 })
      .then(
        () => undefined,
        (e: unknown) => e as FfnetError,
      );
    expect(e2?.code).toBe(2009);
  });

  it('a zstd-compressed request with UseCompress is answered in full (the peer compresses answers of 128 KiB and more)', async () => {
    const data = new Uint8Array(300_000).fill(0x5a);
    const rsp = (await client.stub(Conformance, address).bytes({ data }, { compression: { level: 1, threshold: 1024 } })) as { data: Bytes; length: number };
    expect(rsp.length).toBe(300_000);
    expect(Buffer.from(rsp.data).equals(Buffer.from(data))).toBe(true);
  });

  it('16 pipelined echoes, each matched to its own answer', async () => {
    const stub = client.stub(EchoService3fs, address);
    const all = await Promise.all(Array.from({ length: 16 }, (_, i) => stub.echo({ str: `call ${i}` })));
    expect(all.map((r) => r.str)).toEqual(Array.from({ length: 16 }, (_, i) => `call ${i}`));
  });

  it('timestamps: the caller asks, the peer fills its hops', async () => {
    const ts = {
      clientCalled: 0,
      clientSerialized: 0,
      serverReceived: 0,
      serverWaked: 0,
      serverProcessed: 0,
      serverSerialized: 0,
      clientReceived: 0,
      clientWaked: 0,
    };
    await client.stub(EchoService3fs, address).echo({ str: 'when' }, { timestamps: ts });
    expect(ts.clientCalled).toBeGreaterThan(0);
    expect(ts.clientSerialized).toBeGreaterThanOrEqual(ts.clientCalled);
    expect(ts.clientWaked).toBeGreaterThanOrEqual(ts.clientSerialized);
  });
});
