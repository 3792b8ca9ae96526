// The README "Schemas" example, verbatim apart from asserting what its comments claim.
import { expect, it } from 'vitest';
import { decode3fs, defineService, encode3fs, type Infer, InvalidArgError, method, s, toJson, validate } from '../src/index.js';

it('README schema example works', () => {
  const ReadIO = s.struct('hf3fs::storage::ReadIO', {
    offset: s.u32,
    length: s.u32,
    chunkId: s.bytes,
    rdmabuf: s.rdmaRemoteBuf,
  });
  const BatchReadReq = s.struct('hf3fs::storage::BatchReadReq', {
    payloads: s.vector(ReadIO),
    retry: s.optional(s.u8),
  });
  type BatchReadReq = Infer<typeof BatchReadReq>;

  const req: BatchReadReq = {
    payloads: [{ offset: 0, length: 4096, chunkId: new Uint8Array([1, 2]), rdmabuf: { addr: 0x7f00n, size: 4096n, rkeys: [] } }],
    retry: null,
  };
  validate(BatchReadReq, req, 'req');
  const wire = encode3fs(BatchReadReq, req);
  const back = decode3fs(BatchReadReq, wire);
  expect(back).toEqual(req);
  const json = toJson(BatchReadReq, back) as { payloads: { offset: number; rdmabuf: { addr: string } }[]; retry: null };
  expect(json.payloads[0]?.offset).toBe(0);
  expect(json.payloads[0]?.rdmabuf.addr).toBe('32512');
  expect(json.retry).toBeNull();

  const bad = { ...req, payloads: [{ ...req.payloads[0], length: -1 }] };
  expect(() => validate(BatchReadReq, bad, 'req')).toThrow(InvalidArgError);
  expect(() => validate(BatchReadReq, bad, 'req')).toThrow('req.payloads[0].length: expected u32, got number -1');

  const Echo = s.struct('hf3fs::core::EchoMessage', { str: s.string });
  const Core = defineService({ name: 'Core', id: 10001, methods: { echo: method(1, { request: Echo, response: Echo }) } });
  expect(Core.methods.echo.request === Echo).toBe(true);
});
