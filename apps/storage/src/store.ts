import { InvalidArgError } from '@ffnet/serde';

/**
 * The content of a chunk nobody wrote: a function of (id, position) only, so any reader can check what it got
 * without asking the server. Position p of chunk id holds the low byte of a multiplicative hash of both.
 */
export function fillChunk(id: number, offset: number, out: Uint8Array): void {
  const seed = Math.imul(id + 1, 0x9e3779b1);
  for (let i = 0; i < out.length; i++) {
    const p = offset + i;
    out[i] = (Math.imul(seed ^ p, 0x85ebca6b) ^ (p >>> 7)) >>> 24;
  }
}

/** Chunks in memory: `chunkSize` bytes of generated content each, unless written. */
export class ChunkStore {
  readonly chunkSize: number;
  readonly #written = new Map<number, Buffer>();

  constructor(chunkSize: number) {
    if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) throw new InvalidArgError(`chunkSize must be a positive integer, got ${chunkSize}`);
    this.chunkSize = chunkSize;
  }

  /** Length of chunk `id`. */
  size(id: number): number {
    return this.#written.get(id)?.length ?? this.chunkSize;
  }

  /** How many of `length` bytes from `offset` chunk `id` has (InvalidArgError for a malformed range). */
  available(id: number, offset: number, length: number): number {
    checkId(id);
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new InvalidArgError(`chunk ${id}: bad range offset ${offset} length ${length}`);
    }
    return Math.max(0, Math.min(length, this.size(id) - offset));
  }

  /** Copies up to `length` bytes from `offset` into `out` (which must hold them); returns how many. */
  read(id: number, offset: number, length: number, out: Uint8Array): number {
    const n = this.available(id, offset, length);
    const w = this.#written.get(id);
    if (w !== undefined) w.copy(out, 0, offset, offset + n);
    else fillChunk(id, offset, out.subarray(0, n));
    return n;
  }

  /** Replaces chunk `id` with a copy of `data`. */
  write(id: number, data: Uint8Array): void {
    checkId(id);
    this.#written.set(id, Buffer.from(data));
  }
}

function checkId(id: number): void {
  if (!Number.isSafeInteger(id) || id < 0) throw new InvalidArgError(`bad chunk id ${id}`);
}
