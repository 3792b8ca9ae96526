import { defaults } from '@ffnet/common';
import { crc32c, crc32cBatched, crc32cCopy, crc32cRange, crc32cRanges } from './crc.js';
import { DataCorruptionError, InvalidArgError, InvalidFormatError, InvalidMessageTypeError } from './errors.js';
import { bufferView, deliveredBody } from './view.js';

/** `{u32 checksum, u32 size}`, little-endian, in front of every frame body. */
export const FRAME_HEADER_SIZE = 8;
/** Low byte of the checksum word; bit 0 on top of it says the body is zstd-compressed. */
export const FRAME_MAGIC = 0x86;
export const FRAME_COMPRESSED = 0x01;
/** 3FS's kMessageMaxSize: a frame whose size is at or above it kills the connection. */
export const DEFAULT_MAX_MESSAGE_SIZE = defaults.MAX_MESSAGE_SIZE;

/** The checksum word for a body whose raw CRC-32C is `crc`. */
export function checksumWord(crc: number, compressed: boolean): number {
  return ((crc & 0xffffff00) | FRAME_MAGIC | (compressed ? FRAME_COMPRESSED : 0)) >>> 0;
}

/**
 * Write the header into the 8 bytes reserved at `buf[offset..offset+8]` for the body that follows it up
 * to `end`. Encoders reserve the header space up front so a frame goes out as one buffer with no copy.
 */
export function sealFrame(buf: Uint8Array, compressed = false, offset = 0, end = buf.length): void {
  const size = end - offset - FRAME_HEADER_SIZE;
  const word = checksumWord(crc32cRange(buf, offset + FRAME_HEADER_SIZE, end), compressed);
  // Byte stores rather than a DataView: this runs once per message and should not allocate.
  buf[offset] = word;
  buf[offset + 1] = word >>> 8;
  buf[offset + 2] = word >>> 16;
  buf[offset + 3] = word >>> 24;
  buf[offset + 4] = size;
  buf[offset + 5] = size >>> 8;
  buf[offset + 6] = size >>> 16;
  buf[offset + 7] = size >>> 24;
}

/** A separate 8-byte header for `body`, for writers that send header and body as two iovecs. */
export function frameHeader(body: Uint8Array, compressed = false): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  h.writeUInt32LE(checksumWord(crc32c(body), compressed), 0);
  h.writeUInt32LE(body.length, 4);
  return h;
}

/** Header and body in one new buffer. */
export function encodeFrame(body: Uint8Array, compressed = false): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + body.length);
  out.set(body, FRAME_HEADER_SIZE);
  sealFrame(out, compressed);
  return out;
}

/**
 * Bodies at least this large are checksummed as they arrive and read into their final buffer (see FrameDecoder).
 * Below it a frame spans at most two of Node's 64 KiB reads, and one join at the end is cheapest.
 */
const LARGE_FRAME = 64 * 1024;
/** readTarget() offers no less: the last few KiB of a body are not worth a read of their own. */
const MIN_READ_TARGET = 16 * 1024;
/**
 * Default of FrameDecoderOptions.allocateLargeBodyAt. Measured on 1 MiB frames (apps/bench W3/W4, three rounds
 * alternated): 1/2 left 0.70-0.99x of raw node:net framing, 1/4 0.88-0.97x, 1/8 0.95-1.35x, because the part
 * before the allocation is the part that is copied.
 */
export const DEFAULT_ALLOCATE_LARGE_BODY_AT = 1 / 8;
/**
 * Received pieces shorter than this are copied into a small staging buffer instead of being kept as views: a
 * peer that trickles a byte per read would otherwise cost one Buffer object (about 80 bytes of heap) per byte,
 * and pin the read buffer each view points into.
 */
const TINY_PIECE = 1024;
/** Staging buffers start this small and double with the bytes held, up to STAGE_MAX. */
const STAGE_MIN = 256;
const STAGE_MAX = 4096;

