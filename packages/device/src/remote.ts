/**
 * RDMARemoteBuf: what a peer needs to RDMA-read or -write a registered range: its address, its length, and
 * the rkey for each of the owner's devices (the sender picks the one for the device its QP is on).
 * Binary form (3FS serde, §2.2): u64 addr ‖ u64 size ‖ u8 n ‖ n × (u32 rkey ‖ i32 devId), little-endian.
 * It also travels inside ffnet messages as msgpack extension RDMA_REMOTE_BUF_EXT_TYPE, carrying those bytes.
 */
import { InvalidArgError, InvalidFormatError } from '@ffnet/common';
import { registerExtension } from '@ffnet/serde';

export interface RKey {
  readonly rkey: number;
  readonly devId: number;
}

/** The msgpack extension type id RDMARemoteBuf is registered under in @ffnet/serde. */
export const RDMA_REMOTE_BUF_EXT_TYPE = 17;

const HEADER = 17;
const PER_KEY = 8;

export class RDMARemoteBuf {
  #addr: bigint;
  #length: number;
  readonly rkeys: readonly RKey[];

  constructor(addr: bigint, length: number, rkeys: readonly RKey[]) {
    if (typeof addr !== 'bigint' || addr < 0n || addr > 0xffff_ffff_ffff_ffffn) throw new InvalidArgError(`RDMARemoteBuf: bad address ${addr}`);
    if (!Number.isSafeInteger(length) || length < 0) throw new InvalidArgError(`RDMARemoteBuf: bad length ${length}`);
    if (rkeys.length > 255) throw new InvalidArgError(`RDMARemoteBuf: ${rkeys.length} rkeys (max 255)`);
    for (const k of rkeys) {
      if (!Number.isInteger(k.rkey) || k.rkey < 0 || k.rkey > 0xffff_ffff || !Number.isInteger(k.devId) || k.devId < -0x8000_0000 || k.devId > 0x7fff_ffff) {
        throw new InvalidArgError(`RDMARemoteBuf: bad rkey entry ${JSON.stringify(k)}`);
      }
    }
    this.#addr = addr;
    this.#length = length;
    this.rkeys = rkeys;
  }

  get addr(): bigint {
    return this.#addr;
  }

  get length(): number {
    return this.#length;
  }

  /** 3FS: a default-constructed remote buffer (address 0) is invalid. */
  get valid(): boolean {
    return this.#addr !== 0n;
  }

  /** The rkey for device `devId` of the owner, or undefined. */
  rkey(devId: number): number | undefined {
    for (const k of this.rkeys) if (k.devId === devId) return k.rkey;
    return undefined;
  }

