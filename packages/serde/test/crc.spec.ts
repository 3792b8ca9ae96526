import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { crc32cRange, crcTable } from '../src/crc.js';
import { checksumWord, crc32c, crc32cBatched, crc32cCopy, crc32cImplementation, crc32cRanges } from '../src/index.js';
import { randomBytes, rng } from './random.js';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);

type RangeCrc = (data: Uint8Array, start: number, end: number, previous: number) => number;
type CopyCrc = (src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number, previous: number) => number;
type RangesCrc = (data: Uint8Array, ranges: Int32Array, count: number, out: Int32Array) => void;
// The addon is loaded here on its own, so it is checked at every length, not just above the JS threshold.
const addon = (existsSync(join(pkg, 'dist/crc32c.node')) ? require('../dist/crc32c.node') : {}) as {
  crc32c?: RangeCrc;
  crc32cCopy?: CopyCrc;
  crc32cRanges?: RangesCrc;
};
const nativeRange = addon.crc32c;
const nativeCopy = addon.crc32cCopy;
const nativeRanges = addon.crc32cRanges;
const std = (require('@node-rs/crc32') as typeof import('@node-rs/crc32')).crc32c;

/** @node-rs/crc32 (standard CRC-32C) turned into the raw 3FS register: an independent implementation. */
const nodeRs = (d: Uint8Array, previous = 0): number => ~std(d, ~previous >>> 0) >>> 0;

const rand = rng(0xc2c);
const pool = randomBytes(rand, (3 << 20) + 64);

/** Checks every implementation on data[start..end) against @node-rs and returns the agreed value. */
function expectAgree(data: Uint8Array, start: number, end: number, previous = 0): number {
  const want = nodeRs(data.subarray(start, end), previous);
  const label = `len ${end - start} at +${start} (byteOffset ${data.byteOffset}), previous 0x${previous.toString(16)}`;
  expect(crcTable(data, start, end, previous), `table, ${label}`).toBe(want);
  expect(crc32cRange(data, start, end, previous), `crc32cRange, ${label}`).toBe(want);
  if (start === 0 && end === data.length) expect(crc32c(data, previous), `crc32c, ${label}`).toBe(want);
  if (nativeRange) expect(nativeRange(data, start, end, previous), `addon, ${label}`).toBe(want);
  return want;
}

