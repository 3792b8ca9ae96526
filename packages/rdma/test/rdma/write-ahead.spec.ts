// The response right behind the WRITEs (issue 15): a handler posts its RDMA WRITEs with `until: 'posted'` and
// returns at once, so its response SEND goes out on the queue pair before the WRITEs have completed. Runs on rxe0
// in the VM (pnpm test:rdma). What must hold: the client finds the data in place (crc) when the response arrives,
// and a WRITE that fails (a revoked window, a forged rkey) gives the client an error, never that response.
import { randomFillSync } from 'node:crypto';
import { IBManager, RDMABuf, RDMARemoteBuf } from '@ffnet/device';
import { crc32c, defineService, type FfnetError, InvalidArgError, method, StatusCode } from '@ffnet/serde';
import { Client, implement, Server } from '@ffnet/server';
import { tcp } from '@ffnet/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupConfig } from '../../../server/test/helpers.js';
import { exposeOn, rdma, writeTransmission } from '../../src/index.js';

const MAX = 256 * 1024;
const LOST = [StatusCode.SocketClosed, StatusCode.SocketError];

interface FillReq {
  tag: number;
  bufs: RDMARemoteBuf[];
  sizes: number[];
  until: 'posted' | 'completed';
}

/** What the handler saw for one call. */
interface Seen {
  /** onCompleted calls that had happened when post() resolved (or rejected). */
  atSettle: string[];
  /** Every event, in order: 'resolved' / 'rejected', 'completed' / 'failed:<status>'. */
  events: string[];
  /** The handler got as far as returning its response. */
  returned: boolean;
}

const WriteAheadService = defineService({
  name: 'WriteAheadTest',
  id: 7302,
  methods: {
    /** Writes fresh random bytes, sizes[i] of them, into bufs[i], in one transmission; answers their crc32c. */
    fill: method<FillReq, { crcs: number[] }>(1),
  },
});

const backends = [tcp(), rdma()];
let server: Server;
let address: string;
const srcs: RDMABuf[] = [];
const seen = new Map<number, Seen>();
let nextTag = 1;

beforeAll(async () => {
  IBManager.start({ portRefreshMs: 0 });
  for (let i = 0; i < 4; i++) srcs.push(RDMABuf.allocate(MAX));
  server = new Server({ backends, groups: [groupConfig('rdma', { port: 0 })] });
  server.addService(
    implement(WriteAheadService, {
      fill: async (ctx, req) => {
        if (!Array.isArray(req.bufs) || req.bufs.length > srcs.length || req.sizes.length !== req.bufs.length) {
          throw new InvalidArgError('fill: bufs and sizes must pair up, at most 4');
        }
        const s: Seen = { atSettle: [], events: [], returned: false };
        seen.set(req.tag, s);
        const tx = writeTransmission(ctx);
        const crcs: number[] = [];
        // Each call its own bytes: a response that arrived ahead of its data would find the previous call's.
        req.bufs.forEach((b, i) => {
          const src = srcs[i]!.subrange(0, req.sizes[i]!)!;
          randomFillSync(src.buffer);
          crcs.push(crc32c(src.buffer));
          tx.add(b.first(req.sizes[i]!)!, src);
        });
        const onCompleted = (err: FfnetError | null) => {
          s.events.push(err === null ? 'completed' : `failed:${(err as { statusName?: string }).statusName ?? err.code}`);
        };
        try {
          await tx.post({ until: req.until, onCompleted });
        } catch (e) {
          s.atSettle = [...s.events];
          s.events.push('rejected');
          throw e;
        }
        s.atSettle = [...s.events];
        s.events.push('resolved');
        s.returned = true;
        return { crcs };
      },
    }),
  );
  await server.start();
  address = server.addresses[0]!;
});

afterAll(async () => {
  await server?.stop();
  for (const b of srcs) b.release();
  IBManager.stop();
});

