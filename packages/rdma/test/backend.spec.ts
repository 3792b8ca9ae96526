// rdma() on a host without RDMA (the Soft-RoCE VM suites in test/rdma cover the usable case).
import { type FfnetError, IBDeviceNotInitializedError, MessageFlags, StatusCode } from '@ffnet/serde';
import { Client, EchoService, Server } from '@ffnet/server';
import { rdmaAddress, Transport, tcp, unix } from '@ffnet/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { groupConfig, rejection } from '../../server/test/helpers.js';
import { RDMAControlService, rdma } from '../src/index.js';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of stops.splice(0).reverse()) await f();
});

describe('rdma()', () => {
  it('is a fresh rdma backend with one-sided, close-on-timeout capabilities and a 5 s connect default', () => {
    const b = rdma();
    expect(b.scheme).toBe('rdma');
    expect(b).not.toBe(rdma());
    expect(b.capabilities).toEqual({ oneSided: true, closeOnCallTimeout: true });
    expect(b.connectTimeoutMs).toBe(5000);
    expect(rdma({ connectTimeoutMs: 1234 }).connectTimeoutMs).toBe(1234);
    expect(() => rdma({ connectTimeoutMs: 0 })).toThrow(expect.objectContaining({ code: StatusCode.InvalidArg }));
  });

  it('brings RDMAControl to a client only when asked', () => {
    const off = rdma();
    expect(off.requestFlags).toBe(0);
    expect(off.transmissions).toBeUndefined();
    const bare = new Client({ backends: [tcp(), off] });
    stops.push(() => bare.stop());
    expect(off.clientServices(bare)).toEqual([]);
    expect(bare.services.has(RDMAControlService.id)).toBe(false);
    const on = rdma({ control: { maxConcurrentTransmission: 3 } });
    expect(on.requestFlags).toBe(MessageFlags.ControlRDMA);
    expect(on.transmissions!.max).toBe(3);
    const client = new Client({ backends: [tcp(), on] });
    stops.push(() => client.stop());
    expect(client.services.has(RDMAControlService.id)).toBe(true);
  });

  it('is unusable here and says why: available(), connect and listen give IBDeviceNotInitializedError', async () => {
    const b = rdma();
    const a = b.available();
    expect(a.ok).toBe(false);
    const reason = (a as { reason: string }).reason;
    expect(reason).toMatch(/^(no-library|no-kernel-support|no-devices): ./);
    expect((a as { error: FfnetError }).error).toBeInstanceOf(IBDeviceNotInitializedError);
    expect((a as { error: FfnetError }).error.message).toContain(reason);
    expect(() => Transport.connect('rdma://127.0.0.1:1', { onFrame() {}, onClose() {} }, { backends: [b] })).toThrow(IBDeviceNotInitializedError);
    await expect(b.listen(rdmaAddress('127.0.0.1', 0), {}, () => {})).rejects.toBeInstanceOf(IBDeviceNotInitializedError);
    await expect(b.connect(rdmaAddress('127.0.0.1', 1))).rejects.toBeInstanceOf(IBDeviceNotInitializedError);
  });

  it('an rdma group without usable devices fails server setup with IBDeviceNotInitialized', async () => {
    const server = new Server({ backends: [tcp(), unix(), rdma()], groups: [{ networkType: 'rdma', listener: { host: '127.0.0.1', port: 0 } }] });
    const err = await rejection(server.start());
    expect(err.code).toBe(StatusCode.IBDeviceNotInitialized);
  });

  it('two clients with different backends do not affect each other (3FS TestIBNotInitialized with rdma())', async () => {
    const server = new Server({ groups: [groupConfig('tcp')] });
    await server.start();
    stops.push(() => server.stop());
    const address = server.addresses[0]!;
    const withRdma = new Client({ backends: [tcp(), unix(), rdma()], timeoutMs: 5000 });
    const plain = new Client({ timeoutMs: 5000 });
    stops.push(
      () => withRdma.stop(),
      () => plain.stop(),
    );

    // With rdma(): the call fails with SendFailed carrying the reason RDMA is unusable here.
    const a = await rejection(withRdma.callRaw('rdma://127.0.0.1:9', EchoService.id, 1, { str: 'x' }));
    expect(a.code).toBe(StatusCode.SendFailed);
    expect((a.cause as FfnetError).code).toBe(StatusCode.IBDeviceNotInitialized);
    expect(a.message).toMatch(/no-library|no-kernel-support|no-devices/);
    // Without: the same address fails saying what to pass; the other client's list changed nothing here.
    const b = await rejection(plain.callRaw('rdma://127.0.0.1:9', EchoService.id, 1, { str: 'x' }));
    expect(b.code).toBe(StatusCode.SendFailed);
    expect((b.cause as FfnetError).code).toBe(StatusCode.NotImplemented);
    expect(b.message).toMatch(/pass rdma\(\) from '@ffnet\/rdma'/);
    // Both still reach tcp://.
    expect(await withRdma.stub(EchoService, address).echo({ str: 'a' })).toEqual({ str: 'a' });
    expect(await plain.stub(EchoService, address).echo({ str: 'b' })).toEqual({ str: 'b' });
  });
});
