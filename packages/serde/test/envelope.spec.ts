import { pack as plainPack, unpack as plainUnpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  crc32c,
  DataCorruptionError,
  decodeMessage,
  encodeFrame,
  encodeMessage,
  errResult,
  FfnetError,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  InvalidArgError,
  InvalidFormatError,
  MessageFlags,
  type MessagePacket,
  nowMicros,
  okResult,
  type Timestamps,
} from '../src/index.js';

const base = { uuid: 5, serviceId: 10000, methodId: 1, version: 0, timeoutMs: 0 };

function request<P>(payload: P, extra: Partial<MessagePacket> = {}): MessagePacket<P> {
  return { ...base, flags: MessageFlags.IsReq, payload, ...extra } as MessagePacket<P>;
}

/** Frame → FrameDecoder → decodeMessage, as a receiver does it. */
function roundTrip(frame: Buffer): MessagePacket {
  const out: MessagePacket[] = [];
  new FrameDecoder((body, compressed) => out.push(decodeMessage(body, compressed))).push(frame);
  expect(out.length).toBe(1);
  return out[0]!;
}

function body(frame: Buffer): Buffer {
  return frame.subarray(FRAME_HEADER_SIZE);
}

describe('wire layout', () => {
  it('an echo request is the documented positional array, readable by plain msgpack', () => {
    const frame = encodeMessage(request({ str: 'foo' }, { timeoutMs: 1000 }));
    const prefix = [
      '98', // array(8)
      '05', // uuid
      'cd2710', // serviceId 10000
      '01', // methodId
      '01', // flags IsReq
      '00', // version
      'cd03e8', // timeoutMs 1000
      'c0', // no timestamps
    ].join('');
    expect(body(frame).toString('hex').slice(0, prefix.length)).toBe(prefix);
    // The payload is msgpackr's plain encoding of the value (map16 for objects).
    expect(body(frame).subarray(prefix.length / 2)).toEqual(plainPack({ str: 'foo' }));
    expect(frame.readUInt32LE(4)).toBe(frame.length - FRAME_HEADER_SIZE);
    expect(frame.readUInt32LE(0)).toBe(((crc32c(body(frame)) & 0xffffff00) | 0x86) >>> 0);
    expect(plainUnpack(body(frame))).toEqual([5, 10000, 1, 1, 0, 1000, null, { str: 'foo' }]);
  });

  it('responses carry [0, value], [0] or [code, message]', () => {
    const ok = encodeMessage({ ...base, flags: 0, payload: okResult('v') });
    expect(plainUnpack(body(ok))[7]).toEqual([0, 'v']);
    const empty = encodeMessage({ ...base, flags: 0, payload: okResult(undefined) });
    expect(plainUnpack(body(empty))[7]).toEqual([0]);
    const err = encodeMessage({ ...base, flags: 0, payload: errResult(2009, 'no such method') });
    expect(plainUnpack(body(err))[7]).toEqual([2009, 'no such method']);
  });

  it('a request without payload has 7 fields', () => {
    const frame = encodeMessage(request(undefined));
    expect(plainUnpack(body(frame))).toEqual([5, 10000, 1, 1, 0, 0, null]);
    expect(roundTrip(frame).payload).toBeUndefined();
  });

  it('timestamps are a fixed-width array of 8 float64 before the payload', () => {
    const ts: Timestamps = {
      clientCalled: 1,
      clientSerialized: 0,
      serverReceived: 3,
      serverWaked: 4,
      serverProcessed: 5,
      serverSerialized: 6,
      clientReceived: 7,
      clientWaked: 8,
    };
    const frame = encodeMessage(request('p', { timestamps: ts }));
    const b = body(frame);
    const at = 9; // 98 05 cd2710 01 01 00 00
    expect(b[at]).toBe(0x98);
    for (let i = 0; i < 8; i++) expect(b[at + 1 + i * 9]).toBe(0xcb);
  });

  it('large uuids use uint64 and survive', () => {
    const uuid = Number.MAX_SAFE_INTEGER;
    const frame = encodeMessage(request(1, { uuid }));
    expect(body(frame)[1]).toBe(0xcf);
    expect(roundTrip(frame).uuid).toBe(uuid);
  });
});