describe('crc32c implementations', () => {
  it('this x86_64/arm64 Linux machine with a C compiler runs the native addon', () => {
    const impl = crc32cImplementation();
    const [cc = 'cc'] = (process.env.CC ?? '').trim().split(/\s+/).filter(Boolean);
    const canBuild = process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64') && spawnSync(cc, ['--version']).status === 0;
    if (canBuild) {
      expect(impl.name, `native CRC not in use: ${impl.reason}`).toBe('native');
      expect(impl.reason).toBeUndefined();
      expect(nativeRange).toBeTypeOf('function');
    } else {
      expect(impl.name).not.toBe('native');
      expect(impl.reason).toMatch(/\S/);
    }
  });

  it('gives the 3FS vectors: "123456789" -> 0x58E3FA20, header word 0x58E3FA86', () => {
    const data = Buffer.from('123456789');
    expect(expectAgree(data, 0, data.length)).toBe(0x58e3fa20);
    expect(checksumWord(crc32c(data), false)).toBe(0x58e3fa86);
    // The same nine bytes past the JS threshold, inside a larger buffer, through every implementation.
    const padded = Buffer.concat([Buffer.alloc(100, 0xaa), data, Buffer.alloc(100, 0x55)]);
    expect(expectAgree(padded, 100, 109)).toBe(0x58e3fa20);
    expect(crc32c(new Uint8Array(0), 0x1234)).toBe(0x1234);
  });

  it('agree at every length 0..1100', () => {
    for (let n = 0; n <= 1100; n++) expectAgree(pool, 0, n);
  });

  it('agree at random lengths up to 70,000 and at 1 MiB and 3 MiB + 7', () => {
    for (let i = 0; i < 150; i++) expectAgree(pool, 0, 1101 + ((rand() * 69_000) | 0));
    // The three-stream block sizes (3 x 8 KiB, 3 x 256 B) and one byte either side.
    for (const n of [768, 24_576, 2 * 24_576 + 768]) for (const d of [-1, 0, 1]) expectAgree(pool, 0, n + d);
    const mib = pool.subarray(0, 1 << 20);
    expectAgree(mib, 0, mib.length);
    const big = pool.subarray(0, (3 << 20) + 7);
    expectAgree(big, 0, big.length);
  });

  it('agree on random unaligned ranges inside a larger buffer', () => {
    const hay = pool.subarray(0, 80_000);
    for (let i = 0; i < 300; i++) {
      const a = (rand() * hay.length) | 0;
      const b = (rand() * hay.length) | 0;
      // Half the ranges short, to cover both sides of the JS threshold at odd offsets.
      const [start, end] = i % 2 ? [Math.min(a, b), Math.max(a, b)] : [a, Math.min(hay.length, a + ((rand() * 300) | 0))];
      expectAgree(hay, start, end, (rand() * 4294967296) >>> 0);
    }
  });

  it('read the right bytes of views with a nonzero byteOffset', () => {
    for (let n = 0; n < 40; n++) {
      // Small Buffer.from copies are slices of Node's shared pool.
      const slice = Buffer.from(pool.subarray(n, n + 1 + n * 50));
      expect(slice.byteOffset + slice.length).toBeLessThanOrEqual(slice.buffer.byteLength);
      expectAgree(slice, 0, slice.length);
      expectAgree(slice, 1, slice.length);
    }
    expect(Buffer.from('abc').byteOffset).toBeGreaterThan(0);
    const backing = new ArrayBuffer(10_000);
    new Uint8Array(backing).set(pool.subarray(0, 10_000));
    for (const offset of [1, 7, 333]) {
      const view = new Uint8Array(backing, offset, 5000);
      expect(expectAgree(view, 0, view.length)).toBe(nodeRs(pool.subarray(offset, offset + 5000)));
    }
  });

  it('chain over random split points to the one-shot value', () => {
    for (const n of [50, 200, 5000, 70_000, 1 << 20]) {
      const data = pool.subarray(3, 3 + n);
      const whole = nodeRs(data);
      for (let i = 0; i < 20; i++) {
        const cuts = [0, n, ...Array.from({ length: 1 + (i % 4) }, () => (rand() * n) | 0)].sort((x, y) => x - y);
        let viaPublic = 0;
        let viaAddon = 0;
        for (let k = 1; k < cuts.length; k++) {
          viaPublic = crc32c(data.subarray(cuts[k - 1], cuts[k]), viaPublic);
          if (nativeRange) viaAddon = nativeRange(data, cuts[k - 1]!, cuts[k]!, viaAddon);
        }
        expect(viaPublic, `n ${n}, cuts ${cuts}`).toBe(whole);
        if (nativeRange) expect(viaAddon, `addon, n ${n}, cuts ${cuts}`).toBe(whole);
      }
    }
  });

  it('the addon rejects ranges outside the array and non-Uint8Array data', () => {
    if (!nativeRange) {
      expect(crc32cImplementation().name).not.toBe('native');
      return;
    }
    const b = Buffer.from('123456789');
    expect(() => nativeRange(b, 0, 10, 0)).toThrow(RangeError);
    expect(() => nativeRange(b, 5, 4, 0)).toThrow(RangeError);
    expect(() => nativeRange(b, -1, 4, 0)).toThrow(RangeError);
    expect(() => nativeRange(new Uint16Array(8) as unknown as Uint8Array, 0, 1, 0)).toThrow(TypeError);
    expect(() => nativeRange([1, 2, 3] as unknown as Uint8Array, 0, 1, 0)).toThrow(TypeError);
    expect(() => nativeRange(b, '0' as unknown as number, 1, 0)).toThrow(TypeError);
    // Negative or wide previous values wrap to 32 bits like the JS paths.
    expect(nativeRange(b, 0, 9, -1)).toBe(nodeRs(b, 0xffffffff));
    const detached = new Uint8Array(16);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    expect(nativeRange(detached, 0, 0, 7)).toBe(7);
    expect(() => nativeRange(detached, 0, 1, 0)).toThrow(RangeError);
  });
});

