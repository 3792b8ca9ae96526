// Micro-benchmarks for the README figures (not a test). Run: pnpm --filter @ffnet/serde bench
// (builds dist first). Single-threaded; numbers vary with the machine and its load.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';
import {
  FRAME_HEADER_SIZE,
  FrameDecoder,
  MessageFlags,
  crc32c,
  decodeMessage,
  encodeFrame,
  encodeMessage,
  initCompression,
} from '../dist/index.js';

// The machine is shared, so each figure is the best of several rounds rather than a mean.
function bench(name, fn, { ms = 600, rounds = 5 } = {}) {
  for (let i = 0; i < 20_000; i++) fn(); // warm up / optimise
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    let n = 0;
    const t0 = process.hrtime.bigint();
    const end = t0 + BigInt(Math.ceil(ms / rounds)) * 1_000_000n;
    let now = t0;
    while (now < end) {
      for (let i = 0; i < 1000; i++) fn();
      n += 1000;
      now = process.hrtime.bigint();
    }
    best = Math.min(best, Number(now - t0) / n);
  }
  console.log(`${name.padEnd(66)} ${best.toFixed(0).padStart(7)} ns/op`);
  return best;
}

function throughput(name, bytes, fn, reps) {
  fn();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  console.log(`${name.padEnd(66)} ${(bytes / best / 1e6).toFixed(0).padStart(7)} MB/s`);
}

console.log(`node ${process.version}, ${process.arch}`);

// CRC-32C (3FS variant), each implementation in its own process since the choice is made at load; the native one
// also with its x86_64 fold narrowed to 256-bit vectors and turned off (FFNET_CRC32C_FOLD).
const crcBench = fileURLToPath(new URL('crc-bench.mjs', import.meta.url));
for (const [impl, fold] of [['', ''], ['', 'ymm'], ['', 'off'], ['node-rs', ''], ['js', '']]) {
  if (fold !== '' && process.arch !== 'x64') continue;
  process.stdout.write(execFileSync(process.execPath, [crcBench], { env: { ...process.env, FFNET_CRC32C: impl, FFNET_CRC32C_FOLD: fold } }));
}
const big = Buffer.alloc(64 * 1024 * 1024);
for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
throughput('crc32c, 64 MiB buffer', big.length, () => crc32c(big), 20);
const bigFrame = encodeFrame(big);
throughput('FrameDecoder.push, one 64 MiB frame (CRC verify)', big.length, () => new FrameDecoder(() => {}).push(bigFrame), 20);

// A 64-byte echo request envelope.
const req = { uuid: 123456, serviceId: 10000, methodId: 1, flags: MessageFlags.IsReq, version: 0, timeoutMs: 1000, payload: { str: '' } };
const base = encodeMessage(req).length - FRAME_HEADER_SIZE;
req.payload.str = 'x'.repeat(64 - base);
const frame = encodeMessage(req);
const body = frame.subarray(FRAME_HEADER_SIZE);
console.log(`echo request body: ${body.length} bytes`);
let uuid = 0;
bench('encodeMessage (64 B echo request)', () => {
  req.uuid = uuid++ & 0xffffff;
  encodeMessage(req);
});
bench('encodeMessage + copy into an owned buffer (rejected option)', () => {
  const f = encodeMessage(req);
  const owned = Buffer.allocUnsafe(f.length);
  owned.set(f);
});
const rsp = { ...req, flags: 0, payload: { ok: true, value: req.payload } };
bench('encodeMessage (64 B echo response, ok Result)', () => encodeMessage(rsp));
const ts = { clientCalled: 1.7e15, clientSerialized: 0, serverReceived: 0, serverWaked: 0, serverProcessed: 0, serverSerialized: 0, clientReceived: 0, clientWaked: 0 };
const reqTs = { ...req, timestamps: ts };
bench('encodeMessage (64 B echo request + timestamps)', () => encodeMessage(reqTs));
bench('decodeMessage (64 B echo request)', () => decodeMessage(body, false));
const rspBody = encodeMessage(rsp).subarray(FRAME_HEADER_SIZE);
bench('decodeMessage (64 B echo response)', () => decodeMessage(rspBody, false));
let sink;
const dec = new FrameDecoder((b, c) => {
  sink = decodeMessage(b, c);
});
bench('encode + FrameDecoder.push + decode (full round trip)', () => dec.push(encodeMessage(req)));

// The naive alternative: msgpackr packs the whole envelope array, then the body is copied behind a header.
const naive = new Packr({ useRecords: false });
bench('naive: pack([...envelope]) + copy behind a header + CRC', () => {
  const b = naive.pack([req.uuid, req.serviceId, req.methodId, req.flags, req.version, req.timeoutMs, null, req.payload]);
  encodeFrame(b);
});

// Records / map encodings for the README decision.
const recs = new Packr({ useRecords: true });
const varmap = new Packr({ useRecords: false, variableMapSize: true });
const obj = req.payload;
const rows = Array.from({ length: 100 }, (_, i) => ({ id: i, name: `row${i}`, size: i * 1000, ok: true }));
for (const [label, p] of [
  ['useRecords:false (ffnet)', naive],
  ['useRecords:false, variableMapSize', varmap],
  ['useRecords:true (per-message records)', recs],
]) {
  const a = p.pack(obj);
  const r = p.pack(rows);
  bench(`${label}: pack+unpack echo payload (${a.length} B)`, () => p.unpack(p.pack(obj)));
  bench(`${label}: pack+unpack 100 rows (${r.length} B)`, () => p.unpack(p.pack(rows)), { ms: 300 });
}

// zstd (wasm), level 1, on a compressible 1 MiB payload.
await initCompression();
const text = { text: 'all work and no play makes jack a dull boy, '.repeat(24_000) };
const zreq = { ...req, payload: text };
const plainSize = encodeMessage(zreq).length;
const zframe = encodeMessage(zreq, { compressionThreshold: 1 });
console.log(`zstd level 1: ${plainSize} B body -> ${zframe.length} B`);
throughput('encodeMessage with zstd level 1 (MB of body)', plainSize, () => encodeMessage(zreq, { compressionThreshold: 1 }), 50);
throughput('decodeMessage with zstd (MB of body)', plainSize, () => decodeMessage(zframe.subarray(FRAME_HEADER_SIZE), true), 50);
if (sink === undefined) throw new Error('unreachable');