describe('round trips', () => {
  it('keeps every header field', () => {
    const pkt = {
      uuid: 0xfffffffff,
      serviceId: 65535,
      methodId: 65535,
      flags: 0xffff,
      version: 0xffffffff,
      timeoutMs: 12345,
      payload: [1, 'two', { three: 3 }, null, true],
    };
    expect(roundTrip(encodeMessage(pkt))).toEqual(pkt);
  });

  it('rounds a fractional timeout up, so a short deadline never becomes "none"', () => {
    expect(roundTrip(encodeMessage(request(0, { timeoutMs: 0.2 }))).timeoutMs).toBe(1);
  });

  it('stamps clientSerialized on requests and serverSerialized on responses', () => {
    const ts: Timestamps = {
      clientCalled: 1_700_000_000_000_001,
      clientSerialized: 0,
      serverReceived: 0,
      serverWaked: 0,
      serverProcessed: 0,
      serverSerialized: 0,
      clientReceived: 0,
      clientWaked: 0,
    };
    const before = nowMicros();
    const req = roundTrip(encodeMessage(request('x', { timestamps: ts })));
    const after = nowMicros();
    expect(req.timestamps!.clientCalled).toBe(1_700_000_000_000_001);
    expect(req.timestamps!.clientSerialized).toBeGreaterThanOrEqual(before);
    expect(req.timestamps!.clientSerialized).toBeLessThanOrEqual(after);
    expect(req.timestamps!.serverSerialized).toBe(0);
    expect(ts.clientSerialized).toBe(0); // the caller's object is not modified

    const rspTs = { ...req.timestamps!, serverReceived: after, serverWaked: after + 1, serverProcessed: after + 2 };
    const rsp = roundTrip(encodeMessage({ ...base, flags: 0, payload: okResult('y'), timestamps: rspTs }));
    expect(rsp.timestamps!.clientSerialized).toBe(req.timestamps!.clientSerialized);
    expect(rsp.timestamps!.serverProcessed).toBe(after + 2);
    expect(rsp.timestamps!.serverSerialized).toBeGreaterThanOrEqual(after);
    expect(rsp.payload).toEqual({ ok: true, value: 'y' });
  });

  it('Result ok, ok(undefined) and error', () => {
    expect(roundTrip(encodeMessage({ ...base, flags: 0, payload: okResult({ a: 1 }) })).payload).toEqual({ ok: true, value: { a: 1 } });
    const empty = roundTrip(encodeMessage({ ...base, flags: 0, payload: okResult(undefined) })).payload;
    expect(empty).toEqual({ ok: true, value: undefined });
    const err = roundTrip(encodeMessage({ ...base, flags: 0, payload: errResult(2012, 'refused') })).payload;
    expect(err).toEqual({ ok: false, code: 2012, message: 'refused' });
  });

  it('binary payloads come back as Buffers that view the frame body', () => {
    const data = Buffer.from([0, 1, 2, 3, 254, 255]);
    const u8 = new Uint8Array([9, 8, 7]);
    let frameBody: Buffer | undefined;
    const frame = encodeMessage(request({ data, u8 }));
    new FrameDecoder((b, c) => {
      frameBody = b;
      const p = decodeMessage(b, c).payload as { data: Buffer; u8: Buffer };
      expect(Buffer.isBuffer(p.data)).toBe(true);
      expect(p.data.equals(data)).toBe(true);
      expect([...p.u8]).toEqual([9, 8, 7]);
      expect(p.data.buffer).toBe(frameBody.buffer);
    }).push(frame);
    expect(frameBody).toBeDefined();
  });

  it('big payloads (8 MiB binary, 100k-element array)', () => {
    const blob = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < blob.length; i += 4096) blob[i] = i & 0xff;
    const arr = Array.from({ length: 100_000 }, (_, i) => ({ i, s: `item${i}` }));
    const got = roundTrip(encodeMessage(request({ blob, arr }))).payload as { blob: Buffer; arr: typeof arr };
    expect(got.blob.equals(blob)).toBe(true);
    expect(got.arr).toEqual(arr);
  });

  it('frames stay intact while later messages are encoded (shared msgpackr slab)', () => {
    const frames = Array.from({ length: 2000 }, (_, i) => encodeMessage(request({ i, s: 'x'.repeat(i % 50) }, { uuid: i })));
    // One big message in between makes msgpackr grow and replace its slab.
    frames.push(encodeMessage(request(Buffer.alloc(3 * 1024 * 1024, 7), { uuid: 2000 })));
    frames.push(encodeMessage(request({ after: true }, { uuid: 2001 })));
    const got: MessagePacket[] = [];
    const dec = new FrameDecoder((b, c) => got.push(decodeMessage(b, c)));
    for (const f of frames) dec.push(f);
    expect(got.length).toBe(2002);
    got.slice(0, 2000).forEach((p, i) => {
      expect(p.uuid).toBe(i);
      expect(p.payload).toEqual({ i, s: 'x'.repeat(i % 50) });
    });
    expect((got[2000]!.payload as Buffer).length).toBe(3 * 1024 * 1024);
    expect(got[2001]!.payload).toEqual({ after: true });
    // The grown slab went away with the big frame instead of backing the next small one.
    expect(frames[2000]!.buffer.byteLength).toBeGreaterThan(3 * 1024 * 1024);
    expect(frames[2001]!.buffer.byteLength).toBeLessThanOrEqual(64 * 1024);
  });
});

