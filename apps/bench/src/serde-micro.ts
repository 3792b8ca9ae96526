// Micro-benchmark of the 3FS binary codec (issue 14 item 6): encode and decode of one message, in ns/op, next to
// msgpackr (ffnet's envelope codec, configured as ffnet configures it) for the same value. Separate from the
// workload bench: `node dist/serde-micro.js [--ms N] [--out FILE]`; prints one JSON document on stdout.
// The messages come from the 3FS conformance kit (FFNET_3FS_KIT, else shared/3fs-serde above the repo).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AnySchema, decode3fs, encode3fs, fromJson, fromNeutral, isValid, type Schema } from '@ffnet/serde';
import { Packr } from 'msgpackr';
import { nsPerOp } from './cpu-time.js';
import { gitCommit } from './machine.js';

const here = path.dirname(fileURLToPath(import.meta.url));

function kitDir(): string {
  const env = process.env.FFNET_3FS_KIT;
  if (env) return env;
  for (let dir = path.resolve(here, '../../..'); ; ) {
    const c = path.join(dir, 'shared', '3fs-serde');
    if (existsSync(path.join(c, 'vectors.json'))) return c;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('serde-micro: the 3FS serde kit was not found; set FFNET_3FS_KIT to its directory');
    dir = up;
  }
}

interface Vector {
  name: string;
  type: unknown;
  value: { payload?: unknown } & Record<string, unknown>;
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? (process.argv[i + 1] as string) : dflt;
}

const measureMs = Number(arg('--ms', '300'));
const outFile = arg('--out', '');

const vectors = JSON.parse(readFileSync(path.join(kitDir(), 'vectors.json'), 'utf8')) as Vector[];
const byName = (n: string): Vector => {
  const v = vectors.find((x) => x.name === n);
  if (!v) throw new Error(`serde-micro: vector ${n} is not in the kit`);
  return v;
};

function payloadOf(v: Vector): { type: unknown; value: unknown } {
  const t = v.type as { levels: { name: string; type: { of: unknown } }[][] };
  const field = t.levels.flat().find((f) => f.name === 'payload');
  if (!field) throw new Error(`serde-micro: ${v.name} has no payload`);
  return { type: field.type.of, value: v.value.payload };
}

const cases: { message: string; type: unknown; value: unknown }[] = [
  { message: 'EchoMessage', type: byName('svc.core.EchoReq').type, value: byName('svc.core.EchoReq').value },
  { message: 'storage.BatchReadReq', type: byName('svc.storage.BatchReadReq').type, value: byName('svc.storage.BatchReadReq').value },
  { message: 'conformance.Everything', ...payloadOf(byName('packet.req.conformance.echo')) },
  // The W2 message of the ffnet-3fs peer (`BenchMessage3fs`): one 64-byte bytes field.
  {
    message: 'bench.BenchMessage',
    type: {
      kind: 'struct',
      name: 'ffnet::bench::BenchMessage',
      tag: 'BenchMessage',
      levelClasses: ['BenchMessage'],
      levels: [[{ name: 'data', id: 0, type: 'string' }]],
    },
    value: { data: { $hex: '61'.repeat(64) } },
  },
];

// As ffnet's envelope codec is set up: plain maps, no records, 64-bit integers read back as bigint.
const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, int64AsType: 'bigint' } as never);

let sink = 0;

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/**
 * The first pass a sizes-first encoder would need (3FS gets lengths for free by writing backwards): the encoded
 * size of a value, walking it as the encoder does. The codec instead writes forwards and patches each length
 * prefix; timing this pass alone shows what sizes-first would add on top of the writing itself.
 */
