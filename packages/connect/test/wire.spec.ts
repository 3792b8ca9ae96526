import { FfnetError } from '@ffnet/serde';
import { describe, expect, it } from 'vitest';
import { encodeImm, ImmType, immType, immValue, WrType, wrId, wrIdType, wrIdValue } from '../src/wire.js';

describe('wr_id stamps', () => {
  it('round-trip every type with values up to 48 bits, staying a safe integer', () => {
    for (const type of Object.values(WrType)) {
      for (const value of [0, 1, 8, 0xffff_ffff, 2 ** 40 + 12345, 2 ** 48 - 1]) {
        const id = wrId(type, value);
        expect(Number.isSafeInteger(id)).toBe(true);
        expect(wrIdType(id)).toBe(type);
        expect(wrIdValue(id)).toBe(value);
      }
    }
  });

  it('keeps types distinct', () => {
    const ids = new Set(Object.values(WrType).map((t) => wrId(t, 7)));
    expect(ids.size).toBe(Object.keys(WrType).length);
  });
});

describe('immediate data', () => {
  it('puts the type in the top byte and the value in the low 24 bits', () => {
    expect(encodeImm(ImmType.ACK, 8)).toBe(0x0000_0008);
    expect(encodeImm(ImmType.CLOSE, 0)).toBe(0x0100_0000);
    expect(encodeImm(ImmType.ACK, 0xff_ffff)).toBe(0x00ff_ffff);
    const imm = encodeImm(ImmType.CLOSE, 0x12_3456);
    expect([immType(imm), immValue(imm)]).toEqual([ImmType.CLOSE, 0x12_3456]);
  });

  it('travels big-endian: the type byte goes first on the wire', () => {
    // The device layer stores imm_data with DataView big-endian; this is what the peer's NIC delivers.
    const wire = Buffer.alloc(4);
    new DataView(wire.buffer, wire.byteOffset).setUint32(0, encodeImm(ImmType.CLOSE, 0x0a0b0c), false);
    expect([...wire]).toEqual([0x01, 0x0a, 0x0b, 0x0c]);
    const back = new DataView(wire.buffer, wire.byteOffset).getUint32(0, false);
    expect([immType(back), immValue(back)]).toEqual([ImmType.CLOSE, 0x0a0b0c]);
  });

  it('refuses values that do not fit 24 bits', () => {
    expect(() => encodeImm(ImmType.ACK, 1 << 24)).toThrow(/24 bits/);
    expect(() => encodeImm(ImmType.ACK, -1)).toThrow(FfnetError);
  });
});
