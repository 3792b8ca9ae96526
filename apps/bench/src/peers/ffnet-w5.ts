// W5 for ffnet, the 3FS batchRead pattern: the client registers one 1 MiB RDMABuf per in-flight slot and, per call,
// exposes it through a memory window bound to its connection (write access only), sends that descriptor, and revokes
// the window once the answer is in, before the slot's next call (issue 12's rkey scoping); the server applies for a
// transmission slot (a no-op unless the client opted into RDMAControl, as in 3FS), RDMA-writes 1 MiB from its own
// registered buffer into each descriptor, and answers with the length and crc32c. Every SAMPLE_EVERY-th call per slot
// the client zeroes its buffer first and checks the crc32c of what landed, so a run that posts a number has also
// moved real data.
//
// FFNET_BENCH_W5_UNTIL=posted makes the server post its response right behind the WRITEs (`post({ until: 'posted' })`):
// the queue pair executes in order, so the client still finds the data in place when the response arrives, and a
// failed WRITE fails the connection instead. The default waits for the WRITEs' completion, as before issue 15: under
// TCG posting behind measured about 7 % slower with one descriptor per request (apps/bench README).
//
// FFNET_BENCH_W5_BATCH=k (a divisor of the 8 slots, default 1) groups the slots k at a time into one request that
// carries k descriptors, as 3FS's batchRead carries several IOs; the server adds them to one transmission, posted as
// one chain of k WRITEs. The workload stays the same: 8 buffers of 1 MiB in flight, 1 MiB per WRITE, and a "call"
// in the tables is still one 1 MiB buffer written and checked (8/k requests in flight, k calls each).
import { IBManager, RDMABuf, RDMARemoteBuf } from '@ffnet/device';
import type { IBSocket, RDMAWindow } from '@ffnet/rdma';
// A namespace import: `--baseline` over tls runs this child against an older checkout's packages, which may lack
// ibSocketTo; a named import would fail to link there even when W5 never runs.
import * as ffnetRdma from '@ffnet/rdma';
import { crc32c, DataCorruptionError, defineService, InvalidArgError, method } from '@ffnet/serde';
import { type Client, implement, type Stub } from '@ffnet/server';
import type { RpcWorkload } from '../workloads.js';
import { payload } from '../workloads.js';
import type { DoneFn, PeerClient } from './types.js';

export interface FillReq {
  bufs: RDMARemoteBuf[];
}

export interface FillRsp {
  length: number;
  crc: number;
}

export const OneSidedService = defineService({
  name: 'BenchOneSided',
  id: 7002,
  methods: {
    fill: method<FillReq, FillRsp>(1),
  },
});

/** Sampled, not every call: zeroing and hashing 1 MiB per call would measure the CPU, not the RDMA path. */
const SAMPLE_EVERY = 16;
/** How long a write waits for the client's RDMAControl go-ahead; TCG emulation is slow. */
const APPLY_TIMEOUT_MS = 10_000;
/** Descriptors one request may carry: a chain of at most this many WRITEs (connect's maxRdmaWrPerPost is 32). */
const MAX_BATCH = 32;

/** Slots per request (FFNET_BENCH_W5_BATCH); must divide the workload's in-flight count. */
export function w5Batch(inflight: number): number {
  const raw = process.env.FFNET_BENCH_W5_BATCH;
  const k = raw === undefined || raw === '' ? 1 : Number(raw);
  if (!Number.isInteger(k) || k < 1 || k > MAX_BATCH || inflight % k !== 0) {
    throw new InvalidArgError(`FFNET_BENCH_W5_BATCH=${raw}: needs an integer from 1 to ${MAX_BATCH} dividing ${inflight}`);
  }
  return k;
}

/** The post's resolution: 'completed' (as on main) unless FFNET_BENCH_W5_UNTIL=posted. */
function postOptions(): { until: 'posted' | 'completed' } {
  const raw = process.env.FFNET_BENCH_W5_UNTIL;
  if (raw === undefined || raw === '' || raw === 'completed') return { until: 'completed' };
  if (raw === 'posted') return { until: 'posted' };
  throw new InvalidArgError(`FFNET_BENCH_W5_UNTIL=${raw}: 'posted' or 'completed'`);
}

function startDevices(): void {
  // Registered memory carries keys only for IBManager's devices.
  if (!IBManager.started) IBManager.start();
}

export function oneSidedService(w: RpcWorkload) {
  startDevices();
  const size = w.rdmaSize ?? 0;
  // One source for every write: the writes only read it, so concurrent calls can share it.
  const src = RDMABuf.allocate(size);
  src.buffer.set(payload(size));
  const crc = crc32c(src.buffer);
  // One object for every post: no allocation per call. The source buffer is never changed, so nothing waits for
  // the WRITEs' completion before reusing it.
  const post = postOptions();
  const service = implement(OneSidedService, {
    fill: async (ctx, req) => {
      const bufs = req?.bufs;
      if (!Array.isArray(bufs) || bufs.length === 0 || bufs.length > MAX_BATCH) {
        throw new InvalidArgError(`W5: the request needs 1 to ${MAX_BATCH} RDMARemoteBufs`);
      }
      const tx = ffnetRdma.writeTransmission(ctx);
      for (const b of bufs) {
        if (!(b instanceof RDMARemoteBuf) || b.length < size) throw new InvalidArgError(`W5: every RDMARemoteBuf needs at least ${size} bytes`);
        tx.add(b.first(size)!, src);
      }
      await tx.applyTransmission(APPLY_TIMEOUT_MS);
      await tx.post(post);
      return { length: size, crc };
    },
  });
  return { service, close: () => src.release() };
}