/**
 * Complete frames of one chunk checksummed together, in one native call (crc32cRanges), at most this many at a
 * time. W2's 64-byte calls arrive 30-60 to a read; one call each cost more than the checksums themselves.
 */
const BATCH_FRAMES = 64;
/** Whether batching saves anything here: only the native addon checksums many ranges in one call. */
const BATCHED = crc32cBatched();

/** A little-endian u32 at `at`. Byte loads: readUInt32LE re-checks its arguments on every call. */
function u32le(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

interface LargeFrame {
  readonly word: number;
  readonly size: number;
  /** Body bytes received so far, and their running CRC. */
  have: number;
  crc: number;
  /** The received pieces until `body` exists. */
  parts: Buffer[];
  body: Buffer | undefined;
}

export interface FrameDecoderOptions {
  /** Frames with `size >= maxMessageSize` are rejected before any of their body is buffered. */
  maxMessageSize?: number;
  /** Peer description used in error messages. */
  peer?: string;
  /**
   * The fraction of a large frame's body (64 KiB or more) that must have arrived before its contiguous buffer
   * is allocated, in (0, 1]; default 1/8. The rest of the body is then copied in, or read in place (readTarget),
   * as it comes. Lower means fewer bytes copied; the bound it keeps is that a peer that announces a large frame
   * and stalls makes the decoder allocate at most 1/fraction times what it actually sent (and those pages stay
   * untouched, so not resident, until bytes land in them). 1 allocates only once the whole body is here.
   */
  allocateLargeBodyAt?: number;
  /**
   * Asked right before a large body's buffer is allocated, with the bytes that allocation adds to heldBytes.
   * False defers the allocation: the body keeps arriving in pieces and the next bytes ask again (a body that
   * completes unallocated is joined once, at its size). Throwing fails the decoder with that error. This is
   * how a receive budget counts an early allocation at its full size before it exists.
   */
  reserve?: (bytes: number) => boolean;
}

/** Receives each complete, checksum-verified frame body. */
export type FrameHandler = (body: Buffer, compressed: boolean) => void;

/**
 * Streaming decoder for a byte stream of frames; chunks may split anywhere, down to single bytes.
 *
 * Memory: a frame that lies inside one chunk is handed out as a view of that chunk (no copy). A small frame
 * that spans chunks is kept as the received chunks themselves and joined once its last byte has arrived. A
 * large one (body >= LARGE_FRAME) is checksummed chunk by chunk as it arrives, and gets its contiguous body
 * buffer once a fraction of it has arrived (`allocateLargeBodyAt`, 1/8 by default); from then on chunks are
 * copied into it, or read straight into it (readTarget), as they come. So a header that claims 500 MiB and then
 * stalls makes the decoder allocate at most 8 times the bytes actually received, and the work of a large
 * frame is spread over its reads instead of landing in one long stall after the last one (during which the
 * sender, its socket buffer full, would stall too).
 *
 * Bodies are views into the pushed chunks: callers must not reuse a chunk's memory after pushing it.
 * After a bad frame (or a throwing `onFrame`) the decoder throws the same error on every push; the
 * connection is done.
 */
export class FrameDecoder {
  readonly maxMessageSize: number;
  private readonly peer: string | undefined;
  private readonly onFrame: FrameHandler;
  /** Bytes received but not yet consumed, oldest first. */
  private parts: Buffer[] = [];
  private buffered = 0;
  /** Header + body size of the frame at the head of `parts` once its header is known, else 0. */
  private need = 0;
  /** Scratch for a header split across chunks. */
  private readonly header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  private failed: Error | undefined;
  /** The large frame being received (its header consumed), or undefined. */
  private large: LargeFrame | undefined;
  /** 1 / allocateLargeBodyAt: the body is allocated once have * this >= size. */
  private readonly allocateFactor: number;
  private readonly reserve: ((bytes: number) => boolean) | undefined;
  /** hold() was called: frames stay undelivered until resume(). */
  private holding = false;
  /** Bytes received but not yet parsed because delivery is on hold, oldest first. */
  private held: Buffer[] = [];
  private heldLen = 0;
  /** Inside push() or resume(): a resume() from a frame handler lets the running loop carry on instead. */
  private busy = false;
  /** Where tiny pieces are copied (see TINY_PIECE); bytes before stageUsed belong to views handed out. */
  private stage: Buffer | undefined;
  private stageUsed = 0;
  private delivered = 0;
  /**
   * The batch being delivered by parseChunk: body ranges (start, end pairs), header words and CRCs, views of one
   * allocation made at the first chunk that holds two frames.
   */
  private batchRanges: Int32Array | undefined;
  private batchWords: Int32Array | undefined;
  private batchCrcs: Int32Array | undefined;

  constructor(onFrame: FrameHandler, options: FrameDecoderOptions = {}) {
    this.onFrame = onFrame;
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.peer = options.peer;
    const at = options.allocateLargeBodyAt ?? DEFAULT_ALLOCATE_LARGE_BODY_AT;
    if (!(at > 0 && at <= 1)) throw new InvalidArgError(`allocateLargeBodyAt must be in (0, 1], got ${String(at)}`);
    this.allocateFactor = 1 / at;
    this.reserve = options.reserve;
  }

  /**
   * Bytes this decoder keeps alive for frames not yet delivered: partial frames, a large body counted at its
   * full size once allocated, and bytes held back by hold(). What a receive budget charges.
   */
  get heldBytes(): number {
    const large = this.large;
    if (large === undefined) return this.heldLen + this.buffered;
    return this.heldLen + FRAME_HEADER_SIZE + (large.body === undefined ? large.have : large.size);
  }

  /** Bytes a deferred large-body allocation (see `reserve`) is waiting for, else 0. */
  get pendingAllocation(): number {
    const large = this.large;
    if (large === undefined || large.body !== undefined || large.have * this.allocateFactor < large.size) return 0;
    return large.size - large.have;
  }

  /** Header + body size of the frame being received, 0 while its header is incomplete or nothing is pending. */
  get partialFrameSize(): number {
    const large = this.large;
    return large === undefined ? this.need : FRAME_HEADER_SIZE + large.size;
  }

  /** Frames delivered so far: a change tells a caller that a new frame has started. */
  get framesDelivered(): number {
    return this.delivered;
  }

  /** Buffers the decoder holds for incomplete frames (a structural measure of its per-piece overhead). */
  get heldParts(): number {
    const large = this.large;
    return this.held.length + (large === undefined ? this.parts.length : large.body === undefined ? large.parts.length : 1);
  }

  /**
   * Stop delivering frames, from the next frame boundary on (also from inside onFrame): bytes pushed from then
   * on, and the rest of the chunk being parsed, are kept as they are until resume().
   */
  hold(): void {
    this.holding = true;
  }

  /** Delivers what was held back, in order, until done or hold() is called again. Throws as push() does. */
  resume(): void {
    this.holding = false;
    if (this.failed) throw this.failed;
    // Called from a frame handler: the loop that called it sees `holding` cleared and goes on by itself.
    if (this.busy) return;
    this.busy = true;
    try {
      if (this.large === undefined && this.buffered >= FRAME_HEADER_SIZE && (this.need === 0 || this.buffered >= this.need)) this.parseParts();
      this.drainHeld();
    } catch (e) {
      this.fail(e as Error);
      throw e;
    } finally {
      this.busy = false;
    }
  }

  /** Bytes held for a frame not yet complete. */
  get bufferedBytes(): number {
    const large = this.large;
    return large === undefined ? this.buffered : FRAME_HEADER_SIZE + large.have;
  }

  /**
   * The rest of the body of the large frame being received, once its buffer exists (see allocateLargeBodyAt), for
   * a reader that can read straight into it; undefined otherwise. Bytes read into it are then pushed as a view of
   * it, at that position, and are not copied again. Push nothing else in between.
   *
   * `pending`: bytes the reader already holds in its own memory and will push next (a shared-memory ring's
   * extent, say). They count toward the body's share as if received, so the body can exist before they are
   * copied and they land in it once, instead of first in pieces of the reader's and then again in the body.
   * Only count bytes that are really there: the bound stays allocateLargeBodyAt times what the peer sent.
   */
  readTarget(pending = 0): Buffer | undefined {
    const large = this.bodyReady(pending);
    return large === undefined ? undefined : large.body!.subarray(large.have);
  }

  /**
   * Like readTarget() followed by a push of what was read into it, for a reader whose bytes are in memory it
   * does not own and the peer may still change (a shared-memory ring): copies up to `end - start` bytes of
   * `src[start..)` into the large body, checksumming them in the same pass, so the CRC is of exactly the bytes
   * copied, and takes them as received. `copied(n)` is called once the bytes are copied and before a completed
   * frame is delivered (a reader that credits its peer for them can do so ahead of the replies the frame
   * causes). Returns how many bytes it took, at most the rest of the body; 0 when readTarget(end - start) would
   * offer no place, and the caller then pushes those bytes as usual. Throws as push() does.
   */
  copyIn(src: Uint8Array, start: number, end: number, copied: (n: number) => void): number {
    if (this.failed) throw this.failed;
    if (this.busy) return 0;
    const large = this.bodyReady(end - start);
    if (large === undefined) return 0;
    const n = Math.min(end - start, large.size - large.have);
    large.crc = crc32cCopy(src, start, start + n, large.body!, large.have, large.crc);
    large.have += n;
    copied(n);
    if (large.have < large.size) return n;
    this.large = undefined;
    this.guarded(undefined, large);
    return n;
  }

  /** The large frame, once its body exists (allocating it if `pending` completes its share) and the next bytes may go into it. */
  private bodyReady(pending: number): LargeFrame | undefined {
    const large = this.large;
    // While bytes are held back, the body's next position is not where the next read belongs.
    if (large === undefined || this.failed !== undefined || this.heldLen > 0 || this.holding) return undefined;
    const rest = large.size - large.have;
    if (rest < MIN_READ_TARGET) return undefined;
    if (large.body === undefined) {
      if (!(pending > 0)) return undefined;
      try {
        if (!this.allocateBody(large, Math.min(pending, rest))) return undefined;
      } catch (e) {
        // The budget refused for good (over its limit): the next push() throws this, as if it had been refused there.
        this.fail(e as Error);
        return undefined;
      }
    }
    return large;
  }

  push(chunk: Buffer): void {
    if (this.failed) throw this.failed;
    if (chunk.length === 0) return;
    if (this.holding || this.busy) {
      this.held.push(chunk);
      this.heldLen += chunk.length;
      return;
    }
    this.guarded(chunk, undefined);
  }

  /**
   * Consumes `chunk`, or delivers `complete` (a large frame copyIn() just finished), marked busy, then what was
   * pushed meanwhile from inside a frame handler (kept aside by push()'s `busy` check). An error finishes the decoder.
   */
  private guarded(chunk: Buffer | undefined, complete: LargeFrame | undefined): void {
    this.busy = true;
    try {
      if (chunk !== undefined) this.consume(chunk);
      else this.deliverChecked(complete!.word, complete!.body!, complete!.crc);
      if (this.held.length > 0) this.drainHeld();
    } catch (e) {
      this.fail(e as Error);
      throw e;
    } finally {
      this.busy = false;
    }
  }

  private drainHeld(): void {
    while (!this.holding && this.held.length > 0) {
      const chunk = this.held.shift()!;
      this.heldLen -= chunk.length;
      this.consume(chunk);
    }
  }

  private fail(e: Error): void {
    this.failed = e;
    this.parts = [];
    this.buffered = 0;
    this.need = 0;
    this.large = undefined;
    this.held = [];
    this.heldLen = 0;
  }

  private consume(chunk: Buffer): void {
    if (this.large !== undefined) {
      this.feedLarge(this.large, chunk);
    } else if (this.buffered === 0) {
      this.parseChunk(chunk);
    } else {
      this.append(this.parts, chunk);
      this.buffered += chunk.length;
      // A partial body only needs more bytes; skip the parse until the frame can be complete.
      if (this.need === 0 || this.buffered >= this.need) this.parseParts();
    }
  }

  /** Appends a received piece to `list`, copying tiny ones into the staging buffer (see TINY_PIECE). */
  private append(list: Buffer[], piece: Buffer): void {
    const n = piece.length;
    if (n >= TINY_PIECE) {
      list.push(piece);
      return;
    }
    let stage = this.stage;
    let used = this.stageUsed;
    if (stage === undefined || stage.length - used < n) {
      const held = this.buffered + (this.large === undefined ? 0 : this.large.have);
      // Its own small ArrayBuffer, not a slice of Node's shared pool, which it would pin.
      stage = this.stage = Buffer.allocUnsafeSlow(Math.min(STAGE_MAX, Math.max(STAGE_MIN, 2 * held, n)));
      used = 0;
    }
    stage.set(piece, used);
    const last = list.length > 0 ? list[list.length - 1]! : undefined;
    if (last !== undefined && last.buffer === stage.buffer && last.byteOffset + last.length === stage.byteOffset + used) {
      // Still the staging buffer's newest view: widen it rather than add one.
      list[list.length - 1] = stage.subarray(last.byteOffset - stage.byteOffset, used + n);
    } else {
      list.push(stage.subarray(used, used + n));
    }
    this.stageUsed = used + n;
  }

  /** Fast path: nothing pending, so frames are parsed straight out of the chunk. */
  private parseChunk(chunk: Buffer): void {
    let off = 0;
    const len = chunk.length;
    while (!this.holding && len - off >= FRAME_HEADER_SIZE) {
      if (BATCHED) {
        const n = this.checksumAhead(chunk, off, len);
        if (n > 1) {
          off = this.deliverBatch(chunk, n);
          continue;
        }
      }
      const word = u32le(chunk, off);
      const size = u32le(chunk, off + 4);
      this.checkHeader(word, size);
      const end = off + FRAME_HEADER_SIZE + size;
      if (end > len) {
        if (size >= LARGE_FRAME) {
          this.startLarge(word, size, chunk.subarray(off + FRAME_HEADER_SIZE));
          return;
        }
        this.need = FRAME_HEADER_SIZE + size;
        break;
      }
      this.deliver(word, chunk.subarray(off + FRAME_HEADER_SIZE, end));
      off = end;
    }
    if (off < len) {
      const rest = off === 0 ? chunk : chunk.subarray(off);
      if (this.holding) {
        // Ahead of anything held already: this is the older data.
        this.held.unshift(rest);
        this.heldLen += rest.length;
      } else {
        this.append(this.parts, rest);
        this.buffered = rest.length;
      }
    }
  }

  /**
   * Checksums the complete frames that start at `off`, up to BATCH_FRAMES, in one call; returns how many. Stops
   * before a header that checkHeader() would refuse: the per-frame path reaches it after the frames ahead of it
   * have been delivered, and throws there, as it always has.
   */
  private checksumAhead(chunk: Buffer, off: number, len: number): number {
    let ranges = this.batchRanges;
    if (ranges === undefined) {
      // Only worth it when a second complete frame follows the first: a lone frame takes the per-frame path.
      if (len - off < 2 * FRAME_HEADER_SIZE) return 0;
      const scratch = new Int32Array(4 * BATCH_FRAMES);
      ranges = this.batchRanges = scratch.subarray(0, 2 * BATCH_FRAMES);
      this.batchWords = scratch.subarray(2 * BATCH_FRAMES, 3 * BATCH_FRAMES);
      this.batchCrcs = scratch.subarray(3 * BATCH_FRAMES);
    }
    const words = this.batchWords!;
    let n = 0;
    let at = off;
    while (n < BATCH_FRAMES && len - at >= FRAME_HEADER_SIZE) {
      const word = u32le(chunk, at);
      const size = u32le(chunk, at + 4);
      if (this.headerError(word, size) !== undefined) break;
      const end = at + FRAME_HEADER_SIZE + size;
      if (end > len) break;
      ranges[2 * n] = at + FRAME_HEADER_SIZE;
      ranges[2 * n + 1] = end;
      words[n] = word;
      n++;
      at = end;
    }
    if (n > 1) crc32cRanges(chunk, ranges, n, this.batchCrcs!);
    return n;
  }

  /** Delivers the `n` frames checksumAhead() found, until hold() is called; returns where the next frame starts. */
  private deliverBatch(chunk: Buffer, n: number): number {
    const ranges = this.batchRanges!;
    const words = this.batchWords!;
    const crcs = this.batchCrcs!;
    // Read once for the batch, so that each frame's view (and each bin value decoded in it) costs a constructor call.
    const ab = chunk.buffer;
    const base = chunk.byteOffset;
    const body = deliveredBody;
    let off = ranges[0]! - FRAME_HEADER_SIZE;
    try {
      for (let i = 0; i < n && !this.holding; i++) {
        const start = ranges[2 * i]!;
        const end = ranges[2 * i + 1]!;
        const view = bufferView(ab, base + start, end - start);
        body.view = view;
        body.ab = ab;
        body.offset = base + start;
        this.deliverChecked(words[i]!, view, crcs[i]!);
        off = end;
      }
    } finally {
      // Not left pointing at the chunk: it would keep it alive until the next batch.
      body.view = undefined;
      body.ab = undefined;
    }
    return off;
  }

  /** Slow path: a frame spans chunks. */
  private parseParts(): void {
    while (!this.holding && this.buffered >= FRAME_HEADER_SIZE) {
      if (this.need === 0) {
        const header = this.peekHeader();
        const size = header.readUInt32LE(4);
        const word = header.readUInt32LE(0);
        this.checkHeader(word, size);
        this.need = FRAME_HEADER_SIZE + size;
        if (size >= LARGE_FRAME && this.buffered < this.need) {
          // The header came in pieces; everything buffered after it is the start of this body.
          this.take(FRAME_HEADER_SIZE);
          const rest = this.parts;
          this.parts = [];
          this.buffered = 0;
          this.need = 0;
          this.startLarge(word, size, undefined);
          for (const p of rest) this.feedLarge(this.large!, p);
          return;
        }
      }
      if (this.buffered < this.need) return;
      const frame = this.take(this.need);
      this.need = 0;
      this.deliver(frame.readUInt32LE(0), frame.subarray(FRAME_HEADER_SIZE));
      if (this.buffered > 0 && this.parts.length === 1) {
        // Back to a single chunk: let the fast path handle the rest without copying.
        const rest = this.parts[0]!;
        this.parts = [];
        this.buffered = 0;
        this.parseChunk(rest);
        return;
      }
    }
  }

  private checkHeader(word: number, size: number): void {
    const err = this.headerError(word, size);
    if (err !== undefined) throw err;
  }

  /** Why a frame header is refused (bad magic, or a size at or over maxMessageSize), or undefined when it is fine. */
  private headerError(word: number, size: number): Error | undefined {
    if ((word & 0xfe) !== FRAME_MAGIC) {
      return new InvalidMessageTypeError(`bad frame magic 0x${(word & 0xff).toString(16).padStart(2, '0')}, expected 0x86`, { peer: this.peer });
    }
    if (size >= this.maxMessageSize) {
      return new InvalidFormatError(`frame size ${size} is at or above the limit ${this.maxMessageSize}`, { peer: this.peer });
    }
    return undefined;
  }

  private deliver(word: number, body: Buffer): void {
    this.deliverChecked(word, body, crc32c(body));
  }

  private deliverChecked(word: number, body: Buffer, crc: number): void {
    // Compare with an xor: `&` yields a signed int32, so masking both sides separately mis-compares
    // every CRC with the top bit set.
    if (((crc ^ word) & 0xffffff00) !== 0) {
      throw new DataCorruptionError(
        `frame checksum mismatch: header 0x${(word >>> 0).toString(16)}, body crc 0x${(crc >>> 0).toString(16)} over ${body.length} bytes`,
        { peer: this.peer },
      );
    }
    this.delivered++;
    this.onFrame(body, (word & FRAME_COMPRESSED) !== 0);
  }

  /** Enters large-frame mode once its header is consumed; `first` is what already arrived of the body. */
  private startLarge(word: number, size: number, first: Buffer | undefined): void {
    this.large = { word, size, have: 0, crc: 0, parts: [], body: undefined };
    if (first !== undefined && first.length > 0) this.feedLarge(this.large, first);
  }

  private feedLarge(large: LargeFrame, chunk: Buffer): void {
    const want = large.size - large.have;
    const piece = chunk.length <= want ? chunk : chunk.subarray(0, want);
    large.crc = crc32c(piece, large.crc);
    const body = large.body;
    if (body !== undefined) {
      // Read straight into place through readTarget(): nothing to copy.
      if (piece.buffer !== body.buffer || piece.byteOffset !== body.byteOffset + large.have) body.set(piece, large.have);
      large.have += piece.length;
    } else {
      this.append(large.parts, piece);
      large.have += piece.length;
      this.allocateBody(large, 0);
    }
    if (large.have < large.size) return;
    this.large = undefined;
    this.deliverChecked(large.word, large.body!, large.crc);
    if (piece.length < chunk.length) this.parseChunk(chunk.subarray(piece.length));
  }

  /**
   * Allocates the contiguous body once its share (`have` plus `coming` bytes that are already here) has arrived,
   * and copies in the pieces received so far: a stalled or lying peer cannot make us allocate more than
   * allocateFactor times what it sent. A complete body needs no permission from the budget: it is joined at the
   * size of what arrived. Returns whether the body exists.
   */
  private allocateBody(large: LargeFrame, coming: number): boolean {
    const have = large.have;
    if ((have + coming) * this.allocateFactor < large.size) return false;
    if (have !== large.size && this.reserve !== undefined && !this.reserve(large.size - have)) return false;
    const whole = Buffer.allocUnsafe(large.size);
    let at = 0;
    for (const p of large.parts) {
      whole.set(p, at);
      at += p.length;
    }
    large.parts = [];
    large.body = whole;
    return true;
  }

  /** The 8 header bytes at the head of the buffered data, without consuming them or joining chunks. */
  private peekHeader(): Buffer {
    const first = this.parts[0]!;
    if (first.length >= FRAME_HEADER_SIZE) return first;
    let filled = 0;
    for (let i = 0; filled < FRAME_HEADER_SIZE; i++) {
      const p = this.parts[i]!;
      filled += p.copy(this.header, filled, 0, Math.min(p.length, FRAME_HEADER_SIZE - filled));
    }
    return this.header;
  }

  /** Consume exactly n buffered bytes as one contiguous buffer. */
  private take(n: number): Buffer {
    const first = this.parts[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.parts.shift();
      else this.parts[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      let used = 0;
      while (filled < n) {
        const p = this.parts[used]!;
        const want = n - filled;
        if (p.length <= want) {
          out.set(p, filled);
          filled += p.length;
          used++;
        } else {
          out.set(p.subarray(0, want), filled);
          this.parts[used] = p.subarray(want);
          filled += want;
        }
      }
      // One splice instead of a shift per chunk: a frame received a byte at a time has many parts.
      this.parts.splice(0, used);
    }
    this.buffered -= n;
    return out;
  }
}
