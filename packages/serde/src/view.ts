// Buffers made from an ArrayBuffer and an offset already at hand. Buffer.prototype.subarray reads the source's
// `buffer` and `byteOffset` (getters on Node 20, ~28 ns together), clamps its arguments and then constructs the view:
// 38 ns a view, against 16 ns to construct one directly. The frame decoder knows where each chunk lies, so the views
// it hands out per frame, and the reader's `bin` values inside them, are made here.

/** A Buffer in all but its direct prototype: Buffer's own class (FastBuffer) is not exported. */
class BufferView extends Uint8Array {}
Object.setPrototypeOf(BufferView.prototype, Buffer.prototype);
// As on Node's own Buffers: `constructor === Buffer`, so writers that test the class (this package's among them)
// and species-made results (map, filter) see a Buffer.
Object.defineProperty(BufferView.prototype, 'constructor', { value: Buffer, writable: true, configurable: true, enumerable: false });

/** `length` bytes of `ab` from `byteOffset`, as a Buffer. The range must lie inside `ab`. */
export function bufferView(ab: ArrayBufferLike, byteOffset: number, length: number): Buffer {
  return new BufferView(ab as ArrayBuffer, byteOffset, length) as unknown as Buffer;
}

/**
 * Where the frame body being delivered lies, while it is delivered: set by FrameDecoder around a batch, read by
 * decodeMessage, which runs inside the delivery when the frame is handled at once. A body that is not `view`
 * (decoded later, or cut out of a lone frame) makes its views with subarray.
 */
export const deliveredBody: { view: Uint8Array | undefined; ab: ArrayBufferLike | undefined; offset: number } = {
  view: undefined,
  ab: undefined,
  offset: 0,
};
