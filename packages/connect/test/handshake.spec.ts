import { FfnetError, StatusCode } from '@ffnet/serde';
import { describe, expect, it } from 'vitest';
import {
  connectIBSocket,
  IB_SOCKET_DEFAULTS,
  IBAcceptBudget,
  type IBConnectCall,
  IBConnectServer,
  IBSocket,
  IBSocketState,
  ibSocketSizes,
} from '../src/index.js';

// The parts of the handshake that need no device: what happens before a QP exists.

async function code(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    expect(FfnetError.is(e)).toBe(true);
    return (e as FfnetError).code;
  }
  throw new Error('expected a rejection');
}

/** A well-formed connect request for device 0 / port 1 of a server that may not have that device. */
const req = {
  hostname: 'c',
  dev: 0,
  devName: 'rxe0',
  port: 1,
  mtu: 3,
  qpNum: 5,
  link: { kind: 'ib', lid: 1 },
  targetDev: 0,
  targetDevName: 'rxe0',
  targetPort: 1,
  config: {},
};

describe('IBSocket before a device is involved', () => {
  it('close before connect: connect rejects with SocketClosedError and never calls the peer', async () => {
    const calls: string[] = [];
    const call: IBConnectCall = async (m) => {
      calls.push(m);
      return { devices: [] };
    };
    const s = new IBSocket();
    await s.close();
    expect(s.state).toBe(IBSocketState.CLOSE);
    expect(await s.closed).toBeUndefined();
    expect(await code(s.connect(call))).toBe(StatusCode.SocketClosed);
    expect(calls).toEqual([]);
    expect(() => s.write([Buffer.from('x')])).toThrow(/closed IBSocket/);
  });

  it('closing while the query is in flight makes connect report SocketClosedError', async () => {
    let answer!: (v: unknown) => void;
    const call: IBConnectCall = () => new Promise((r) => (answer = r));
    const s = new IBSocket();
    const p = s.connect(call);
    s.destroy();
    answer({ devices: [] });
    expect(await code(p)).toBe(StatusCode.SocketClosed);
  });

  it('no matching port gives IBDeviceNotFoundError naming both sides', async () => {
    const call: IBConnectCall = async () => ({ devices: [{ dev: 0, devName: 'srv0', ports: [{ port: 1, zones: ['z'], linkLayer: 2 }] }] });
    const err = await connectIBSocket(call, { devices: [], peer: 'rdma://10.9.9.9:1' }).catch((e) => e);
    expect(err.code).toBe(StatusCode.IBDeviceNotFound);
    expect(err.message).toContain('srv0:1');
    expect(err.message).toContain('rdma://10.9.9.9:1');
  });

  it('a peer that never answers gives TimeoutError after timeoutMs; an abort gives ConnectFailedError', async () => {
    const never: IBConnectCall = () => new Promise(() => {});
    const s = new IBSocket();
    expect(await code(s.connect(never, { timeoutMs: 30 }))).toBe(StatusCode.Timeout);
    expect(s.state).toBe(IBSocketState.ERROR);
    expect((await s.closed)?.code).toBe(StatusCode.Timeout);
    const ac = new AbortController();
    const p = connectIBSocket(never, { signal: ac.signal });
    ac.abort(new Error('user gave up'));
    expect(await code(p)).toBe(StatusCode.ConnectFailed);
  });

  it('a malformed query response gives InvalidFormatError', async () => {
    const call: IBConnectCall = async () => ({ devices: [{ dev: 'x' }] });
    expect(await code(connectIBSocket(call, { devices: [] }))).toBe(StatusCode.InvalidFormat);
  });

  it('the server refuses unknown devices, oversized buffers and bad requests', () => {
    const server = new IBConnectServer({ devices: [], onSocket: () => {} });
    expect(server.query()).toEqual({ devices: [] });
    expect(() => server.connect(req)).toThrow(expect.objectContaining({ code: StatusCode.IBDeviceNotFound }));
    expect(() => server.connect({ ...req, qpNum: 'x' })).toThrow(expect.objectContaining({ code: StatusCode.InvalidFormat }));
    // Checked before any device is looked at: a client cannot make the server allocate more than this.
    const small = new IBConnectServer({ devices: [], maxBufferBytes: 64 * 1024, onSocket: () => {} });
    expect(() => small.connect({ ...req, config: { bufSize: 1024, sendBufCnt: 16, bufAckBatch: 4 } })).toThrow(
      expect.objectContaining({ code: StatusCode.IBDeviceNotFound }),
    );
    expect(() => small.connect(req)).toThrow(expect.objectContaining({ code: StatusCode.InvalidConfig, message: expect.stringContaining('1196032 bytes') }));
  });
});

