// Schema-typed values under the ffnet (MessagePack) envelope: what comes out of decodeMessage is put back into the
// schema's shapes by fromMsgpack, and then passes validate and equals what was sent.
import { expect, it } from 'vitest';
import {
  decodeMessage,
  encodeMessage,
  FrameDecoder,
  fromJson,
  fromMsgpack,
  fromNeutral,
  MessageFlags,
  type MessagePacket,
  s,
  toJson,
  validate,
} from '../src/index.js';
import { loadVectors } from './fixtures/kit.js';

function viaFfnetEnvelope(payload: unknown): unknown {
  const frame = encodeMessage({ uuid: 1, serviceId: 1, methodId: 1, version: 0, timeoutMs: 0, flags: MessageFlags.IsReq, payload } as MessagePacket);
  const out: MessagePacket[] = [];
  new FrameDecoder((body, compressed) => out.push(decodeMessage(body, compressed))).push(frame);
  return out[0]?.payload;
}

it('64-bit integers, maps with typed keys, pairs, optionals and Results survive the ffnet envelope', () => {
  const Sc = s.struct('t::M', {
    id: s.u64,
    small: s.i64,
    byNum: s.map(s.u32, s.string),
    byBig: s.map(s.u64, s.bool),
    pair: s.pair(s.u8, s.i64),
    opt: s.optional(s.u64),
    res: s.result(s.vector(s.u64)),
    buf: s.rdmaRemoteBuf,
    data: s.bytes,
  });
  const value = {
    id: 1n << 60n,
    small: -3n,
    byNum: new Map([[7, 'seven']]),
    byBig: new Map([[5n, true]]),
    pair: [1, 2n] as [number, bigint],
    opt: 9n,
    res: { ok: [1n, 2n] },
    buf: { addr: 4096n, size: 16n, rkeys: [{ rkey: 1, devId: 0 }] },
    data: new Uint8Array([1, 2, 3]),
  };
  const raw = viaFfnetEnvelope(value);
  // Without the walk, msgpack's shapes do not fit the schema.
  expect(() => validate(Sc, raw, 'request')).toThrow(/request\.small: expected i64/);
  const back = fromMsgpack(Sc, raw);
  validate(Sc, back, 'request');
  expect(back).toEqual({ ...value, data: expect.any(Uint8Array) });
  expect([...back.data]).toEqual([1, 2, 3]);
});

it('the conformance Everything value survives the ffnet envelope', () => {
  const v = loadVectors().find((x) => x.name === 'packet.req.conformance.echo');
  if (!v) throw new Error('the kit has no packet.req.conformance.echo');
  const t = v.type as { levels: { name: string; type: { of: unknown } }[][] };
  const field = t.levels.flat().find((f) => f.name === 'payload');
  const sc = fromNeutral(field?.type.of, {}, { strings: 'bytes' });
  const value = fromJson(sc, (v.value as { payload: unknown }).payload);
  const back = fromMsgpack(sc, viaFfnetEnvelope(value));
  validate(sc, back, 'request');
  expect(toJson(sc, back)).toEqual(toJson(sc, value));
});