export class OneSidedClient implements PeerClient {
  private readonly bufs: RDMABuf[] = [];
  private readonly windows: (RDMAWindow | null)[] = [];
  private readonly seq: number[] = [];
  /** Per group of `batch` slots: how many have been asked for since its last request, and its callbacks. */
  private readonly ready: number[] = [];
  private readonly ok: ((rsp: FillRsp) => void)[] = [];
  private readonly err: ((e: unknown) => void)[] = [];
  private readonly batch: number;
  private sock: IBSocket | undefined;

  constructor(
    private readonly client: Client,
    private readonly stub: Stub<typeof OneSidedService>,
    private readonly address: string,
    w: RpcWorkload,
    private readonly done: DoneFn,
  ) {
    startDevices();
    const size = w.rdmaSize ?? 0;
    this.batch = w5Batch(w.inflight);
    for (let slot = 0; slot < w.inflight; slot++) {
      this.bufs.push(RDMABuf.allocate(size));
      this.windows.push(null);
      this.seq.push(0);
    }
    for (let g = 0; g < w.inflight / this.batch; g++) {
      this.ready.push(0);
      this.ok.push((rsp) => this.settle(g, rsp, undefined, size));
      this.err.push((e) => this.settle(g, undefined, e instanceof Error ? e : new Error(String(e)), size));
    }
  }

  /** One call outside the clock, checked, so that connecting and the first registration are never timed. */
  async first(): Promise<void> {
    const buf = this.bufs[0]!;
    buf.buffer.fill(0);
    this.sock = await ffnetRdma.ibSocketTo(this.client, this.address);
    const win = await this.sock.expose(buf, { access: 'write' });
    try {
      const rsp = await this.stub.fill({ bufs: [win.remote] });
      const e = this.verify(buf, rsp, buf.buffer.length);
      if (e !== undefined) throw e;
    } finally {
      await win.revoke();
    }
  }

  call(slot: number): void {
    // Zeroed before a sampled call, so the check proves this call's write landed.
    if (this.seq[slot]! % SAMPLE_EVERY === 0) this.bufs[slot]!.buffer.fill(0);
    const g = Math.floor(slot / this.batch);
    let win: RDMAWindow | null;
    try {
      // At most `inflight` windows at once, below the socket's 64: never waits.
      win = this.sock!.tryExpose(this.bufs[slot]!, 'write');
      if (win === null) throw new InvalidArgError('W5: no memory window free');
    } catch (e) {
      this.windows[slot] = null;
      this.done(slot, e instanceof Error ? e : new Error(String(e)));
      return;
    }
    this.windows[slot] = win;
    // The load generator asks again for every slot of a group as its response is handled, in one go: the group's
    // request leaves once all of its slots are in.
    if (++this.ready[g]! < this.batch) return;
    this.ready[g] = 0;
    const remotes: RDMARemoteBuf[] = [];
    for (let s = g * this.batch; s < (g + 1) * this.batch; s++) remotes.push(this.windows[s]!.remote);
    this.stub.fill({ bufs: remotes }).then(this.ok[g], this.err[g]);
  }

  /** Revokes the group's windows before its slots are reported done, so their next calls never find a buffer exposed. */
  private settle(g: number, rsp: FillRsp | undefined, e: Error | undefined, size: number): void {
    const first = g * this.batch;
    const end = first + this.batch;
    const report = () => {
      for (let s = first; s < end; s++) this.done(s, e ?? this.check(s, rsp!, size));
    };
    if (this.batch === 1) {
      const win = this.windows[first];
      this.windows[first] = null;
      if (win === null || win === undefined) report();
      else win.revoke().then(report);
      return;
    }
    const revokes: Promise<void>[] = [];
    for (let s = first; s < end; s++) {
      const win = this.windows[s];
      this.windows[s] = null;
      if (win !== null && win !== undefined) revokes.push(win.revoke());
    }
    Promise.all(revokes).then(report);
  }

  private check(slot: number, rsp: FillRsp, size: number): Error | undefined {
    const n = this.seq[slot]!;
    this.seq[slot] = n + 1;
    if (rsp.length !== size) return new DataCorruptionError(`W5: the server wrote ${rsp.length} bytes, expected ${size}`);
    return n % SAMPLE_EVERY === 0 ? this.verify(this.bufs[slot]!, rsp, size) : undefined;
  }

  private verify(buf: RDMABuf, rsp: FillRsp, size: number): Error | undefined {
    const got = crc32c(buf.buffer.subarray(0, size));
    return got === rsp.crc ? undefined : new DataCorruptionError(`W5: crc32c ${got} of the written buffer, the server sent ${rsp.crc}`);
  }

  async close(): Promise<void> {
    await this.client.stop();
    for (const b of this.bufs) b.release();
  }
}
