// Micro-benchmark of W2's per-call serde work under both envelopes (issue 14 item 6): what a server does with one
// 64-byte request (decode the frame and its payload, encode the response frame) and what a client does (encode the
// request frame, decode the response frame and its Result), in ns of process CPU time. No socket: this isolates
// the envelope from the event loop, the one part of W2 the 3fs envelope changes. The 3fs frames are decoded as
// the Processor decodes them (the payload in the pass over the header, HeaderSchemas3fs); an older build that
// leaves payloads as bytes is measured with its own second pass (decodeRequest3fs / decodeResult3fs), so the
// same file compares builds. `node dist/envelope-micro.js [--ms 300]`; one JSON line on stdout.
import * as os from 'node:os';
import {
  decodeMessage,
  decodeMessage3fs,
  decodeRequest3fs,
  decodeResult3fs,
  encodeMessage3fs,
  encodeMessageParts,
  FRAME_HEADER_SIZE,
  type FrameParts,
  type HeaderSchemas3fs,
  MessageFlags,
  type MessagePacket,
  okResult,
  type Result,
  s,
} from '@ffnet/serde';
import { nsPerOp } from './cpu-time.js';

const i = process.argv.indexOf('--ms');
const measureMs = i >= 0 ? Number(process.argv[i + 1]) : 300;

const Msg = s.struct('ffnet::bench::BenchMessage', { data: s.bytes });
type Body = { data: Uint8Array };
const data = Buffer.alloc(64, 0x61);
const one = (f: FrameParts): Buffer => Buffer.concat(Array.isArray(f) ? (f as Uint8Array[]) : [f as Uint8Array]);
const reqPkt = (): MessagePacket => ({ uuid: 12345, serviceId: 7001, methodId: 1, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload: { data } });
const rspPkt = (): MessagePacket => ({ uuid: 12345, serviceId: 7001, methodId: 1, flags: 0, version: 0, timeoutMs: 0, payload: okResult({ data }) });
const req3 = one(encodeMessage3fs(reqPkt(), Msg)).subarray(FRAME_HEADER_SIZE);
const rsp3 = one(encodeMessage3fs(rspPkt(), Msg)).subarray(FRAME_HEADER_SIZE);
const reqF = one(encodeMessageParts(reqPkt())).subarray(FRAME_HEADER_SIZE);
const rspF = one(encodeMessageParts(rspPkt())).subarray(FRAME_HEADER_SIZE);
const schemas: HeaderSchemas3fs = { requestSchema: () => Msg, responseSchema: () => Msg };
let sink = 0;

function server3fs(): void {
  const pkt = decodeMessage3fs(req3, false, undefined, schemas);
  let v = pkt.payload;
  if (v instanceof Uint8Array) v = decodeRequest3fs(Msg, v, 'Bench.call');
  const f = encodeMessage3fs(rspPkt(), Msg);
  sink += (v as Body).data.length + (f as Uint8Array).length;
}

function client3fs(): void {
  const f = encodeMessage3fs(reqPkt(), Msg);
  const pkt = decodeMessage3fs(rsp3, false, undefined, schemas);
  let r = pkt.payload;
  if (r instanceof Uint8Array) r = decodeResult3fs(Msg, r, 'Bench.call');
  sink += ((r as Result<Body> & { ok: true }).value.data.length ?? 0) + (f as Uint8Array).length;
}

function serverFfnet(): void {
  const pkt = decodeMessage(reqF, false);
  const f = encodeMessageParts(rspPkt());
  sink += (pkt.payload as Body).data.length + (f as Uint8Array).length;
}

function clientFfnet(): void {
  const f = encodeMessageParts(reqPkt());
  const pkt = decodeMessage(rspF, false);
  sink += (pkt.payload as Result<Body> & { ok: true }).value.data.length + (f as Uint8Array).length;
}

/** Median ns/op over 5 windows of `measureMs / 5` of process CPU time, after a warm-up window. */
function micro(fn: () => void): number {
  return Math.round(nsPerOp(fn, measureMs, 512));
}

const result = {
  bench: 'envelope-micro',
  date: new Date().toISOString(),
  node: process.version,
  loadavg: os.loadavg(),
  measureMs,
  nsPerCall: { server3fs: micro(server3fs), serverFfnet: micro(serverFfnet), client3fs: micro(client3fs), clientFfnet: micro(clientFfnet) },
  sink: sink > 0,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
