import { type FfnetError, InvalidFormatError } from '@ffnet/serde';
import type { Address, BackendHandlers, BackendSocket, PeerCredentials } from '@ffnet/transport';
import { BackendSocketBase } from '@ffnet/transport/internal';
import type { Mapping } from './native.js';

/**
 * Records on the unix socket after the hello. Each starts with a type byte; its header size is fixed by the type.
 * The byte stream the Transport sees is the concatenation of INLINE payloads and RING extents, in record order.
 */
export const REC_INLINE = 1; // [1][len u32]: len stream bytes follow on the socket
export const REC_RING = 2; // [2][offset u32][len u32]: len stream bytes lie in the sender's ring at offset
export const REC_CREDIT = 3; // [3][n u32]: the receiver is done with the next n bytes of the sender's ring
export const REC_ACK = 4; // [4][status u8]: the server's answer to the hello (0 = accepted), once, first
const HEADER_BYTES: readonly number[] = [0, 5, 9, 5, 2];
const MAX_HEADER = 9;

/** Hello answers other than ACCEPTED close the connection; the client names them in its ConnectFailedError. */
export const ACK_ACCEPTED = 0;
export const ACK_REFUSED: Readonly<Record<number, string>> = {
  1: 'the hello was malformed or its segments missing',
  2: 'a segment is larger than the server allows (maxSegmentBytes)',
  3: 'a segment is not sealed against shrinking and growing',
  4: 'the server could not map the segments',
};

/** A ring extent smaller than this is not worth a descriptor when the ring has no more contiguous room. */
const MIN_RING_PIECE = 16 * 1024;
/** Ring bytes copied out per data() call when the owner offers no place for them (see drainRing). */
const UNTARGETED_PIECE = 64 * 1024;
const SLAB_BYTES = 16 * 1024;

export interface ShmSocketStats {
  readonly ringBytesSent: number;
  readonly inlineBytesSent: number;
  readonly ringBytesReceived: number;
  readonly inlineBytesReceived: number;
  /** Ring bytes copied into staging memory of ours because the owner had no place for them yet (then copied again). */
  readonly ringBytesStaged: number;
}

export interface ShmSocketParts {
  inner: BackendSocket;
  remote: Address;
  peer: string;
  local: string;
  /** Our ring to the peer (writable mapping) and the peer's ring to us (read-only). */
  tx: Mapping;
  rx: Mapping;
  thresholdBytes: number;
  /** Client: the connect waits for the server's ACK; called once with its status, or with an error on close. */
  onAck?: (status: number | FfnetError | undefined) => void;
}

/**
 * A connection of shm(): the unix socket carries small writes inline and descriptors of large ones, whose bytes
 * travel through the sender's shared ring. The receiver copies each extent out of the ring (bounds-checked, into
 * the owner's readInto() region when it has one) before the owner sees it, so the frame CRC is checked on our copy
 * and a peer rewriting its ring afterwards changes nothing. When the ring has no room the bytes go inline: a
 * sender never waits for credits, so a receiver that stops reading cannot deadlock it, and memory stays the two
 * fixed rings plus what the unix socket already bounds.
 */
export class ShmSocket extends BackendSocketBase {
  readonly scheme = 'shm' as const;
  private readonly inner: BackendSocket;
  private readonly tx: Mapping;
  private readonly rx: Mapping;
  private readonly threshold: number;
  private onAck: ShmSocketParts['onAck'];
  // Sender: monotonic byte counts of our ring, written (tail) and credited back (head).
  private txTail = 0;
  private txHead = 0;
  private slab: Buffer = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private slabUsed = 0;
  /** Per inner write in flight, whether it was the owner's (1) or ours (credits, the ACK: 0). */
  private kinds: number[] = [];
  private kindsAt = 0;
  // Receiver.
  private held: Buffer[] = [];
  private heldAt = 0;
  private readonly hdr = Buffer.alloc(MAX_HEADER);
  private hdrHave = 0;
  private inlineLeft = 0;
  private ringOff = 0;
  private ringLeft = 0;
  private ringLen = 0;
  private credit = 0;
  private failure: FfnetError | undefined;
  private readonly counts = { ringBytesSent: 0, inlineBytesSent: 0, ringBytesReceived: 0, inlineBytesReceived: 0, ringBytesStaged: 0 };
  /** Nothing more is read or delivered (destroyed, or a protocol error). */
  private dead = false;
  /** The unix socket has closed: held bytes are still delivered, then the close is reported. */
  private innerClosed = false;

