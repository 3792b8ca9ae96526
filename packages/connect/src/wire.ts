/**
 * What IBSocket puts in wr_id and in immediate data (3FS §4.5).
 *
 * wr_id is local only: a type stamp above a 48-bit value. 3FS keeps the type in the top 16 bits of a u64; here
 * wr_id is a JS number (the device layer keeps it below 2^53 so no BigInt is made per completion), so the type
 * sits at bit 48 and must stay below 32.
 *
 * Immediate data crosses the wire as a big-endian `__be32` (the device layer writes and reads it big-endian):
 * `type << 24 | value`, value 24 bits.
 */
import { InvalidArgError } from '@ffnet/serde';

/** WINDOW: a memory window's BIND_MW or LOCAL_INV (IBSocket.expose), handled by the socket shell, never the core. */
export const WrType = { SEND: 0, RECV: 1, ACK: 2, RDMA: 3, RDMA_LAST: 4, CLOSE: 5, CHECK: 6, WINDOW: 7 } as const;
export type WrType = (typeof WrType)[keyof typeof WrType];

const VALUE_BITS = 2 ** 48;

export function wrId(type: WrType, value: number): number {
  return type * VALUE_BITS + value;
}

export function wrIdType(id: number): number {
  return Math.floor(id / VALUE_BITS);
}

export function wrIdValue(id: number): number {
  return id % VALUE_BITS;
}

export const ImmType = { ACK: 0, CLOSE: 1 } as const;
export type ImmType = (typeof ImmType)[keyof typeof ImmType];

export const IMM_VALUE_MAX = 0xff_ffff;

/** The host-order immediate for (type, value); the device layer stores it big-endian. */
export function encodeImm(type: ImmType, value: number): number {
  if (!(Number.isInteger(value) && value >= 0 && value <= IMM_VALUE_MAX)) throw new InvalidArgError(`immediate value ${value} does not fit 24 bits`);
  return ((type << 24) | value) >>> 0;
}

export function immType(imm: number): number {
  return imm >>> 24;
}

export function immValue(imm: number): number {
  return imm & IMM_VALUE_MAX;
}
