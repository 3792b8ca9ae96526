import { FfnetError, StatusCode } from '@ffnet/serde';
import { describe, expect, it } from 'vitest';
import { type IBConnectCall, IBConnectServer, IBSocket, IBSocketState, connectIBSocket } from '../src/index.js';

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
