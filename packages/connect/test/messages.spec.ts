import { decodeMessage, encodeMessage, FfnetError, FrameDecoder, MessageFlags, type MessagePacket, okResult, StatusCode } from '@ffnet/serde';
import { describe, expect, it } from 'vitest';
import { connectConfigOf } from '../src/config.js';
import {
  type IBConnectReq,
  type IBConnectRsp,
  IBConnectService,
  type IBQueryRsp,
  parseConnectReq,
  parseConnectRsp,
  parseQueryRsp,
  resolveIBSocketConfig,
} from '../src/index.js';

/** Through a real frame: encode, frame-decode (CRC checked), envelope-decode. */
function roundTrip(methodId: number, payload: unknown, isReq: boolean): unknown {
  const frame = encodeMessage({ uuid: 7, serviceId: IBConnectService.id, methodId, flags: isReq ? MessageFlags.IsReq : 0, version: 0, timeoutMs: 0, payload });
  let pkt: MessagePacket | undefined;
  new FrameDecoder((body, compressed) => {
    pkt = decodeMessage(body, compressed);
  }).push(frame);
  expect(pkt).toMatchObject({ uuid: 7, serviceId: 11, methodId });
  return isReq ? pkt!.payload : (pkt!.payload as { ok: true; value: unknown }).value;
}

const gid = Buffer.from('fe800000000000000000ffff0a00020f', 'hex');
const req: IBConnectReq = {
  hostname: 'client-host',
  dev: 0,
  devName: 'rxe0',
  port: 1,
  mtu: 3,
  qpNum: 0x11,
  link: { kind: 'roce', gid },
  targetDev: 1,
  targetDevName: 'mlx5_1',
  targetPort: 2,
  config: connectConfigOf(resolveIBSocketConfig({ bufSize: 4096, sendBufCnt: 16, bufAckBatch: 4, bufSignalBatch: 4 })),
};

function code(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    expect(FfnetError.is(e)).toBe(true);
    return (e as FfnetError).code;
  }
  throw new Error('expected an error');
}

describe('IBConnect messages', () => {
  it('define service 11 with query = 1 and connect = 2', () => {
    expect(IBConnectService.name).toBe('IBConnect');
    expect(IBConnectService.id).toBe(11);
    expect(IBConnectService.methods.query.id).toBe(1);
    expect(IBConnectService.methods.connect.id).toBe(2);
    expect(IBConnectService.methodById(2)?.name).toBe('connect');
  });

  it('round-trip a query response', () => {
    const rsp: IBQueryRsp = {
      devices: [
        { dev: 0, devName: 'rxe0', ports: [{ port: 1, zones: ['UNKNOWN'], linkLayer: 2 }] },
        {
          dev: 1,
          devName: 'mlx5_1',
          ports: [
            { port: 1, zones: ['a', 'b'], linkLayer: 1 },
            { port: 2, zones: [], linkLayer: 1 },
          ],
        },
      ],
    };
    expect(roundTrip(1, {}, true)).toEqual({});
    expect(parseQueryRsp(roundTrip(1, okResult(rsp), false))).toEqual(rsp);
  });

  it('round-trip a connect request with a RoCE GID and the full config, keeping a copy of the GID', () => {
    const wire = roundTrip(2, req, true);
    const back = parseConnectReq(wire);
    expect(back).toEqual({ ...req, link: { kind: 'roce', gid } });
    expect(back.config).toMatchObject({ bufSize: 4096, sendBufCnt: 16, bufAckBatch: 4, timeout: 14 });
    expect(back.config).not.toHaveProperty('drainTimeoutMs');
    // The decoded GID was a view into the frame; the parsed one must survive the frame being reused.
    const view = (wire as { link: { gid: Uint8Array } }).link.gid;
    view.fill(0);
    expect(Buffer.from(back.link.kind === 'roce' ? back.link.gid : []).equals(gid)).toBe(true);
  });

  it('round-trip a connect response with an InfiniBand LID', () => {
    const rsp: IBConnectRsp = { hostname: 'srv', dev: 1, devName: 'mlx5_1', port: 2, mtu: 5, qpNum: 0xabcdef, link: { kind: 'ib', lid: 0x1234 } };
    expect(parseConnectRsp(roundTrip(2, okResult(rsp), false))).toEqual(rsp);
  });

  it('fill config fields a peer left out with defaults (append-only evolution)', () => {
    const { config, ...rest } = req;
    const partial = { ...rest, config: { bufSize: 1024 } };
    expect(parseConnectReq(partial).config).toMatchObject({ bufSize: 1024, sendBufCnt: 32, bufAckBatch: 8 });
  });

  it('reject malformed messages with typed errors before anything is created from them', () => {
    expect(code(() => parseConnectReq(null))).toBe(StatusCode.InvalidFormat);
    expect(code(() => parseConnectReq({ ...req, qpNum: -1 }))).toBe(StatusCode.InvalidFormat);
    expect(code(() => parseConnectReq({ ...req, mtu: 6 }))).toBe(StatusCode.InvalidFormat);
    expect(code(() => parseConnectReq({ ...req, targetDevName: 5 }))).toBe(StatusCode.InvalidFormat);
    expect(code(() => parseConnectReq({ ...req, link: { kind: 'roce', gid: Buffer.alloc(15) } }))).toBe(StatusCode.InvalidFormat);
    expect(code(() => parseConnectReq({ ...req, link: { kind: 'iwarp' } }))).toBe(StatusCode.InvalidFormat);
    expect(code(() => parseConnectReq({ ...req, config: { ...req.config, bufAckBatch: 0 } }))).toBe(StatusCode.InvalidConfig);
    expect(code(() => parseConnectReq({ ...req, config: { ...req.config, sendBufCnt: 2 ** 24 } }))).toBe(StatusCode.InvalidConfig);
    expect(code(() => parseQueryRsp({ devices: 'x' }))).toBe(StatusCode.InvalidFormat);
    expect(code(() => parseQueryRsp({ devices: new Array(65).fill({ dev: 0, devName: 'x', ports: [] }) }))).toBe(StatusCode.InvalidFormat);
    expect(code(() => parseQueryRsp({ devices: [{ dev: 0, devName: 'x', ports: [{ port: 0, zones: [], linkLayer: 1 }] }] }))).toBe(StatusCode.InvalidFormat);
    expect(code(() => parseConnectRsp({ ...req, hostname: 'h'.repeat(300) }))).toBe(StatusCode.InvalidFormat);
  });
});
