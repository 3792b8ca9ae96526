// The README example, verbatim apart from collecting the output instead of printing it.
import { expect, it } from 'vitest';
import {
  decodeMessage,
  defineService,
  encodeMessage,
  errResult,
  FrameDecoder,
  initCompression,
  MessageFlags,
  type MessagePacket,
  method,
  okResult,
  type RequestOf,
  type ResponseOf,
  StatusCode,
} from '../src/index.js';

it('README example works', async () => {
  const Echo = defineService({
    name: 'Echo',
    id: 10000,
    methods: { echo: method<{ str: string }, { str: string }>(1) },
  });
  type EchoReq = RequestOf<typeof Echo, 'echo'>;
  type EchoRsp = ResponseOf<typeof Echo, 'echo'>;

  await initCompression();

  const request = encodeMessage({
    uuid: 1,
    serviceId: Echo.id,
    methodId: Echo.methods.echo.id,
    flags: MessageFlags.IsReq,
    version: 0,
    timeoutMs: 1000,
    payload: { str: 'hello' } satisfies EchoReq,
  });

  const responses: Buffer[] = [];
  const server = new FrameDecoder((body, compressed) => {
    const req = decodeMessage(body, compressed, { peer: 'tcp://127.0.0.1:9000' });
    const m = Echo.methodById(req.methodId);
    const payload = m ? okResult<EchoRsp>({ str: (req.payload as EchoReq).str }) : errResult(StatusCode.InvalidMethodID, `no method ${req.methodId}`);
    responses.push(encodeMessage({ ...req, flags: 0, payload }, { compressionThreshold: 128 * 1024 }));
  });
  for (let i = 0; i < request.length; i += 5) server.push(request.subarray(i, i + 5));

  const out: MessagePacket[] = [];
  new FrameDecoder((body, compressed) => {
    out.push(decodeMessage(body, compressed));
  }).push(Buffer.concat(responses));

  expect(out.length).toBe(1);
  expect(out[0]!.uuid).toBe(1);
  expect(out[0]!.payload).toEqual({ ok: true, value: { str: 'hello' } });
});