async function until(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function sizesFor(i: number, n: number): number[] {
  // Varied lengths, some not a multiple of anything rxe segments by, up to MAX.
  return Array.from({ length: n }, (_, k) => MAX - ((i * 7919 + k * 104_729) % (MAX / 2)));
}

describe("RDMA WRITEs with post({ until: 'posted' }) over rdma://", () => {
  it('the response arrives behind the WRITEs: every buffer holds the crc the response names; post() resolved before the completion', async () => {
    const client = new Client({ backends, timeoutMs: 30_000 });
    const bufs = Array.from({ length: 4 }, () => RDMABuf.allocate(MAX));
    try {
      const stub = client.stub(WriteAheadService, address);
      for (let i = 0; i < 24; i++) {
        const n = 1 + (i % 4);
        const sizes = sizesFor(i, n);
        for (const b of bufs) b.buffer.fill(0);
        const exposure = await exposeOn(client, address, bufs.slice(0, n), { access: 'write' });
        const tag = nextTag++;
        let rsp: { crcs: number[] };
        try {
          rsp = await stub.fill({ tag, bufs: [...exposure.remotes], sizes, until: 'posted' });
        } finally {
          await exposure.revoke();
        }
        // Checked against what the buffers hold when the response is handed over, not later.
        for (let k = 0; k < n; k++) expect(crc32c(bufs[k]!.buffer.subarray(0, sizes[k]!))).toBe(rsp.crcs[k]);
        const s = seen.get(tag)!;
        expect(s.atSettle).toEqual([]);
        await until(() => s.events.length === 2);
        expect(s.events).toEqual(['resolved', 'completed']);
      }
    } finally {
      await client.stop();
      for (const b of bufs) b.release();
    }
  });

  it("control: with until: 'completed' (the default) post() resolves only after the completion", async () => {
    const client = new Client({ backends, timeoutMs: 30_000 });
    const buf = RDMABuf.allocate(MAX);
    try {
      const stub = client.stub(WriteAheadService, address);
      const exposure = await exposeOn(client, address, buf, { access: 'write' });
      const tag = nextTag++;
      let rsp: { crcs: number[] };
      try {
        rsp = await stub.fill({ tag, bufs: [...exposure.remotes], sizes: [MAX], until: 'completed' });
      } finally {
        await exposure.revoke();
      }
      expect(crc32c(buf.buffer)).toBe(rsp.crcs[0]);
      expect(seen.get(tag)!.atSettle).toEqual(['completed']);
      expect(seen.get(tag)!.events).toEqual(['completed', 'resolved']);
    } finally {
      await client.stop();
      buf.release();
    }
  });

  for (const kind of ['a revoked window', 'a forged rkey', 'a batch whose second descriptor has a forged rkey'] as const) {
    it(`a WRITE into ${kind}: the handler's post() resolved and it answered, yet the client gets a connection error, never the response`, async () => {
      const client = new Client({ backends, timeoutMs: 30_000 });
      const bufs = [RDMABuf.allocate(MAX), RDMABuf.allocate(MAX)];
      try {
        const stub = client.stub(WriteAheadService, address);
        for (const b of bufs) b.buffer.fill(0);
        const n = kind === 'a batch whose second descriptor has a forged rkey' ? 2 : 1;
        const exposure = await exposeOn(client, address, bufs.slice(0, n), { access: 'write' });
        let remotes = [...exposure.remotes];
        if (kind === 'a revoked window') {
          await exposure.revoke();
        } else {
          const forge = (r: RDMARemoteBuf) =>
            new RDMARemoteBuf(
              r.addr,
              r.length,
              r.rkeys.map((k) => ({ devId: k.devId, rkey: (k.rkey ^ 0x5a) >>> 0 })),
            );
          remotes = remotes.map((r, i) => (i === n - 1 ? forge(r) : r));
        }
        const tag = nextTag++;
        const got = await stub.fill({ tag, bufs: remotes, sizes: remotes.map(() => MAX), until: 'posted' }).then(
          (rsp) => ({ ok: true as const, rsp }),
          (e: unknown) => ({ ok: false as const, err: e as FfnetError }),
        );
        await exposure.revoke();

        expect(got.ok).toBe(false);
        if (!got.ok) expect(LOST).toContain(got.err.code);
        const s = seen.get(tag)!;
        // The server did answer with a success: the connection's failure is what kept it from the client.
        expect(s.returned).toBe(true);
        expect(s.atSettle).toEqual([]);
        await until(() => s.events.length === 2);
        expect(s.events).toEqual(['resolved', 'failed:REM_ACCESS_ERR']);
        // The descriptor that was refused: nothing landed in it.
        expect(bufs[n - 1]!.buffer.every((x) => x === 0)).toBe(true);

        // RC semantics: that connection is gone; the next call dials a new one and works.
        const buf = bufs[0]!;
        const again = await exposeOn(client, address, buf, { access: 'write' });
        const rsp = await stub.fill({ tag: nextTag++, bufs: [...again.remotes], sizes: [MAX], until: 'posted' });
        await again.revoke();
        expect(crc32c(buf.buffer)).toBe(rsp.crcs[0]);
      } finally {
        await client.stop();
        for (const b of bufs) b.release();
      }
    });
  }
});
