/**
 * IBSocket configuration (3FS `IBSocket::Config`, §4.8): defaults, validation, the sizes derived from it, and
 * the check against a device's limits (3FS `checkConfig`). The part that travels in the handshake is
 * IBConnectConfig: the server adopts the client's values.
 */
import { defaults } from '@ffnet/common';
import { InvalidConfigError } from '@ffnet/serde';
import { IMM_VALUE_MAX } from './wire.js';

/** The settings both ends of a connection share; the client sends them and the server adopts them. */
export interface IBConnectConfig {
  /** Service level of the address vector. */
  sl: number;
  /** RoCE traffic class (GRH). */
  trafficClass: number;
  /** Carried for 3FS parity; the local RoCE v2 GID index is discovered, not configured. */
  gidIndex: number;
  pkeyIndex: number;
  /** First PSN of both directions (24 bits). */
  startPsn: number;
  minRnrTimer: number;
  /** Local ACK timeout exponent: 4.096 µs × 2^timeout per retry. */
  timeout: number;
  retryCnt: number;
  /** 0: receive-not-ready cannot happen under the credit scheme, so any RNR is an error. */
  rnrRetry: number;
  /** SGEs per RDMA work request (and the QP's max_send_sge). */
  maxSge: number;
  /** RDMA work requests in flight per socket (a semaphore). */
  maxRdmaWr: number;
  /** RDMA work requests chained into one ibv_post_send. */
  maxRdmaWrPerPost: number;
  /** Outstanding RDMA reads, both as initiator and as target. */
  maxRdAtomic: number;
  /** Bytes per SEND/RECV buffer. */
  bufSize: number;
  /** Send buffers; the peer posts as many receive buffers for data. */
  sendBufCnt: number;
  /** An ACK immediate goes out after this many consumed receive buffers. */
  bufAckBatch: number;
  /** Every this-many-th SEND is signaled. */
  bufSignalBatch: number;
  /** CQ events acknowledged per ibv_ack_cq_events. */
  eventAckBatch: number;
  /** Carried for 3FS parity (metrics); unused. */
  recordLatencyPerPeer: boolean;
}

export interface IBSocketConfig extends IBConnectConfig {
  /** How long a closing socket waits for its CLOSE to complete before freeing everything anyway. */
  drainTimeoutMs: number;
}

export const IB_SOCKET_DEFAULTS: Readonly<IBSocketConfig> = Object.freeze({
  sl: 0,
  trafficClass: 0,
  gidIndex: 0,
  pkeyIndex: 0,
  startPsn: 0,
  minRnrTimer: 1,
  timeout: 14,
  retryCnt: 7,
  rnrRetry: 0,
  maxSge: 16,
  maxRdmaWr: 128,
  maxRdmaWrPerPost: 32,
  maxRdAtomic: 16,
  bufSize: 16384,
  sendBufCnt: 32,
  bufAckBatch: 8,
  bufSignalBatch: 8,
  eventAckBatch: 128,
  recordLatencyPerPeer: false,
  drainTimeoutMs: defaults.RDMA_DRAIN_TIMEOUT_MS,
});

/** [min, max] of each numeric field; the hardware fields have their verbs widths. */
const RANGES: { readonly [K in keyof IBSocketConfig]?: readonly [number, number] } = {
  sl: [0, 15],
  trafficClass: [0, 255],
  gidIndex: [0, 255],
  pkeyIndex: [0, 0xffff],
  startPsn: [0, 0xff_ffff],
  minRnrTimer: [0, 31],
  timeout: [0, 31],
  retryCnt: [0, 7],
  rnrRetry: [0, 7],
  maxSge: [1, 0xffff_ffff],
  maxRdmaWr: [1, 0xffff_ffff],
  maxRdmaWrPerPost: [1, 0xffff_ffff],
  maxRdAtomic: [1, 255],
  bufSize: [1, 0x7fff_ffff],
  // ACK immediates carry buffer counts in 24 bits.
  sendBufCnt: [1, IMM_VALUE_MAX],
  bufAckBatch: [1, IMM_VALUE_MAX],
  bufSignalBatch: [1, IMM_VALUE_MAX],
  eventAckBatch: [1, 0xffff_ffff],
  drainTimeoutMs: [0, 2 ** 31 - 1],
};

const CONNECT_KEYS = Object.keys(IB_SOCKET_DEFAULTS).filter((k) => k !== 'drainTimeoutMs') as (keyof IBConnectConfig)[];