describe('the x86_64 fold paths (FFNET_CRC32C_FOLD)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ffnet-crc-fold-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** What the addon should pick here, by the CPU flags Linux reports (it clears those the OS does not save). */
  function expected(fold: string | undefined): string {
    if (process.arch === 'arm64') return 'armv8-crc32';
    const flags = new Set((/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').trim().split(/\s+/));
    const zmm = flags.has('vpclmulqdq') && flags.has('avx512f') && flags.has('avx512vl');
    const ymm = flags.has('vpclmulqdq') && flags.has('avx2');
    if (fold === 'off' || !ymm) return 'sse4.2';
    return zmm && fold !== 'ymm' ? 'sse4.2+vpclmulqdq-512' : 'sse4.2+vpclmulqdq-256';
  }

  it('every path this CPU has agrees with @node-rs/crc32 on both sides of each block edge, also when copying', () => {
    if (!nativeRange) {
      expect(crc32cImplementation().name).not.toBe('native');
      return;
    }
    const data = pool.subarray(0, (3 << 20) + 64);
    const file = join(tmp, 'data');
    writeFileSync(file, data);
    // Lengths around the fold's threshold (1 KiB), its 256-byte step and the three streams' blocks, at odd offsets.
    const cases: [start: number, end: number, previous: number][] = [];
    for (const n of [1023, 1024, 1025, 1279, 1280, 1281, 1535, 1536, 2047, 2048, 2049, 4095, 4097, 24_576, 25_343, 70_001, 1 << 20, (3 << 20) + 1]) {
      for (const at of [0, 1, 5, 63]) cases.push([at, at + n, (rand() * 4294967296) >>> 0]);
    }
    const script = `
      const { readFileSync } = await import('node:fs');
      const addon = (await import('node:module')).createRequire(process.argv[1])(process.argv[1]);
      const data = readFileSync(process.argv[2]);
      const out = [];
      for (const [start, end, previous] of JSON.parse(process.argv[3])) {
        const dst = Buffer.alloc(end - start + 3);
        const copied = addon.crc32cCopy(data, start, end, dst, 3, previous);
        out.push([addon.crc32c(data, start, end, previous), copied, dst.subarray(3).equals(data.subarray(start, end))]);
      }
      console.log(JSON.stringify({ instructions: addon.instructions, out }));`;
    const want = cases.map(([start, end, previous]) => nodeRs(data.subarray(start, end), previous));
    for (const fold of [undefined, 'ymm', 'off']) {
      const env = { ...process.env };
      if (fold === undefined) delete env.FFNET_CRC32C_FOLD;
      else env.FFNET_CRC32C_FOLD = fold;
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', script, join(pkg, 'dist/crc32c.node'), file, JSON.stringify(cases)], {
        encoding: 'utf8',
        env,
        maxBuffer: 1 << 24,
      });
      expect(run.stderr).toBe('');
      const got = JSON.parse(run.stdout) as { instructions: string; out: [number, number, boolean][] };
      expect(got.instructions, `FFNET_CRC32C_FOLD=${fold}`).toBe(expected(fold));
      got.out.forEach(([crc, copied, same], i) => {
        const label = `FFNET_CRC32C_FOLD=${fold}, len ${cases[i]![1] - cases[i]![0]} at +${cases[i]![0]}`;
        expect(crc >>> 0, label).toBe(want[i]);
        expect(copied >>> 0, `copy, ${label}`).toBe(want[i]);
        expect(same, `copy, ${label}`).toBe(true);
      });
    }
    expect(crc32cImplementation().instructions).toBe(expected(process.env.FFNET_CRC32C_FOLD));
  });
});

