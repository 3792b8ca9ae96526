import { pack as plainPack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_METADATA_LIMITS,
  decodeMessage,
  encodeMessage,
  encodeMessageParts,
  errResult,
  FRAME_HEADER_SIZE,
  InvalidArgError,
  InvalidFormatError,
  MessageFlags,
  type MessagePacket,
  MessageTooLargeError,
  type Metadata,
  okResult,
  sealFrame,
} from '../src/index.js';

const base = { uuid: 7, serviceId: 3, methodId: 2, version: 0, timeoutMs: 500 };

function req(payload: unknown, metadata?: Metadata): MessagePacket {
  return { ...base, flags: MessageFlags.IsReq, payload, ...(metadata ? { metadata } : {}) };
}

function body(frame: Uint8Array): Buffer {
  return Buffer.from(frame.subarray(FRAME_HEADER_SIZE));
}

/** A frame around a body packed by plain msgpackr, as another implementation would write it. */
function frameOf(fields: unknown[]): Buffer {
  const b = plainPack(fields);
  const f = Buffer.alloc(FRAME_HEADER_SIZE + b.length);
  b.copy(f, FRAME_HEADER_SIZE);
  sealFrame(f, false);
  return f;
}

// Frames written by ffnet before metadata existed (captured from that build): they must decode as they did, and
// a message without metadata must still encode to exactly these bytes.
const OLD = {
  req: '86b686ce20000000980703020100cd01f4c0de0003a3737472a26869a16ecd012ca162c403010203',
  reqNoPayload: '86dc3a6a0a000000970703020100cd01f4c0',
  ok: '868c9b6216000000980703020000cd01f4c09200de0001a26f6ba3796573',
  err: '86da381d13000000980703020000cd01f4c092cd07d5a46c617465',
  okVoid: '8612be310c000000980703020000cd01f4c09100',
};

describe('metadata: compatibility with frames that have none', () => {
  it('a message without metadata (or with an empty Map) encodes to the same bytes as before', () => {
    const payload = { str: 'hi', n: 300, b: Buffer.from([1, 2, 3]) };
    expect(encodeMessage(req(payload)).toString('hex')).toBe(OLD.req);
    expect(encodeMessage(req(payload, new Map())).toString('hex')).toBe(OLD.req);
    expect(encodeMessage(req(undefined)).toString('hex')).toBe(OLD.reqNoPayload);
    const rsp = { ...base, flags: 0 };
    expect(encodeMessage({ ...rsp, payload: okResult({ ok: 'yes' }) }).toString('hex')).toBe(OLD.ok);
    expect(encodeMessage({ ...rsp, payload: errResult(2005, 'late') }).toString('hex')).toBe(OLD.err);
    expect(encodeMessage({ ...rsp, payload: okResult(undefined) }).toString('hex')).toBe(OLD.okVoid);
  });

  it('old frames decode exactly as before, with no metadata', () => {
    const r = decodeMessage(body(Buffer.from(OLD.req, 'hex')), false);
    expect(r).toEqual({ ...base, flags: 1, payload: { str: 'hi', n: 300, b: Buffer.from([1, 2, 3]) } });
    expect('metadata' in r).toBe(false);
    expect(decodeMessage(body(Buffer.from(OLD.reqNoPayload, 'hex')), false)).toEqual({ ...base, flags: 1, payload: undefined });
    expect(decodeMessage(body(Buffer.from(OLD.ok, 'hex')), false).payload).toEqual({ ok: true, value: { ok: 'yes' } });
    expect(decodeMessage(body(Buffer.from(OLD.err, 'hex')), false).payload).toEqual({ ok: false, code: 2005, message: 'late' });
    expect(decodeMessage(body(Buffer.from(OLD.okVoid, 'hex')), false).payload).toEqual({ ok: true, value: undefined });
  });
});

