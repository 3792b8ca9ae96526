// W5 for ffnet, the 3FS batchRead pattern: the client registers one 1 MiB RDMABuf per in-flight slot and, per call,
// exposes it through a memory window bound to its connection (write access only), sends that descriptor, and revokes
// the window once the answer is in, before the slot's next call (issue 12's rkey scoping); the server applies for a transmission slot (a no-op unless the client opted into RDMAControl,
// as in 3FS), RDMA-writes 1 MiB from its own registered
// buffer into it, and answers with the length and crc32c. Every SAMPLE_EVERY-th call per slot the client zeroes
// its buffer first and checks the crc32c of what landed, so a run that posts a number has also moved real data.
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
  buf: RDMARemoteBuf;
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
  const service = implement(OneSidedService, {
    fill: async (ctx, req) => {
      if (!(req?.buf instanceof RDMARemoteBuf) || req.buf.length < size) {
        throw new InvalidArgError(`W5: the request needs an RDMARemoteBuf of at least ${size} bytes`);
      }
      const tx = ffnetRdma.writeTransmission(ctx);
      tx.add(req.buf.first(size)!, src);
      await tx.applyTransmission(APPLY_TIMEOUT_MS);
      await tx.post();
      return { length: size, crc };
    },
  });
  return { service, close: () => src.release() };
}

export class OneSidedClient implements PeerClient {
  private readonly bufs: RDMABuf[] = [];
  private readonly windows: (RDMAWindow | null)[] = [];
  private readonly ok: ((rsp: FillRsp) => void)[] = [];
  private readonly err: ((e: unknown) => void)[] = [];
  private readonly seq: number[] = [];
  private sock: IBSocket | undefined;

  constructor(
    private readonly client: Client,
    private readonly stub: Stub<typeof OneSidedService>,
    private readonly address: string,
    w: RpcWorkload,
    done: DoneFn,
  ) {
    startDevices();
    const size = w.rdmaSize ?? 0;
    for (let slot = 0; slot < w.inflight; slot++) {
      const buf = RDMABuf.allocate(size);
      this.bufs.push(buf);
      this.windows.push(null);
      this.seq.push(0);
      // The window is revoked before the slot is reported done, so its next call never finds the buffer exposed.
      this.ok.push((rsp) => this.settle(slot, () => done(slot, this.check(slot, rsp, size))));
      this.err.push((e) => this.settle(slot, () => done(slot, e instanceof Error ? e : new Error(String(e)))));
    }
  }

  /** One call outside the clock, checked, so that connecting and the first registration are never timed. */
  async first(): Promise<void> {
    const buf = this.bufs[0]!;
    buf.buffer.fill(0);
    this.sock = await ffnetRdma.ibSocketTo(this.client, this.address);
    const win = await this.sock.expose(buf, { access: 'write' });
    try {
      const rsp = await this.stub.fill({ buf: win.remote });
      const e = this.verify(buf, rsp, buf.buffer.length);
      if (e !== undefined) throw e;
    } finally {
      await win.revoke();
    }
  }

  call(slot: number): void {
    // Zeroed before a sampled call, so the check proves this call's write landed.
    if (this.seq[slot]! % SAMPLE_EVERY === 0) this.bufs[slot]!.buffer.fill(0);
    let win: RDMAWindow | null;
    try {
      // At most `inflight` windows at once, below the socket's 64: never waits.
      win = this.sock!.tryExpose(this.bufs[slot]!, 'write');
      if (win === null) throw new InvalidArgError('W5: no memory window free');
    } catch (e) {
      this.err[slot]!(e);
      return;
    }
    this.windows[slot] = win;
    this.stub.fill({ buf: win.remote }).then(this.ok[slot], this.err[slot]);
  }

  private settle(slot: number, report: () => void): void {
    const win = this.windows[slot];
    this.windows[slot] = null;
    if (win === null || win === undefined) report();
    else win.revoke().then(report);
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
