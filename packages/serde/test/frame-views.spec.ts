// The frames of one read are handed out as views made straight from the read's ArrayBuffer, and the bytes values
// decoded inside them too, instead of through Buffer.prototype.subarray (which reads two getters per view). They
// must be Buffers in every way a caller can tell, and nothing may keep the read alive after its delivery.
import { describe, expect, it, vi } from 'vitest';
import { crc32cBatched, decodeMessage, encodeFrame, encodeMessage, FrameDecoder } from '../src/index.js';
import { bufferView, deliveredBody } from '../src/view.js';
import { dataRequest as request } from './messages.js';

describe('frame views', () => {
  it('a view made from an ArrayBuffer is a Buffer to every test a caller has', () => {
    const src = Buffer.from('..hello..');
    const v = bufferView(src.buffer, src.byteOffset + 2, 5);
    expect(Buffer.isBuffer(v)).toBe(true);
    expect(v).toBeInstanceOf(Buffer);
    expect(v.constructor).toBe(Buffer);
    expect(v.toString()).toBe('hello');
    expect(v.equals(Buffer.from('hello'))).toBe(true);
    expect(v.readUInt8(1)).toBe(0x65);
    // Derived views and species-made copies are plain Buffers.
    expect(Object.getPrototypeOf(v.subarray(1))).toBe(Buffer.prototype);
    expect(Object.getPrototypeOf(v.map((x) => x + 1))).toBe(Buffer.prototype);
    expect(v.map((x) => x + 1).toString()).toBe('ifmmp');
    expect(JSON.stringify(v)).toBe(JSON.stringify(Buffer.from('hello')));
    // A view, not a copy.
    src[2] = 0x48;
    expect(v.toString()).toBe('Hello');
  });

  it('the frames of one read, and the bytes decoded in them, are made without Buffer.prototype.subarray', () => {
    const frames = Array.from({ length: 8 }, (_, i) => encodeMessage(request(i + 1, Buffer.alloc(64, i))) as Buffer);
    const got: { data: Buffer; bodyIsView: boolean }[] = [];
    const dec = new FrameDecoder((body, compressed) => {
      got.push({ data: (decodeMessage(body, compressed).payload as { data: Buffer }).data, bodyIsView: deliveredBody.view === body });
    });
    const subarray = vi.spyOn(Buffer.prototype, 'subarray');
    try {
      dec.push(Buffer.concat(frames));
    } finally {
      subarray.mockRestore();
    }
    expect(got).toHaveLength(8);
    for (const [i, g] of got.entries()) {
      expect(Buffer.isBuffer(g.data)).toBe(true);
      expect(g.data.constructor).toBe(Buffer);
      expect(g.data.equals(Buffer.alloc(64, i))).toBe(true);
      // Sent back as it came: encoded as bytes, exactly as a Buffer would be.
      expect(Buffer.from(encodeMessage(request(i + 1, g.data)) as Buffer).equals(frames[i]!)).toBe(true);
    }
    if (crc32cBatched()) {
      // Where the read is checksummed as a batch (the native addon), its frames take this path.
      expect(got.every((g) => g.bodyIsView)).toBe(true);
      expect(subarray).not.toHaveBeenCalled();
    }
    // After the delivery nothing refers to the read any more.
    expect(deliveredBody.view).toBeUndefined();
    expect(deliveredBody.ab).toBeUndefined();
  });

  it('a body decoded after its delivery makes its views the usual way, from its own bytes', () => {
    const frames = [1, 2, 3].map((uuid) => encodeMessage(request(uuid, Buffer.alloc(16, uuid))) as Buffer);
    const bodies: Buffer[] = [];
    const dec = new FrameDecoder((body) => bodies.push(body));
    dec.push(Buffer.concat(frames));
    // Each body was read past its delivery; decoding one now must not take another's offset.
    const other = Buffer.concat(frames);
    deliveredBody.view = other;
    deliveredBody.ab = other.buffer;
    deliveredBody.offset = other.byteOffset + 100;
    try {
      for (const [i, body] of bodies.entries()) {
        expect((decodeMessage(body, false).payload as { data: Buffer }).data.equals(Buffer.alloc(16, i + 1))).toBe(true);
      }
    } finally {
      deliveredBody.view = undefined;
      deliveredBody.ab = undefined;
    }
  });

  it('a delivery that throws still lets go of the read', () => {
    const frames = [1, 2].map((uuid) => encodeFrame(Buffer.alloc(40, uuid)));
    const dec = new FrameDecoder(() => {
      throw new Error('handler failed');
    });
    expect(() => dec.push(Buffer.concat(frames))).toThrow(/handler failed/);
    expect(deliveredBody.view).toBeUndefined();
  });
});
