/**
 * A fixed-size log-linear latency histogram: exact below 16 µs, then 16 buckets per power of two (each at most
 * 1/16 of its value wide), up to 2^31 µs (about 36 minutes; longer calls land in the last bucket, `max` stays
 * exact). 448 counters, whatever the traffic; recording is a few integer operations and one increment.
 */
const SUB_BITS = 4;
const SUB = 1 << SUB_BITS;
const MAX_EXP = 30;
export const LATENCY_BUCKETS = (MAX_EXP - SUB_BITS + 2) * SUB;
const MAX_US = 2 ** 31 - 1;

function indexOf(us: number): number {
  if (us < SUB) return us;
  const e = 31 - Math.clz32(us);
  return (e - SUB_BITS + 1) * SUB + ((us >>> (e - SUB_BITS)) & (SUB - 1));
}

/** The largest value (µs) a bucket holds. */
function upperUs(index: number): number {
  if (index < SUB) return index;
  const e = Math.floor(index / SUB) + SUB_BITS - 1;
  const sub = index % SUB;
  return ((SUB + sub + 1) << (e - SUB_BITS)) - 1;
}

/** The per-method latency of MethodStats, in milliseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export class LatencyHistogram {
  readonly counts = new Float64Array(LATENCY_BUCKETS);
  count = 0;
  maxMs = 0;

  record(ms: number): void {
    // Integer microseconds; NaN and negatives (a clock step) count as 0.
    let us = ms > 0 ? Math.floor(ms * 1000) : 0;
    if (us > MAX_US) us = MAX_US;
    this.counts[indexOf(us)]!++;
    this.count++;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  /** Adds `other`'s counts to this one (a method served by several groups). */
  merge(other: LatencyHistogram): void {
    const a = this.counts;
    const b = other.counts;
    for (let i = 0; i < a.length; i++) a[i]! += b[i]!;
    this.count += other.count;
    if (other.maxMs > this.maxMs) this.maxMs = other.maxMs;
  }

  /** The value (ms) at quantile `q`: the upper edge of its bucket, never above the largest value seen. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    const c = this.counts;
    for (let i = 0; i < c.length; i++) {
      seen += c[i]!;
      if (seen >= rank) return Math.min(upperUs(i) / 1000, this.maxMs);
    }
    return this.maxMs;
  }

  summary(): LatencySummary {
    return { count: this.count, p50: this.quantile(0.5), p90: this.quantile(0.9), p99: this.quantile(0.99), max: this.maxMs };
  }
}