  constructor(p: ShmSocketParts) {
    super(p.remote, p.peer, p.local);
    this.inner = p.inner;
    this.tx = p.tx;
    this.rx = p.rx;
    this.threshold = p.thresholdBytes;
    this.onAck = p.onAck;
    p.inner.setHandlers({ data: this.onInnerData, drain: this.onInnerDrain, written: this.onInnerWritten, close: this.onInnerClose });
  }

  /** Server: the hello's answer, the first record on the socket. */
  sendAck(status: number): void {
    const b = this.header(REC_ACK);
    b[1] = status;
    this.controlWrite([b]);
  }

  /** Stream bytes this connection moved through the rings and inline on the socket, each way. */
  stats(): ShmSocketStats {
    return { ...this.counts };
  }

  override peerCredentials(): PeerCredentials | undefined {
    return this.inner.peerCredentials?.();
  }

  // ---- sending ----

  private header(type: number): Buffer {
    const n = HEADER_BYTES[type]!;
    // Headers are views of a slab that is never reused, so they stay valid until the socket has written them.
    if (SLAB_BYTES - this.slabUsed < n) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.slabUsed = 0;
    }
    const b = this.slab.subarray(this.slabUsed, this.slabUsed + n);
    this.slabUsed += n;
    b[0] = type;
    return b;
  }

  private controlWrite(bufs: Uint8Array[]): void {
    this.kinds.push(0);
    this.inner.write(bufs);
  }

  write(bufs: readonly Uint8Array[]): boolean {
    const n = bufs.length;
    if (n === 0) throw new InvalidFormatError('write() needs at least one buffer', { peer: this.peer });
    if (this.dead || this.innerClosed) return false;
    const out: Uint8Array[] = [];
    if (this.credit > 0) out.push(this.creditRecord());
    const threshold = this.threshold;
    let i = 0;
    while (i < n) {
      const b = bufs[i]!;
      if (b.length >= threshold) {
        this.putLarge(b, out);
        i++;
        continue;
      }
      // A run of small buffers: one INLINE header, the buffers themselves after it (no copy).
      let len = 0;
      let j = i;
      while (j < n && bufs[j]!.length < threshold) len += bufs[j++]!.length;
      if (len > 0) {
        const h = this.header(REC_INLINE);
        h.writeUInt32LE(len, 1);
        this.counts.inlineBytesSent += len;
        out.push(h);
        for (let k = i; k < j; k++) if (bufs[k]!.length > 0) out.push(bufs[k]!);
      }
      i = j;
    }
    if (out.length === 0) out.push(this.emptyInline());
    this.kinds.push(1);
    return this.inner.write(out);
  }

  /** A write() of only empty buffers still owes its written(): an empty INLINE record carries it. */
  private emptyInline(): Buffer {
    const h = this.header(REC_INLINE);
    h.writeUInt32LE(0, 1);
    return h;
  }

  /** Into the ring as far as it has contiguous room, the rest inline. */
  private putLarge(b: Uint8Array, out: Uint8Array[]): void {
    const ring = this.tx.bytes;
    const size = this.tx.size;
    let at = 0;
    let left = b.length;
    while (left > 0) {
      const free = size - (this.txTail - this.txHead);
      const pos = this.txTail % size;
      const room = Math.min(free, size - pos);
      if (room < Math.min(left, MIN_RING_PIECE)) break;
      const k = Math.min(room, left);
      ring.set(at === 0 && k === b.length ? b : b.subarray(at, at + k), pos);
      const h = this.header(REC_RING);
      h.writeUInt32LE(pos, 1);
      h.writeUInt32LE(k, 5);
      out.push(h);
      this.txTail += k;
      this.counts.ringBytesSent += k;
      at += k;
      left -= k;
    }
    if (left > 0) {
      const h = this.header(REC_INLINE);
      h.writeUInt32LE(left, 1);
      this.counts.inlineBytesSent += left;
      out.push(h, at === 0 ? b : b.subarray(at));
    }
  }

  private creditRecord(): Buffer {
    const h = this.header(REC_CREDIT);
    h.writeUInt32LE(this.credit, 1);
    this.credit = 0;
    return h;
  }

  private readonly onInnerWritten = (): void => {
    const kind = this.kinds[this.kindsAt++];
    if (this.kindsAt > 1024 && this.kindsAt * 2 > this.kinds.length) {
      this.kinds = this.kinds.slice(this.kindsAt);
      this.kindsAt = 0;
    }
    if (kind === 1) this.handlers?.written();
  };

  private readonly onInnerDrain = (): void => {
    this.handlers?.drain();
  };

  // ---- receiving ----

  private readonly onInnerData = (chunk: Buffer): void => {
    if (this.dead) return;
    this.held.push(chunk);
    this.process();
    this.afterProcess();
  };

  /** Parses and delivers what is held, until it runs out, the owner pauses or is absent, or the socket dies. */
  private process(): void {
    while (!this.dead) {
      if (this.onAck !== undefined) {
        // Client, before the server's answer: nothing but the ACK may come first.
        if (!this.readHeader()) return;
        if (this.hdr[0] !== REC_ACK) {
          this.fail('the server did not answer the shm hello');
          return;
        }
        const ack = this.onAck;
        this.onAck = undefined;
        ack(this.hdr[1]!);
        continue;
      }
      const h = this.handlers;
      if (h === undefined || this.paused) {
        // Held until the owner is there (or resumes); the socket stops too, so at most a chunk in flight is held.
        this.inner.pause();
        return;
      }
      if (this.ringLeft > 0) {
        this.drainRing(h);
        continue;
      }
      if (this.inlineLeft > 0) {
        const c = this.held[0];
        if (c === undefined) return;
        const avail = c.length - this.heldAt;
        const k = Math.min(avail, this.inlineLeft);
        const piece = this.heldAt === 0 && k === c.length ? c : c.subarray(this.heldAt, this.heldAt + k);
        this.consume(k);
        this.inlineLeft -= k;
        this.counts.inlineBytesReceived += k;
        h.data(piece);
        continue;
      }
      if (!this.readHeader()) return;
      const type = this.hdr[0]!;
      if (type === REC_INLINE) {
        this.inlineLeft = this.hdr.readUInt32LE(1);
      } else if (type === REC_RING) {
        const off = this.hdr.readUInt32LE(1);
        const len = this.hdr.readUInt32LE(5);
        if (len === 0 || off + len > this.rx.size) {
          this.fail(`bad ring descriptor: ${len} bytes at offset ${off} of a ${this.rx.size}-byte segment`);
          return;
        }
        this.ringOff = off;
        this.ringLeft = len;
        this.ringLen = len;
      } else if (type === REC_CREDIT) {
        const n = this.hdr.readUInt32LE(1);
        if (n > this.txTail - this.txHead) {
          this.fail(`credit of ${n} bytes, but only ${this.txTail - this.txHead} are outstanding in our ring`);
          return;
        }
        this.txHead += n;
      } else {
        this.fail(`unexpected record type ${type}`);
        return;
      }
    }
  }

  /** The next record header into `hdr`, across chunks; false when it is not all here yet. */
  private readHeader(): boolean {
    while (true) {
      const c = this.held[0];
      if (c === undefined) return false;
      if (this.heldAt >= c.length) {
        this.consume(0);
        continue;
      }
      const need = this.hdrHave === 0 ? HEADER_BYTES[c[this.heldAt]!] : HEADER_BYTES[this.hdr[0]!];
      if (need === undefined || need === 0) {
        this.fail(`unknown record type ${c[this.heldAt]}`);
        return false;
      }
      const k = Math.min(need - this.hdrHave, c.length - this.heldAt);
      c.copy(this.hdr, this.hdrHave, this.heldAt, this.heldAt + k);
      this.hdrHave += k;
      this.consume(k);
      if (this.hdrHave === need) {
        this.hdrHave = 0;
        return true;
      }
    }
  }

  /** Advances past `k` bytes of held[0], dropping it once used up. */
  private consume(k: number): void {
    this.heldAt += k;
    const c = this.held[0]!;
    if (this.heldAt >= c.length) {
      this.held.shift();
      this.heldAt = 0;
    }
  }

  /**
   * Copies the current ring extent out and credits the ring once done. An owner with copyIn() (the Transport)
   * copies it straight into the frame body it is filling, checksumming in the same pass, so the ring is read once
   * and the CRC is of the bytes copied. Otherwise, or while the owner has no body to fill, the bytes go into its
   * readInto() region or into pieces of ours (so the frame decoder learns the frame and allocates its body).
   */
  private drainRing(h: BackendHandlers): void {
    const ring = this.rx.bytes;
    while (this.ringLeft > 0 && !this.dead && !this.paused) {
      // The extent is already in our mapping, so the owner may count it toward the body it will end up in.
      if (h.copyIn !== undefined && h.copyIn(ring, this.ringOff, this.ringOff + this.ringLeft, this.tookFromRing) > 0) continue;
      let into = h.readInto?.(this.ringLeft);
      if (into === undefined || into.length === 0) {
        into = Buffer.allocUnsafe(Math.min(this.ringLeft, UNTARGETED_PIECE));
        this.counts.ringBytesStaged += into.length;
      }
      const k = Math.min(into.length, this.ringLeft);
      ring.copy(into, 0, this.ringOff, this.ringOff + k);
      this.tookFromRing(k);
      h.data(k === into.length ? into : into.subarray(0, k));
    }
  }

  /** `k` bytes of the current extent are copied out; the whole extent is credited once none is left. */
  private readonly tookFromRing = (k: number): void => {
    this.ringOff += k;
    this.ringLeft -= k;
    this.counts.ringBytesReceived += k;
    if (this.ringLeft === 0) this.credit += this.ringLen;
  };

  private fail(why: string): void {
    if (this.dead) return;
    this.failure = new InvalidFormatError(`shm protocol error from ${this.peer}: ${why}`, { peer: this.peer });
    this.dead = true;
    this.inner.destroy();
  }

  private readonly onInnerClose = (err?: FfnetError): void => {
    this.innerClosed = true;
    const e = this.failure ?? err;
    if (this.onAck !== undefined) {
      const ack = this.onAck;
      this.onAck = undefined;
      this.dead = true;
      this.release();
      ack(e);
      return;
    }
    // What arrived before the close is still the owner's (read from the ring before it is unmapped).
    if (this.dead || !this.pending()) this.release();
    this.reportClose(e);
  };

  private pending(): boolean {
    return this.held.length > 0 || this.ringLeft > 0;
  }

  /** Unmaps both rings. No view of either has left this object (bytes are copied in and out), so this is safe. */
  private release(): void {
    this.held = [];
    this.ringLeft = 0;
    this.tx.unmap();
    this.rx.unmap();
  }

  /** After delivering: a close that waited for held bytes is reported once they are gone. */
  private afterProcess(): void {
    if (this.innerClosed) {
      if (this.dead || !this.pending()) {
        this.release();
        this.flushClose();
      }
    } else if (this.credit > 0 && !this.dead) {
      this.controlWrite([this.creditRecord()]);
    }
  }

  protected override holdClose(): boolean {
    return !this.dead && this.pending();
  }

  protected attach(_h: BackendHandlers): boolean {
    // Bytes held since the ACK are delivered on the next turn, after setHandlers has returned (as from a socket).
    if (this.held.length > 0) queueMicrotask(this.kick);
    return true;
  }

  private readonly kick = (): void => {
    if (this.handlers !== undefined && !this.paused) {
      this.process();
      this.afterProcess();
    }
  };

  protected pauseSource(): void {
    this.inner.pause();
  }

  protected resumeSource(): void {
    if (this.held.length > 0 || this.ringLeft > 0) queueMicrotask(this.kick);
    this.inner.resume();
  }

  end(): void {
    this.inner.end();
  }

  destroy(): void {
    this.dead = true;
    this.inner.destroy();
    // Already closed with bytes held for an owner that now wants none of them.
    if (this.innerClosed) this.afterProcess();
  }
}