describe('crc32cCopy', () => {
  it('copies src[start..end) to dst at `at` and returns the CRC of the copy, native and exported, at every kind of length and alignment', () => {
    const r = rng(0xc0b1);
    const lengths = [0, 1, 7, 8, 9, 63, 64, 65, 767, 768, 769, 24_575, 24_576, 24_577, 70_001, 1 << 20, (1 << 20) + 13];
    for (const len of lengths) {
      for (let k = 0; k < 3; k++) {
        const start = Math.floor(r() * 9);
        const at = Math.floor(r() * 9);
        const previous = Math.floor(r() * 2 ** 32);
        const src = pool.subarray(0, start + len + 5);
        const want = nodeRs(src.subarray(start, start + len), previous);
        for (const [name, f] of [['crc32cCopy', crc32cCopy] as const, ...(nativeCopy ? [['addon', nativeCopy] as const] : [])]) {
          const dst = Buffer.alloc(at + len + 4, 0xee);
          expect(f(src, start, start + len, dst, at, previous), `${name} len ${len} +${start} -> +${at}`).toBe(want);
          expect(dst.subarray(at, at + len).equals(src.subarray(start, start + len)), `${name} bytes, len ${len}`).toBe(true);
          // Nothing outside the destination range is touched.
          expect(dst.subarray(0, at).every((b) => b === 0xee) && dst.subarray(at + len).every((b) => b === 0xee)).toBe(true);
        }
      }
    }
  });

  it('rejects ranges outside either array, and the addon overlapping ranges', () => {
    const src = Buffer.alloc(100_000, 1);
    const dst = Buffer.alloc(100_000);
    for (const f of [crc32cCopy, ...(nativeCopy ? [nativeCopy] : [])]) {
      expect(() => f(src, 0, 100_001, dst, 0, 0)).toThrow(RangeError);
      expect(() => f(src, 10, 5, dst, 0, 0)).toThrow(RangeError);
      expect(() => f(src, 0, 100_000, dst, 1, 0)).toThrow(RangeError);
      expect(() => f(src, 0, 10, dst, -1, 0)).toThrow(RangeError);
    }
    if (nativeCopy) {
      expect(() => nativeCopy(src, 0, 70_000, src, 1000, 0)).toThrow(/overlap/);
      expect(() => nativeCopy(src, 0, 1, [1] as unknown as Uint8Array, 0, 0)).toThrow(TypeError);
      // Disjoint ranges of one buffer are fine.
      expect(nativeCopy(src, 0, 40_000, src, 50_000, 0)).toBe(nodeRs(src.subarray(0, 40_000)));
    } else {
      expect(crc32cImplementation().name).not.toBe('native');
    }
  });
});

describe('crc32cRanges', () => {
  const rangesImpls = [['crc32cRanges', crc32cRanges] as const, ...(nativeRanges ? [['addon', nativeRanges] as const] : [])];

  it('gives each range the CRC it has alone, native and exported, for frames of every size back to back and overlapping', () => {
    const r = rng(0x5ea1);
    const sizes = [0, 1, 7, 8, 9, 63, 64, 65, 88, 767, 768, 769, 24_577, 70_001];
    const ranges = new Int32Array(2 * (sizes.length + 3));
    let at = 3;
    let n = 0;
    for (const size of sizes) {
      ranges[2 * n] = at;
      ranges[2 * n + 1] = at + size;
      at += size + Math.floor(r() * 9);
      n++;
    }
    // Ranges may overlap or repeat: each is checksummed on its own.
    for (const [a, b] of [
      [0, 100_000],
      [5, 5],
      [0, 100_000],
    ] as const) {
      ranges[2 * n] = a;
      ranges[2 * n + 1] = b;
      n++;
    }
    const want = Array.from({ length: n }, (_, i) => nodeRs(pool.subarray(ranges[2 * i]!, ranges[2 * i + 1]!)));
    for (const [name, f] of rangesImpls) {
      const out = new Int32Array(n + 2).fill(-7);
      f(pool, ranges, n, out);
      expect(
        Array.from(out.subarray(0, n), (c) => c >>> 0),
        name,
      ).toEqual(want);
      // Only the first `count` entries are written.
      expect(Array.from(out.subarray(n)), name).toEqual([-7, -7]);
    }
  });

  it('refuses a range outside the data, or a count past its arrays, before writing anything', () => {
    const data = Buffer.alloc(1000, 3);
    for (const [name, f] of rangesImpls) {
      const out = new Int32Array(4).fill(-7);
      for (const bad of [Int32Array.of(0, 10, 0, 1001), Int32Array.of(0, 10, 20, 10), Int32Array.of(0, 10, -1, 10)]) {
        expect(() => f(data, bad, 2, out), name).toThrow(RangeError);
        expect(Array.from(out), name).toEqual([-7, -7, -7, -7]);
      }
      expect(() => f(data, Int32Array.of(0, 10), 2, out), name).toThrow(RangeError);
      expect(() => f(data, Int32Array.of(0, 10, 0, 10, 0, 10), 3, new Int32Array(2)), name).toThrow(RangeError);
      f(data, Int32Array.of(0, 1000), 0, out);
      expect(out[0], name).toBe(-7);
    }
    if (nativeRanges) {
      expect(() => nativeRanges(data, [0, 10] as unknown as Int32Array, 1, new Int32Array(1))).toThrow(TypeError);
      expect(() => nativeRanges(data, new Int32Array(2), 1, new Uint32Array(1) as unknown as Int32Array)).toThrow(TypeError);
    }
  });

  it('batches only where one native call does them all', () => {
    expect(crc32cBatched()).toBe(crc32cImplementation().name === 'native' && nativeRanges !== undefined);
  });
});