describe('metadata: round trip', () => {
  const md = (): Metadata =>
    new Map<string, string | Uint8Array>([
      ['authorization', 'Bearer abc'],
      ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
      ['x-bin', new Uint8Array([0, 255, 7])],
      ['note', 'grüße ✓'],
    ]);

  it('a request carries string and binary values, in order, with its payload', () => {
    const frame = encodeMessage(req({ a: 1 }, md()));
    expect(frame[FRAME_HEADER_SIZE]).toBe(0x99);
    const got = decodeMessage(body(frame), false);
    expect(got.payload).toEqual({ a: 1 });
    expect([...got.metadata!.keys()]).toEqual(['authorization', 'traceparent', 'x-bin', 'note']);
    expect(got.metadata!.get('authorization')).toBe('Bearer abc');
    expect(Buffer.from(got.metadata!.get('x-bin') as Uint8Array)).toEqual(Buffer.from([0, 255, 7]));
    expect(got.metadata!.get('note')).toBe('grüße ✓');
  });

  it('a request with metadata and no payload decodes its payload as undefined', () => {
    const got = decodeMessage(body(encodeMessage(req(undefined, new Map([['k', 'v']])))), false);
    expect(got.payload).toBeUndefined();
    expect(got.metadata).toEqual(new Map([['k', 'v']]));
  });

  it('responses carry it too: ok, ok(void) and error Results', () => {
    for (const payload of [okResult({ x: [1, 2] }), okResult(undefined), errResult(2005, 'late')]) {
      const got = decodeMessage(body(encodeMessage({ ...base, flags: 0, payload, metadata: md() })), false);
      expect(got.payload).toEqual(payload);
      expect(got.metadata!.get('authorization')).toBe('Bearer abc');
      expect(got.metadata!.size).toBe(4);
    }
  });

  it('a payload only msgpackr writes (a Map) still gets its metadata', () => {
    const got = decodeMessage(body(encodeMessage(req(new Map([['a', 1n]]), new Map([['k', new Uint8Array([9])]])))), false);
    expect(got.payload).toEqual({ a: 1 });
    expect(Buffer.from(got.metadata!.get('k') as Uint8Array)).toEqual(Buffer.from([9]));
  });

  it('the frame writer and the fallback write the same metadata bytes', () => {
    // 17 entries: map16 header; long and short strings and bytes.
    const big = new Map<string, string | Uint8Array>();
    for (let i = 0; i < 17; i++) big.set(`k${i}`, i % 2 ? 'v'.repeat(i * 10) : new Uint8Array(i * 20).fill(i));
    const plain = body(encodeMessage(req({ a: 1 }, big)));
    // A Map payload makes the writer bail to msgpackr: same metadata tail.
    const viaMsgpackr = body(encodeMessage(req(new Map([['a', 1]]), big)));
    const tailLen = plain.length - plain.indexOf(Buffer.from([0xde, 0x00, 0x11]));
    expect(viaMsgpackr.subarray(viaMsgpackr.length - tailLen)).toEqual(plain.subarray(plain.length - tailLen));
    expect(decodeMessage(viaMsgpackr, false).metadata).toEqual(decodeMessage(plain, false).metadata);
  });

  it('encodeMessageParts with large zero-copy payloads keeps metadata after them', () => {
    const big = Buffer.alloc(100_000, 3);
    const parts = encodeMessageParts(req({ big }, new Map([['k', 'v']])), { zeroCopyThreshold: 1024 });
    expect(Array.isArray(parts)).toBe(true);
    const got = decodeMessage(body(Buffer.concat(parts as Uint8Array[])), false);
    expect((got.payload as { big: Buffer }).big.equals(big)).toBe(true);
    expect(got.metadata).toEqual(new Map([['k', 'v']]));
  });

  it('another implementation writing a plain map (msgpackr) is read the same', () => {
    const f = frameOf([7, 3, 2, 1, 0, 500, null, { a: 1 }, { 'x-id': 'abc', raw: Buffer.from([1]) }]);
    const got = decodeMessage(body(f), false);
    expect(got.metadata).toEqual(
      new Map<string, unknown>([
        ['x-id', 'abc'],
        ['raw', Buffer.from([1])],
      ]),
    );
    // nil in the slot is no metadata.
    expect(decodeMessage(body(frameOf([7, 3, 2, 1, 0, 500, null, 1, null])), false).metadata).toBeUndefined();
  });
});

