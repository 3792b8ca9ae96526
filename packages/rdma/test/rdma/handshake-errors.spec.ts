// A refused IBConnect handshake, as the dialling side sees it on the wire (runs in the Soft-RoCE VM).
import { IBManager } from '@ffnet/device';
import { decodeMessage, encodeMessage, FrameDecoder, MessageFlags, type MessagePacket, StatusCode } from '@ffnet/serde';
import { rdmaAddress, tcp, tcpAddress } from '@ffnet/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rdma } from '../../src/index.js';

const HOST = process.env.FFNET_RDMA_HOST ?? '10.0.2.15';

describe('rdma listener handshake refusals', () => {
  beforeAll(() => {
    IBManager.start();
  });
  afterAll(() => {
    IBManager.stop();
  });

  it('answers a connect for a device it lacks with IBDeviceNotFound, without its own view of the peer', async () => {
    const listener = await rdma().listen(rdmaAddress(HOST, 0), {}, (s) => s.destroy());
    try {
      const sock = await tcp().connect(tcpAddress(HOST, listener.address.port));
      const reply = new Promise<MessagePacket>((resolve, reject) => {
        const decoder = new FrameDecoder((body, compressed) => resolve(decodeMessage(body, compressed)));
        sock.setHandlers({
          data: (chunk) => decoder.push(chunk),
          drain: () => {},
          written: () => {},
          close: (err) => reject(err ?? new Error('closed before the reply')),
        });
      });
      const req = {
        hostname: 'test',
        dev: 0,
        devName: 'rxe0',
        port: 1,
        mtu: 3,
        qpNum: 5,
        link: { kind: 'ib', lid: 1 },
        targetDev: 7,
        targetDevName: 'nosuchdev',
        targetPort: 1,
        config: {},
      };
      sock.write([encodeMessage({ uuid: 1, serviceId: 11, methodId: 2, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload: req })]);
      const pkt = await reply;
      const r = pkt.payload as { ok: boolean; code: number; message: string };
      expect(r.ok).toBe(false);
      expect(r.code).toBe(StatusCode.IBDeviceNotFound);
      expect(r.message).toContain('nosuchdev');
      // The caller rebuilds the error with its own peer; the wire text must not carry the server's as well.
      expect(r.message).not.toContain('(peer ');
      sock.destroy();
    } finally {
      await listener.close();
    }
  });
});