describe('choosing the implementation at load', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ffnet-crc-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** A copy of dist/crc.js in its own package, so the addon and @node-rs/crc32 can be taken away. */
  function distCopy(name: string, opts: { addon?: Buffer; skipped?: string; nodeRs: boolean }): string {
    const dir = join(tmp, name);
    mkdirSync(join(dir, 'dist'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    copyFileSync(join(pkg, 'dist/crc.js'), join(dir, 'dist/crc.js'));
    if (opts.addon) writeFileSync(join(dir, 'dist/crc32c.node'), opts.addon);
    if (opts.skipped) writeFileSync(join(dir, 'dist/crc32c.skipped.txt'), `${opts.skipped}\n`);
    if (opts.nodeRs) {
      mkdirSync(join(dir, 'node_modules/@node-rs'), { recursive: true });
      symlinkSync(join(pkg, 'node_modules/@node-rs/crc32'), join(dir, 'node_modules/@node-rs/crc32'));
    }
    return join(dir, 'dist/crc.js');
  }

  it('honours FFNET_CRC32C and says why the addon is not in use', () => {
    const cases: { file: string; env?: string }[] = [
      { file: join(pkg, 'dist/index.js') },
      { file: join(pkg, 'dist/crc.js'), env: 'node-rs' },
      { file: join(pkg, 'dist/crc.js'), env: 'js' },
      { file: distCopy('skipped', { skipped: "C compiler 'cc' not found", nodeRs: true }) },
      { file: distCopy('bare', { nodeRs: false }) },
      { file: distCopy('corrupt', { addon: Buffer.from('not an ELF file'), nodeRs: true }) },
    ];
    // One process imports each case as a fresh module instance (query string), with its own env.
    const script = `
      const data = Buffer.alloc(300_000);
      for (let i = 0; i < data.length; i++) data[i] = Math.imul(i, 2654435761) >>> 24;
      const out = [];
      for (const [n, c] of JSON.parse(process.argv[1]).entries()) {
        if (c.env === undefined) delete process.env.FFNET_CRC32C; else process.env.FFNET_CRC32C = c.env;
        const m = await import(new URL('file://' + c.file + '?case=' + n).href);
        const copy = Buffer.alloc(data.length + 3);
        const copied = m.crc32cCopy(data, 0, data.length, copy, 3, 0);
        const crcs = new Int32Array(2);
        m.crc32cRanges(data, Int32Array.of(0, data.length, 7, 7), 2, crcs);
        out.push({ impl: m.crc32cImplementation(), big: m.crc32c(data), vector: m.crc32c(Buffer.from('123456789')), copied, same: copy.subarray(3).equals(data),
          ranges: Array.from(crcs, (c) => c >>> 0), batched: m.crc32cBatched() });
      }
      console.log(JSON.stringify(out));`;
    const env = { ...process.env };
    delete env.FFNET_CRC32C;
    // pnpm's bin shims put the hoisted store on NODE_PATH, which would find @node-rs/crc32 for the bare copy.
    delete env.NODE_PATH;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(cases)], {
      encoding: 'utf8',
      env,
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const data = Buffer.alloc(300_000);
    for (let i = 0; i < data.length; i++) data[i] = Math.imul(i, 2654435761) >>> 24;
    const big = nodeRs(data);
    const got = JSON.parse(run.stdout) as {
      impl: { name: string; reason?: string };
      big: number;
      vector: number;
      copied: number;
      same: boolean;
      ranges: number[];
      batched: boolean;
    }[];
    for (const g of got) {
      expect(g.big).toBe(big);
      expect(g.ranges).toEqual([big, 0]);
      expect(g.batched).toBe(g.impl.name === 'native');
      expect(g.copied).toBe(big);
      expect(g.same).toBe(true);
      expect(g.vector).toBe(0x58e3fa20);
    }
    expect(got.map((g) => g.impl.name)).toEqual([crc32cImplementation().name, 'node-rs', 'js', 'node-rs', 'js', 'node-rs']);
    expect(got[1]!.impl.reason).toBe('FFNET_CRC32C=node-rs');
    expect(got[2]!.impl.reason).toBe('FFNET_CRC32C=js');
    expect(got[3]!.impl.reason).toBe("native addon not built: C compiler 'cc' not found");
    expect(got[4]!.impl.reason).toMatch(/^native addon not built \(no .*crc32c\.node.*; @node-rs\/crc32 did not load: /);
    expect(got[5]!.impl.reason).toMatch(/^loading .*crc32c\.node failed: /);
  });
});

describe('scripts/build-native.mjs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ffnet-crc-build-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'scripts'));
  mkdirSync(join(dir, 'native'));
  copyFileSync(join(pkg, 'scripts/build-native.mjs'), join(dir, 'scripts/build-native.mjs'));
  const out = join(dir, 'dist/crc32c.node');
  const note = join(dir, 'dist/crc32c.skipped.txt');
  const build = (env: Record<string, string>) =>
    spawnSync(process.execPath, [join(dir, 'scripts/build-native.mjs')], { encoding: 'utf8', env: { ...process.env, ...env } });

  it('says in one line why it did not build, and exits 0', () => {
    writeFileSync(join(dir, 'native/crc32c.c'), '#error deliberately broken\n');
    const broken = build({});
    expect(broken.status).toBe(0);
    expect(broken.stdout.trim().split('\n')).toHaveLength(1);
    expect(broken.stdout).toMatch(/not built \(.*failed: .*deliberately broken\); using the @node-rs\/crc32 \/ JS fallback/);
    expect(existsSync(out)).toBe(false);
    expect(readFileSync(note, 'utf8')).toMatch(/deliberately broken/);

    const noCc = build({ CC: 'ffnet-no-such-cc' });
    expect(noCc.status).toBe(0);
    expect(noCc.stdout.trim()).toBe("@ffnet/serde: native CRC-32C not built (C compiler 'ffnet-no-such-cc' not found); using the @node-rs/crc32 / JS fallback");
    expect(readFileSync(note, 'utf8').trim()).toBe("C compiler 'ffnet-no-such-cc' not found");
  });

  it('compiles a working addon, then leaves an up-to-date one alone', () => {
    if (crc32cImplementation().name !== 'native') {
      expect(crc32cImplementation().reason).toMatch(/\S/);
      return;
    }
    copyFileSync(join(pkg, 'native/crc32c.c'), join(dir, 'native/crc32c.c'));
    const first = build({});
    expect(first.stdout + first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(existsSync(note)).toBe(false);
    const built = require(out) as { crc32c: RangeCrc };
    expect(built.crc32c(pool, 5, 100_005, 0)).toBe(nodeRs(pool.subarray(5, 100_005)));
    const mtime = statSync(out).mtimeMs;
    expect(build({ CC: 'ffnet-no-such-cc' }).stdout).toBe('');
    expect(statSync(out).mtimeMs).toBe(mtime);
  });
});
