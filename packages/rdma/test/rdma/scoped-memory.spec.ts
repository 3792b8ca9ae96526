// Call-scoped RDMA memory through the RPC stack on rxe0 (issue 12): a client exposes its buffer for one call with
// withExposed/exposeOn; the server's one-sided writes reach it during that call, over that connection only.
import { IBManager, RDMABUF_DEVICE_SCOPE_ACCESS, RDMABuf, RDMARemoteBuf } from '@ffnet/device';
import { defineService, type FfnetError, InvalidArgError, method, StatusCode } from '@ffnet/serde';
import { Client, implement, Server } from '@ffnet/server';
import { tcp } from '@ffnet/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupConfig } from '../../../server/test/helpers.js';
import { exposeOn, rdma, withExposed, writeTransmission } from '../../src/index.js';

const SIZE = 64 * 1024;
const LOST = [StatusCode.SocketClosed, StatusCode.SocketError];

interface FillReq {
  buf?: RDMARemoteBuf;
  byte: number;
}

const ScopedService = defineService({
  name: 'ScopedMemoryTest',
  id: 7301,
  methods: {
    /** Writes `byte` into `buf` and remembers `buf`. */
    fill: method<FillReq, { ok: boolean }>(1),
    /** Writes `byte` into the `buf` remembered from an earlier call, over this call's connection. */
    replay: method<FillReq, { ok: boolean }>(2),
    /** Remembers `buf`, waits until released, then writes `byte` into it. */
    hold: method<FillReq, { ok: boolean }>(3),
  },
});

const backends = [tcp(), rdma()];
let server: Server;
let address: string;
let src: RDMABuf;
let remembered: RDMARemoteBuf | undefined;
let replayError: (FfnetError & { statusName?: string }) | undefined;
let release: (() => void) | undefined;
/** Read through a call, so TypeScript does not narrow it to the `undefined` assigned before the call. */
const lastReplayError = () => replayError;
let holding: Promise<void> | undefined;
let signalHolding: (() => void) | undefined;

async function write(ctx: Parameters<typeof writeTransmission>[0], remote: RDMARemoteBuf, byte: number): Promise<void> {
  src.buffer.fill(byte);
  await writeTransmission(ctx).add(remote.first(SIZE)!, src).post();
}

beforeAll(async () => {
  IBManager.start({ portRefreshMs: 0 });
  src = RDMABuf.allocate(SIZE);
  server = new Server({ backends, groups: [groupConfig('rdma', { port: 0 })] });
  server.addService(
    implement(ScopedService, {
      fill: async (ctx, req) => {
        if (!(req.buf instanceof RDMARemoteBuf)) throw new InvalidArgError('fill needs buf');
        remembered = req.buf;
        await write(ctx, req.buf, req.byte);
        return { ok: true };
      },
      replay: async (ctx, req) => {
        try {
          await write(ctx, remembered!, req.byte);
        } catch (e) {
          replayError = e as FfnetError;
          throw e;
        }
        return { ok: true };
      },
      hold: async (ctx, req) => {
        remembered = req.buf;
        await new Promise<void>((r) => {
          release = r;
          signalHolding?.();
        });
        await write(ctx, req.buf!, req.byte);
        return { ok: true };
      },
    }),
  );
  await server.start();
  address = server.addresses[0]!;
});

afterAll(async () => {
  await server?.stop();
  src?.release();
  IBManager.stop();
});

describe('call-scoped RDMA memory over rdma://', () => {
  it('after a call completes, the server reusing its rkey gets a remote access error; the connection closes and the next call reconnects', async () => {
    const client = new Client({ backends, timeoutMs: 30_000 });
    const buf = RDMABuf.allocate(SIZE);
    try {
      const stub = client.stub(ScopedService, address);
      buf.buffer.fill(0);
      expect(await withExposed(client, address, buf, ([r]) => stub.fill({ buf: r!, byte: 1 }), { access: 'write' })).toEqual({ ok: true });
      expect(buf.buffer.every((x) => x === 1)).toBe(true);

      // The call is over and its window revoked: the same (address, rkey) no longer reaches the buffer.
      replayError = undefined;
      const err = await stub.replay({ byte: 2 }).then(
        () => undefined,
        (e: unknown) => e as FfnetError,
      );
      expect(LOST).toContain(err?.code);
      expect(lastReplayError()?.code).toBe(StatusCode.RDMAError);
      expect(lastReplayError()?.statusName).toBe('REM_ACCESS_ERR');
      expect(lastReplayError()?.peer).toBeTruthy();
      expect(buf.buffer.every((x) => x === 1)).toBe(true);

      // RC semantics, as in 3FS: the remote access error broke that connection; the next call dials a new one.
      expect(await withExposed(client, address, buf, ([r]) => stub.fill({ buf: r!, byte: 3 }), { access: 'write' })).toEqual({ ok: true });
      expect(buf.buffer.every((x) => x === 3)).toBe(true);
    } finally {
      await client.stop();
      buf.release();
    }
  });

  it('control: with the device-scope opt-out (remote rights on the MR, as before issue 12) the same replays succeed', async () => {
    // What the two tests around this one would see without per-call windows: the attacks work.
    const owner = new Client({ backends, timeoutMs: 30_000 });
    const other = new Client({ backends, timeoutMs: 30_000 });
    const buf = RDMABuf.allocate(SIZE, { access: RDMABUF_DEVICE_SCOPE_ACCESS });
    try {
      buf.buffer.fill(0);
      expect(await owner.stub(ScopedService, address).fill({ buf: buf.toRemoteBuf(), byte: 1 })).toEqual({ ok: true });
      expect(buf.buffer.every((x) => x === 1)).toBe(true);
      // After the call, on the same connection.
      expect(await owner.stub(ScopedService, address).replay({ byte: 2 })).toEqual({ ok: true });
      expect(buf.buffer.every((x) => x === 2)).toBe(true);
      // From another client's connection.
      expect(await other.stub(ScopedService, address).replay({ byte: 3 })).toEqual({ ok: true });
      expect(buf.buffer.every((x) => x === 3)).toBe(true);
    } finally {
      await Promise.all([owner.stop(), other.stop()]);
      buf.release();
    }
  });

  it("one connection cannot reach another connection's buffer, even while that call is in flight", async () => {
    const owner = new Client({ backends, timeoutMs: 30_000 });
    const thief = new Client({ backends, timeoutMs: 30_000 });
    const buf = RDMABuf.allocate(SIZE);
    try {
      buf.buffer.fill(0);
      const exposure = await exposeOn(owner, address, buf, { access: 'write' });
      holding = new Promise<void>((r) => {
        signalHolding = r;
      });
      const held = owner.stub(ScopedService, address).hold({ buf: exposure.remotes[0]!, byte: 7 });
      await holding;

      // Another client's connection, with the in-flight call's (address, rkey).
      replayError = undefined;
      const err = await thief
        .stub(ScopedService, address)
        .replay({ byte: 9 })
        .then(
          () => undefined,
          (e: unknown) => e as FfnetError,
        );
      expect(LOST).toContain(err?.code);
      expect(lastReplayError()?.code).toBe(StatusCode.RDMAError);
      expect(lastReplayError()?.statusName).toBe('REM_ACCESS_ERR');
      expect(buf.buffer.every((x) => x === 0)).toBe(true);

      // The owner's own call still writes through its window.
      release!();
      expect(await held).toEqual({ ok: true });
      expect(buf.buffer.every((x) => x === 7)).toBe(true);
      await exposure.revoke();
    } finally {
      await Promise.all([owner.stop(), thief.stop()]);
      buf.release();
    }
  });
});