  advance(n: number): boolean {
    if (!(n >= 0 && n <= this.#length)) return false;
    this.#addr += BigInt(n);
    this.#length -= n;
    return true;
  }

  subtract(n: number): boolean {
    if (!(n >= 0 && n <= this.#length)) return false;
    this.#length -= n;
    return true;
  }

  subrange(offset: number, length: number): RDMARemoteBuf | null {
    if (!(offset >= 0 && length >= 0 && offset + length <= this.#length)) return null;
    return new RDMARemoteBuf(this.#addr + BigInt(offset), length, this.rkeys);
  }

  first(n: number): RDMARemoteBuf | null {
    return this.subrange(0, n);
  }

  last(n: number): RDMARemoteBuf | null {
    return this.subrange(this.#length - n, n);
  }

  takeFirst(n: number): RDMARemoteBuf | null {
    const b = this.first(n);
    if (b) this.advance(n);
    return b;
  }

  takeLast(n: number): RDMARemoteBuf | null {
    const b = this.last(n);
    if (b) this.subtract(n);
    return b;
  }

  equals(o: RDMARemoteBuf): boolean {
    return (
      this.#addr === o.#addr &&
      this.#length === o.#length &&
      this.rkeys.length === o.rkeys.length &&
      this.rkeys.every((k, i) => k.rkey === o.rkeys[i]!.rkey && k.devId === o.rkeys[i]!.devId)
    );
  }

  /** 8 + 8 + 1 + 8n. */
  get encodedLength(): number {
    return HEADER + PER_KEY * this.rkeys.length;
  }

  /** The binary form, written into `target` at `offset` if given (returns the bytes written as a view). */
  encode(target?: Uint8Array, offset = 0): Buffer {
    const len = this.encodedLength;
    if (target && !(offset >= 0 && offset + len <= target.length)) {
      throw new InvalidArgError(`RDMARemoteBuf.encode: needs ${len} bytes at offset ${offset} of ${target.length}`);
    }
    const out = target ? Buffer.from(target.buffer, target.byteOffset + offset, len) : Buffer.allocUnsafe(len);
    out.writeBigUInt64LE(this.#addr, 0);
    out.writeBigUInt64LE(BigInt(this.#length), 8);
    out.writeUInt8(this.rkeys.length, 16);
    let o = HEADER;
    for (const k of this.rkeys) {
      out.writeUInt32LE(k.rkey, o);
      out.writeInt32LE(k.devId, o + 4);
      o += PER_KEY;
    }
    return out;
  }

  /** Decodes the binary form at `offset`; `bytesRead` says how much it used. */
  static decodeFrom(data: Uint8Array, offset = 0): { value: RDMARemoteBuf; bytesRead: number } {
    const avail = data.length - offset;
    if (avail < HEADER) throw new InvalidFormatError(`RDMARemoteBuf: need ${HEADER} bytes, have ${Math.max(avail, 0)}`);
    const b = Buffer.from(data.buffer, data.byteOffset + offset, avail);
    const addr = b.readBigUInt64LE(0);
    const size = b.readBigUInt64LE(8);
    const n = b.readUInt8(16);
    if (avail < HEADER + PER_KEY * n) throw new InvalidFormatError(`RDMARemoteBuf: ${n} rkeys need ${HEADER + PER_KEY * n} bytes, have ${avail}`);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidFormatError(`RDMARemoteBuf: length ${size} is too large`);
    const rkeys: RKey[] = [];
    for (let i = 0, o = HEADER; i < n; i++, o += PER_KEY) rkeys.push({ rkey: b.readUInt32LE(o), devId: b.readInt32LE(o + 4) });
    return { value: new RDMARemoteBuf(addr, Number(size), rkeys), bytesRead: HEADER + PER_KEY * n };
  }

  /** Decodes a buffer that holds exactly one RDMARemoteBuf. */
  static decode(data: Uint8Array): RDMARemoteBuf {
    const { value, bytesRead } = RDMARemoteBuf.decodeFrom(data);
    if (bytesRead !== data.length) throw new InvalidFormatError(`RDMARemoteBuf: ${data.length - bytesRead} trailing bytes`);
    return value;
  }

  toJSON(): { addr: string; length: number; rkeys: readonly RKey[] } {
    return { addr: `0x${this.#addr.toString(16)}`, length: this.#length, rkeys: this.rkeys };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    const keys = this.rkeys.map((k) => `${k.devId}:0x${k.rkey.toString(16)}`).join(', ');
    return `RDMARemoteBuf { addr: 0x${this.#addr.toString(16)}, length: ${this.#length}, rkeys: [${keys}] }`;
  }
}

let registered = false;

/**
 * Registers the msgpack extension (done when this module loads). A second copy of @ffnet/device in the same
 * process finds the type taken and leaves the first registration in place rather than failing the import.
 */
export function registerRemoteBufExtension(): boolean {
  if (registered) return true;
  try {
    registerExtension<RDMARemoteBuf>({
      type: RDMA_REMOTE_BUF_EXT_TYPE,
      Class: RDMARemoteBuf,
      write: (v) => v.encode(),
      read: (data) => RDMARemoteBuf.decode(data),
    });
    registered = true;
  } catch {
    // The type is taken (another copy of this package registered it first): reported by the false return.
    registered = false;
  }
  return registered;
}

registerRemoteBufExtension();