/**
 * Defaults filled in and every value checked (InvalidConfigError naming the field). Unknown keys are ignored, so
 * a newer peer's config with extra fields is still accepted.
 */
export function resolveIBSocketConfig(config: Partial<IBSocketConfig> = {}): IBSocketConfig {
  const c = { ...IB_SOCKET_DEFAULTS } as IBSocketConfig;
  for (const key of Object.keys(IB_SOCKET_DEFAULTS) as (keyof IBSocketConfig)[]) {
    const v = (config as Record<string, unknown>)[key];
    if (v === undefined) continue;
    if (key === 'recordLatencyPerPeer') {
      if (typeof v !== 'boolean') throw new InvalidConfigError(`IBSocket config recordLatencyPerPeer must be a boolean, got ${String(v)}`);
      c.recordLatencyPerPeer = v;
      continue;
    }
    const [min, max] = RANGES[key]!;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new InvalidConfigError(`IBSocket config ${key} must be an integer in ${min}..${max}, got ${String(v)}`);
    }
    (c as unknown as Record<string, number>)[key] = v;
  }
  if (c.maxRdmaWrPerPost > c.maxRdmaWr) {
    throw new InvalidConfigError(`IBSocket config maxRdmaWrPerPost (${c.maxRdmaWrPerPost}) exceeds maxRdmaWr (${c.maxRdmaWr})`);
  }
  if (c.bufAckBatch > c.sendBufCnt) throw new InvalidConfigError(`IBSocket config bufAckBatch (${c.bufAckBatch}) exceeds sendBufCnt (${c.sendBufCnt})`);
  if (c.bufSignalBatch > c.sendBufCnt) {
    throw new InvalidConfigError(`IBSocket config bufSignalBatch (${c.bufSignalBatch}) exceeds sendBufCnt (${c.sendBufCnt})`);
  }
  return c;
}

/** The shared part, as sent in IBConnectReq. */
export function connectConfigOf(c: IBConnectConfig): IBConnectConfig {
  const out = {} as Record<string, unknown>;
  for (const k of CONNECT_KEYS) out[k] = c[k];
  return out as unknown as IBConnectConfig;
}

export interface IBSocketSizes {
  /** Receive buffers reserved for ACK immediates (and the peer's ACK sends in flight). */
  qpAckBufs: number;
  /** Data sends + ACKs + RDMA + CLOSE + CHECK. */
  maxSendWr: number;
  /** Data + ACK immediates + the peer's CLOSE. */
  maxRecvWr: number;
  cqEntries: number;
  /** One registered block: send buffers then one receive buffer per receive WR. */
  bufferBytes: number;
}

export function ibSocketSizes(c: IBConnectConfig): IBSocketSizes {
  const qpAckBufs = Math.ceil(c.sendBufCnt / c.bufAckBatch) + 4;
  const maxSendWr = c.sendBufCnt + qpAckBufs + c.maxRdmaWr + 2;
  const maxRecvWr = c.sendBufCnt + qpAckBufs + 1;
  return { qpAckBufs, maxSendWr, maxRecvWr, cqEntries: maxSendWr + maxRecvWr, bufferBytes: (c.sendBufCnt + maxRecvWr) * c.bufSize };
}

/** The device limits a config is checked against (a subset of `DeviceAttr`). */
export interface IBDeviceLimits {
  maxSge: number;
  maxQpRdAtom: number;
  maxQpWr: number;
  maxCqe: number;
}

/** 3FS checkConfig: the config must fit the device the socket is created on. `device` names it in messages. */
export function checkIBSocketConfig(c: IBConnectConfig, limits: IBDeviceLimits, device: string): IBSocketSizes {
  const s = ibSocketSizes(c);
  const over = (what: string, v: number, max: number, limit: string) => {
    if (v > max) throw new InvalidConfigError(`IBSocket config: ${what} ${v} exceeds ${device}'s ${limit} ${max}`);
  };
  over('maxSge', c.maxSge, limits.maxSge, 'max_sge');
  over('maxRdAtomic', c.maxRdAtomic, limits.maxQpRdAtom, 'max_qp_rd_atom');
  over('send queue depth', s.maxSendWr, limits.maxQpWr, 'max_qp_wr');
  over('receive queue depth', s.maxRecvWr, limits.maxQpWr, 'max_qp_wr');
  over('CQ size', s.cqEntries, limits.maxCqe, 'max_cqe');
  return s;
}