describe('encode rejects bad packets with InvalidArgError', () => {
  const cases: [string, MessagePacket][] = [
    ['negative uuid', request(1, { uuid: -1 })],
    ['fractional uuid', request(1, { uuid: 1.5 })],
    ['unsafe uuid', request(1, { uuid: 2 ** 53 })],
    ['serviceId above u16', request(1, { serviceId: 65536 })],
    ['methodId NaN', request(1, { methodId: Number.NaN })],
    ['flags above u16', request(1, { flags: 0x10001 })],
    ['negative timeout', request(1, { timeoutMs: -5 })],
    ['infinite timeout', request(1, { timeoutMs: Number.POSITIVE_INFINITY })],
    ['response without Result', { ...base, flags: 0, payload: 'raw' }],
    ['error Result with code 0', { ...base, flags: 0, payload: errResult(0, 'x') }],
    ['error Result with code above u16', { ...base, flags: 0, payload: errResult(70000, 'x') }],
    ['error Result without message', { ...base, flags: 0, payload: { ok: false, code: 5 } as never }],
    ['unencodable payload', request({ big: 2n ** 70n })],
  ];
  for (const [name, pkt] of cases) {
    it(name, () => {
      expect(() => encodeMessage(pkt)).toThrow(InvalidArgError);
    });
  }
});

