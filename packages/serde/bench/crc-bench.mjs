// CRC-32C throughput of whichever implementation this process picked (FFNET_CRC32C forces a fallback,
// FFNET_CRC32C_FOLD narrows the native addon's x86_64 fold).
// Run alone (`node bench/crc-bench.mjs`) or from bench.mjs, which runs it once per implementation.
import { crc32c, crc32cImplementation } from '../dist/index.js';

const buf = Buffer.alloc(1 << 20);
for (let i = 0; i < buf.length; i += 4) buf.writeUInt32LE(Math.imul(i, 2654435761) >>> 0, i);

/** Best of 5 rounds of ~`ms / 5` each, in ns per call: the machine is shared. */
function perCall(fn, ms = 250) {
  let sink = 0;
  for (let i = 0; i < 200; i++) sink ^= fn();
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 5; r++) {
    let n = 0;
    const t0 = process.hrtime.bigint();
    const end = t0 + BigInt(Math.ceil(ms / 5)) * 1_000_000n;
    let now = t0;
    while (now < end) {
      for (let i = 0; i < 100; i++) sink ^= fn();
      n += 100;
      now = process.hrtime.bigint();
    }
    best = Math.min(best, Number(now - t0) / n);
  }
  if (sink === 0.5) console.log(sink); // keeps the calls observable
  return best;
}

const { name, instructions } = crc32cImplementation();
const gbs = buf.length / perCall(() => crc32c(buf), 500);
const calls = [64, 160, 512, 4096].map((n) => {
  const view = buf.subarray(8, 8 + n);
  return `${n} B ${perCall(() => crc32c(view)).toFixed(0)} ns`;
});
console.log(`crc32c ${name.padEnd(7)} ${(instructions ?? '').padEnd(21)} 1 MiB ${gbs.toFixed(2).padStart(6)} GB/s | ${calls.join(', ')}`);