describe('metadata: limits and validation', () => {
  it('keys must be lower-case tokens: InvalidArgError on send', () => {
    for (const key of ['Authorization', 'a b', '', 'ключ', '__proto__', 'a:b']) {
      expect(() => encodeMessage(req(1, new Map([[key, 'v']])))).toThrow(InvalidArgError);
    }
    expect(() => encodeMessage(req(1, new Map([['k', 5 as unknown as string]])))).toThrow(InvalidArgError);
  });

  it('over a limit on send is MessageTooLargeError, with defaults 64 entries, 128-byte keys, 8 KiB', () => {
    expect(DEFAULT_METADATA_LIMITS).toEqual({ maxEntries: 64, maxKeyBytes: 128, maxBytes: 8192 });
    const many = new Map<string, string>();
    for (let i = 0; i < 65; i++) many.set(`k${i}`, 'v');
    expect(() => encodeMessage(req(1, many))).toThrow(MessageTooLargeError);
    many.delete('k0');
    expect(() => encodeMessage(req(1, many))).not.toThrow();
    expect(() => encodeMessage(req(1, new Map([['k'.repeat(129), 'v']])))).toThrow(MessageTooLargeError);
    expect(() => encodeMessage(req(1, new Map([['k'.repeat(128), 'v']])))).not.toThrow();
    expect(() => encodeMessage(req(1, new Map([['k', 'é'.repeat(4096)]])))).toThrow(MessageTooLargeError);
    expect(() => encodeMessage(req(1, new Map([['k', new Uint8Array(8191)]])))).not.toThrow();
    expect(() => encodeMessage(req(1, new Map([['k', new Uint8Array(8192)]])))).toThrow(MessageTooLargeError);
    // Configurable.
    expect(() => encodeMessage(req(1, new Map([['k', 'abcd']])), { metadataLimits: { maxBytes: 4 } })).toThrow(MessageTooLargeError);
    expect(() => encodeMessage(req(1, new Map([['k', new Uint8Array(20_000)]])), { metadataLimits: { maxBytes: 30_000 } })).not.toThrow();
  });

  it('received metadata over a limit is refused with MessageTooLargeError naming the peer', () => {
    const big = new Map([['k', 'x'.repeat(5000)]]);
    const b = body(encodeMessage(req(1, big)));
    expect(decodeMessage(b, false).metadata!.get('k')).toHaveLength(5000);
    const opts = { peer: 'tcp://10.0.0.1:9000', metadataLimits: { maxBytes: 1024 } };
    expect(() => decodeMessage(b, false, opts)).toThrow(MessageTooLargeError);
    try {
      decodeMessage(b, false, opts);
    } catch (e) {
      expect((e as MessageTooLargeError).peer).toBe('tcp://10.0.0.1:9000');
      expect((e as Error).message).not.toContain('xxxx');
    }
    const many = frameOf([7, 3, 2, 1, 0, 0, null, 1, Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']))]);
    expect(() => decodeMessage(body(many), false)).toThrow(MessageTooLargeError);
  });

  it('malformed metadata is an InvalidFormatError', () => {
    for (const md of [[1, 2], 'str', { Upper: 'v' }, { k: 5 }, { k: { nested: 1 } }]) {
      expect(() => decodeMessage(body(frameOf([7, 3, 2, 1, 0, 0, null, 1, md])), false), JSON.stringify(md)).toThrow(InvalidFormatError);
    }
  });
});
