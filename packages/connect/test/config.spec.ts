import { FfnetError, StatusCode } from '@ffnet/serde';
import { describe, expect, it } from 'vitest';
import { checkIBSocketConfig, IB_SOCKET_DEFAULTS, ibSocketSizes, resolveIBSocketConfig } from '../src/index.js';

// 3FS TestIBSocket's config (§4.8).
const TEST_3FS = { bufSize: 512, sendBufCnt: 32, bufAckBatch: 4, bufSignalBatch: 4, maxRdmaWr: 7, maxRdmaWrPerPost: 5, maxSge: 3, retryCnt: 0 };

function invalidConfig(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(FfnetError.is(e)).toBe(true);
    expect((e as FfnetError).code).toBe(StatusCode.InvalidConfig);
    return (e as Error).message;
  }
  throw new Error('expected InvalidConfigError');
}

describe('IBSocket config', () => {
  it('has 3FS defaults and derives 3FS sizes from them', () => {
    const c = resolveIBSocketConfig();
    expect(c).toEqual(IB_SOCKET_DEFAULTS);
    expect(c).toMatchObject({ bufSize: 16384, sendBufCnt: 32, bufAckBatch: 8, bufSignalBatch: 8, eventAckBatch: 128, maxSge: 16, maxRdmaWr: 128 });
    expect(c).toMatchObject({ maxRdmaWrPerPost: 32, maxRdAtomic: 16, minRnrTimer: 1, timeout: 14, retryCnt: 7, rnrRetry: 0, drainTimeoutMs: 5000 });
    expect(ibSocketSizes(c)).toEqual({ qpAckBufs: 8, maxSendWr: 170, maxRecvWr: 41, cqEntries: 211, bufferBytes: (32 + 41) * 16384 });
  });

  it('derives the sizes of 3FS test config', () => {
    const c = resolveIBSocketConfig(TEST_3FS);
    // ceil(32/4)+4 = 12; 32+12+7+2 = 53; 32+12+1 = 45.
    expect(ibSocketSizes(c)).toEqual({ qpAckBufs: 12, maxSendWr: 53, maxRecvWr: 45, cqEntries: 98, bufferBytes: (32 + 45) * 512 });
  });

  it('rounds the ACK buffer count up when sendBufCnt is not a multiple of the batch', () => {
    expect(ibSocketSizes(resolveIBSocketConfig({ sendBufCnt: 30, bufAckBatch: 8 })).qpAckBufs).toBe(8);
    expect(ibSocketSizes(resolveIBSocketConfig({ sendBufCnt: 33, bufAckBatch: 8 })).qpAckBufs).toBe(9);
  });

  it('rejects values out of range, of the wrong type, and inconsistent batches', () => {
    expect(invalidConfig(() => resolveIBSocketConfig({ bufSize: 0 }))).toContain('bufSize');
    expect(invalidConfig(() => resolveIBSocketConfig({ sendBufCnt: 1.5 }))).toContain('sendBufCnt');
    expect(invalidConfig(() => resolveIBSocketConfig({ retryCnt: 8 }))).toContain('retryCnt');
    expect(invalidConfig(() => resolveIBSocketConfig({ startPsn: 1 << 24 }))).toContain('startPsn');
    expect(invalidConfig(() => resolveIBSocketConfig({ maxRdAtomic: 256 }))).toContain('maxRdAtomic');
    expect(invalidConfig(() => resolveIBSocketConfig({ timeout: '14' as unknown as number }))).toContain('timeout');
    expect(invalidConfig(() => resolveIBSocketConfig({ recordLatencyPerPeer: 1 as unknown as boolean }))).toContain('recordLatencyPerPeer');
    expect(invalidConfig(() => resolveIBSocketConfig({ maxRdmaWr: 4, maxRdmaWrPerPost: 5 }))).toContain('maxRdmaWrPerPost');
    expect(invalidConfig(() => resolveIBSocketConfig({ sendBufCnt: 4, bufAckBatch: 5 }))).toContain('bufAckBatch');
    expect(invalidConfig(() => resolveIBSocketConfig({ sendBufCnt: 4, bufAckBatch: 4, bufSignalBatch: 8 }))).toContain('bufSignalBatch');
    // Unknown keys (a newer peer's fields) are ignored.
    expect(resolveIBSocketConfig({ futureField: 1 } as never).bufSize).toBe(16384);
  });

  it('is checked against the device limits (3FS checkConfig)', () => {
    const c = resolveIBSocketConfig(TEST_3FS);
    const s = ibSocketSizes(c);
    const exact = { maxSge: 3, maxQpRdAtom: 16, maxQpWr: s.maxSendWr, maxCqe: s.cqEntries };
    expect(checkIBSocketConfig(c, exact, 'rxe0')).toEqual(s);
    expect(invalidConfig(() => checkIBSocketConfig(c, { ...exact, maxSge: 2 }, 'rxe0'))).toMatch(/maxSge 3 exceeds rxe0's max_sge 2/);
    expect(invalidConfig(() => checkIBSocketConfig(c, { ...exact, maxQpRdAtom: 15 }, 'rxe0'))).toMatch(/maxRdAtomic 16 exceeds rxe0's max_qp_rd_atom 15/);
    expect(invalidConfig(() => checkIBSocketConfig(c, { ...exact, maxQpWr: s.maxSendWr - 1 }, 'rxe0'))).toContain('send queue depth 53');
    expect(invalidConfig(() => checkIBSocketConfig(c, { ...exact, maxCqe: s.cqEntries - 1 }, 'rxe0'))).toContain('CQ size 98');
  });
});