describe('decode rejects garbage with a typed error, never a crash', () => {
  const good = body(encodeMessage(request({ str: 'foo' }, { timeoutMs: 9 })));

  function expectTyped(b: Buffer): FfnetError {
    let err: unknown;
    try {
      decodeMessage(b, false, { peer: 'unix:///tmp/x.sock' });
    } catch (e) {
      err = e;
    }
    expect(FfnetError.is(err), `no typed error for ${b.toString('hex').slice(0, 60)}`).toBe(true);
    expect(err instanceof InvalidFormatError || err instanceof DataCorruptionError).toBe(true);
    expect((err as Error).message).toContain('unix:///tmp/x.sock');
    return err as FfnetError;
  }

  it('every truncation of a valid body', () => {
    for (let n = 0; n < good.length; n++) expectTyped(good.subarray(0, n));
  });

  it('trailing bytes', () => {
    expectTyped(Buffer.concat([good, Buffer.from([0])]));
  });

  it('wrong arity', () => {
    expectTyped(plainPack([5, 1, 1, 1, 0, 0]));
    expectTyped(plainPack([]));
    // A response (flags 0) must carry a Result.
    expectTyped(plainPack([5, 1, 1, 0, 0, 0, null]));
  });

  it('wrong types in each position', () => {
    const ok: unknown[] = [5, 10000, 1, 1, 0, 0, null, 'payload'];
    const tooBig = [2 ** 53, 70000, 70000, 70000, 2 ** 32 + 1, 2 ** 32 + 1];
    for (let pos = 0; pos < 6; pos++) {
      for (const v of ['5', -1, 1.5, null, {}, [1], true, tooBig[pos]]) {
        const arr = [...ok];
        arr[pos] = v;
        expectTyped(plainPack(arr));
      }
    }
    expectTyped(plainPack({ uuid: 5 }));
    expectTyped(plainPack('just a string'));
    expectTyped(plainPack([5, 1, 1, 1, 0, 0, [1, 2, 3], 'p'])); // timestamps of the wrong length
    expectTyped(plainPack([5, 1, 1, 1, 0, 0, [1, 2, 3, 4, 5, 6, 7, 'x'], 'p']));
    expectTyped(plainPack([5, 1, 1, 1, 0, 0, 17, 'p']));
  });

  it('malformed Results', () => {
    for (const r of [null, 'x', [], [0, 1, 2], [-1, 'm'], [2009], [2009, 42], ['0', 'v'], [1.5, 'm']]) {
      expectTyped(plainPack([5, 1, 1, 0, 0, 0, null, r]));
    }
  });

  it('deeply nested arrays (stack exhaustion)', () => {
    const deep = Buffer.concat([Buffer.from([0x98, 5, 1, 1, 1, 0, 0, 0xc0]), Buffer.alloc(300_000, 0x91), Buffer.from([0xc0])]);
    expectTyped(deep);
  });

  it('huge declared lengths with no data', () => {
    for (const hdr of [
      [0xdd, 0xff, 0xff, 0xff, 0xff],
      [0xdf, 0xff, 0xff, 0xff, 0xff],
      [0xdb, 0xff, 0xff, 0xff, 0xff],
      [0xc6, 0xff, 0xff, 0xff, 0xff],
    ]) {
      expectTyped(Buffer.concat([Buffer.from([0x98, 5, 1, 1, 1, 0, 0, 0xc0]), Buffer.from(hdr)]));
      expectTyped(Buffer.from(hdr));
    }
  });

  it('msgpackr structured-clone extensions are refused', () => {
    // fixext4 'p' (pointer) and 'i' (id) would build reference graphs from peer input.
    expectTyped(Buffer.concat([Buffer.from([0x98, 5, 1, 1, 1, 0, 0, 0xc0]), Buffer.from([0xd6, 0x70, 0, 0, 0, 1])]));
    expectTyped(Buffer.concat([Buffer.from([0x98, 5, 1, 1, 1, 0, 0, 0xc0]), Buffer.from([0xd6, 0x69, 0, 0, 0, 1, 0x90])]));
  });

  it('random bytes (2000 seeded bodies) either decode to a valid packet or throw a typed error', () => {
    let seed = 1234567;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 16;
    };
    let decoded = 0;
    for (let i = 0; i < 2000; i++) {
      const n = 1 + (next() % 64);
      const b = Buffer.allocUnsafe(n);
      for (let j = 0; j < n; j++) b[j] = next() & 0xff;
      // Half of them start like an envelope so the decoder gets past the first checks.
      if (i % 2 === 0) b.set([0x98, next() & 0x7f, 1, 1, next() & 1, 0, 0, 0xc0].slice(0, n));
      try {
        const p = decodeMessage(b, false);
        decoded++;
        expect(Number.isSafeInteger(p.uuid)).toBe(true);
      } catch (e) {
        expect(FfnetError.is(e)).toBe(true);
      }
    }
    expect(decoded).toBeLessThan(2000);
  });

  it('__proto__ keys do not pollute prototypes', () => {
    const evil = Buffer.concat([
      Buffer.from([0x98, 5, 1, 1, 1, 0, 0, 0xc0]),
      // {"__proto__": {"polluted": 1}, "constructor": {"prototype": {"polluted": 2}}}
      Buffer.from([0x82, 0xa9, ...Buffer.from('__proto__'), 0x81, 0xa8, ...Buffer.from('polluted'), 0x01]),
      Buffer.from([0xab, ...Buffer.from('constructor'), 0x81, 0xa9, ...Buffer.from('prototype'), 0x81, 0xa8, ...Buffer.from('polluted'), 0x02]),
    ]);
    const p = decodeMessage(evil, false).payload as Record<string, unknown>;
    expect(Object.getPrototypeOf(p)).toBe(Object.prototype);
    expect((p as { polluted?: unknown }).polluted).toBeUndefined();
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.hasOwn(Object.prototype, 'polluted')).toBe(false);
    expect(Object.keys(p)).not.toContain('__proto__');
  });

  it('a corrupt frame never reaches decodeMessage: the CRC catches it', () => {
    const frame = encodeFrame(good);
    frame[FRAME_HEADER_SIZE + 3]! ^= 0xff;
    expect(() => new FrameDecoder((b, c) => decodeMessage(b, c)).push(frame)).toThrow(DataCorruptionError);
  });
});