function sizeOf(sc: AnySchema, v: unknown): number {
  switch (sc.kind) {
    case 'bool':
    case 'u8':
    case 'i8':
      return 1;
    case 'u16':
    case 'i16':
      return 2;
    case 'u32':
    case 'i32':
    case 'f32':
      return 4;
    case 'u64':
    case 'i64':
    case 'f64':
      return 8;
    case 'string': {
      const n = Buffer.byteLength(v as string, 'utf8');
      return varintSize(n) + n;
    }
    case 'bytes': {
      const n = (v as Uint8Array).length;
      return varintSize(n) + n;
    }
    case 'void':
      return 0;
    case 'status': {
      const m = (v as { message: string }).message;
      return m ? 3 + sizeOf({ kind: 'string' } as AnySchema, m) : 3;
    }
    case 'vector':
    case 'set': {
      const a = v as unknown[];
      let n = varintSize(a.length);
      for (const x of a) n += sizeOf(sc.of as AnySchema, x);
      return n;
    }
    case 'map': {
      const m = v as Map<unknown, unknown>;
      let n = varintSize(m.size);
      for (const [k, x] of m) n += sizeOf(sc.key as AnySchema, k) + sizeOf(sc.value as AnySchema, x);
      return n;
    }
    case 'pair': {
      const [a, b] = v as [unknown, unknown];
      return sizeOf(sc.first as AnySchema, a) + sizeOf(sc.second as AnySchema, b);
    }
    case 'optional':
      if (v === null) return 1;
      return 1 + sizeOf(sc.of as AnySchema, typeof v === 'object' && 'some' in v ? v.some : v);
    case 'result':
      return 'ok' in (v as object)
        ? 1 + sizeOf(sc.of as AnySchema, (v as { ok: unknown }).ok)
        : 1 + sizeOf({ kind: 'status' } as AnySchema, (v as { error: unknown }).error);
    case 'payload': {
      const n = sizeOf(sc.of as AnySchema, v);
      return varintSize(n) + n;
    }
    case 'variant': {
      const { tag, value } = v as { tag: string; value: unknown };
      const alt = sc.alternatives.find((a) => a.tag === tag) as { type: AnySchema };
      return 1 + tag.length + sizeOf(alt.type, value);
    }
    case 'enum':
      return sizeOf(sc.repr as AnySchema, v);
    case 'struct': {
      let total = 0;
      for (const level of sc.levels) {
        let n = 0;
        for (const f of level.fields) n += sizeOf(f.type as AnySchema, (v as Record<string, unknown>)[f.name]);
        total += varintSize(n) + n;
      }
      return total;
    }
    case 'lazy':
      return sizeOf(sc.resolve() as AnySchema, v);
    case 'alias':
      return sizeOf(sc.of as AnySchema, v);
    case 'fixed':
      return sc.size;
    case 'rdmaRemoteBuf':
      return 17 + 8 * (v as { rkeys: { devId: number }[] }).rkeys.filter((k) => k.devId !== -1).length;
  }
}

/** Median ns/op of `fn` in this process's CPU time (cpu-time.ts); what it returns is consumed so it is not optimised away. */
function micro(fn: () => unknown): number {
  const consume = (): void => {
    const r = fn() as { length?: number };
    sink += r?.length ?? 1;
  };
  return Math.round(nsPerOp(consume, measureMs, 256) * 10) / 10;
}

const loadStart = os.loadavg();
const results = cases.map(({ message, type, value: json }) => {
  const schema: Schema = fromNeutral(type, {}, { strings: 'bytes' });
  const value = fromJson(schema, json);
  const wire = encode3fs(schema, value);
  const packed = packr.pack(value);
  const size = sizeOf(schema as AnySchema, value);
  if (size !== wire.length) throw new Error(`serde-micro: the size pass says ${size} bytes for ${message}, the encoder wrote ${wire.length}`);
  return {
    message,
    bytes3fs: wire.length,
    bytesMsgpack: packed.length,
    encode3fsNs: micro(() => encode3fs(schema, value)),
    decode3fsNs: micro(() => decode3fs(schema, wire)),
    validateNs: micro(() => isValid(schema, value)),
    sizePassNs: micro(() => sizeOf(schema as AnySchema, value)),
    encodeMsgpackNs: micro(() => packr.pack(value)),
    decodeMsgpackNs: micro(() => packr.unpack(packed)),
  };
});

const doc = {
  meta: {
    bench: 'serde-micro',
    date: new Date().toISOString(),
    commit: gitCommit(here, true),
    node: process.version,
    hostname: os.hostname(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? null,
    loadavg: { start: loadStart, end: os.loadavg() },
    measureMs,
    clock: 'process CPU time (user + system)',
    strings: 'bytes',
  },
  results,
  sink: sink > 0,
};
const text = `${JSON.stringify(doc, null, 2)}\n`;
process.stdout.write(text);
if (outFile) {
  mkdirSync(path.dirname(outFile), { recursive: true });
  writeFileSync(outFile, text);
}