describe('caps on what connect requests may allocate (checked before anything is created)', () => {
  const bytes = ibSocketSizes(IB_SOCKET_DEFAULTS).bufferBytes;

  it('IBAcceptBudget counts QPs and pinned bytes, refuses past either cap with ResourceExhaustedError naming it, and takes nothing then', () => {
    const b = new IBAcceptBudget({ maxQps: 3, maxPinnedBytes: 2500 });
    b.reserve(1000, 'rdma://1.2.3.4:5');
    b.reserve(1000);
    expect([b.qps, b.pinnedBytes]).toEqual([2, 2000]);
    let err: unknown;
    try {
      b.reserve(501, 'rdma://1.2.3.4:5');
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: StatusCode.ResourceExhausted, peer: 'rdma://1.2.3.4:5' });
    expect((err as Error).message).toContain('maxPinnedBytes');
    expect([b.qps, b.pinnedBytes]).toEqual([2, 2000]);
    b.reserve(500);
    expect(() => b.reserve(0)).toThrow(expect.objectContaining({ code: StatusCode.ResourceExhausted, message: expect.stringContaining('(maxQps) is 3') }));
    b.release(1000);
    b.reserve(0);
    expect([b.qps, b.pinnedBytes]).toEqual([3, 1500]);
    expect(() => new IBAcceptBudget({ maxQps: 0 })).toThrow(expect.objectContaining({ code: StatusCode.InvalidArg }));
  });

  it('IBAcceptBudget refuses to give back more than was reserved (a double release is a bug, not a refill)', () => {
    const b = new IBAcceptBudget({ maxQps: 2, maxPinnedBytes: 2000 });
    b.reserve(1000);
    expect(() => b.release(1500)).toThrow(expect.objectContaining({ code: StatusCode.InvalidArg }));
    expect([b.qps, b.pinnedBytes]).toEqual([1, 1000]);
    b.release(1000);
    expect([b.qps, b.pinnedBytes]).toEqual([0, 0]);
    expect(() => b.release(0)).toThrow(expect.objectContaining({ code: StatusCode.InvalidArg }));
    expect([b.qps, b.pinnedBytes]).toEqual([0, 0]);
  });

  it('a server whose budget is spent refuses with ResourceExhaustedError before looking for a device', () => {
    const budget = new IBAcceptBudget({ maxQps: 10, maxPinnedBytes: bytes * 2 });
    const server = new IBConnectServer({ devices: [], budget, onSocket: () => {} });
    // Room for one: the request gets as far as the device lookup, and its reservation is given back.
    budget.reserve(bytes);
    expect(() => server.connect(req)).toThrow(expect.objectContaining({ code: StatusCode.IBDeviceNotFound }));
    expect([budget.qps, budget.pinnedBytes]).toEqual([1, bytes]);
    budget.reserve(bytes);
    expect(() => server.connect(req, { peer: 'rdma://10.0.0.9:1' })).toThrow(
      expect.objectContaining({ code: StatusCode.ResourceExhausted, peer: 'rdma://10.0.0.9:1', message: expect.stringContaining('maxPinnedBytes') }),
    );
    const qpCapped = new IBConnectServer({ devices: [], budget: new IBAcceptBudget({ maxQps: 1 }), onSocket: () => {} });
    qpCapped.budget.reserve(0);
    expect(() => qpCapped.connect(req)).toThrow(expect.objectContaining({ code: StatusCode.ResourceExhausted, message: expect.stringContaining('maxQps') }));
    expect(server.qps).toBe(0);
  });

  it('refuses queue depths above maxWorkRequests before any allocation', () => {
    const server = new IBConnectServer({ devices: [], maxWorkRequests: 256, onSocket: () => {} });
    const deep = { ...req, config: { bufSize: 64, sendBufCnt: 512, bufAckBatch: 8 } };
    expect(() => server.connect(deep)).toThrow(
      expect.objectContaining({ code: StatusCode.InvalidConfig, message: expect.stringContaining('maxWorkRequests') }),
    );
    expect(() => server.connect({ ...req, config: { maxRdmaWr: 100_000 } })).toThrow(
      expect.objectContaining({ code: StatusCode.InvalidConfig, message: expect.stringContaining('(maxWorkRequests)') }),
    );
    expect(server.budget.qps).toBe(0);
    // Within the caps the request reaches the device lookup.
    expect(() => server.connect({ ...req, config: { sendBufCnt: 256, maxRdmaWr: 256 } })).toThrow(
      expect.objectContaining({ code: StatusCode.IBDeviceNotFound }),
    );
  });
});
