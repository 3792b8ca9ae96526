/**
 * The IBConnect service (3FS id 11, §4.2): plain message types, the ServiceDef both ends share, and the checks a
 * received message goes through before anything is created from it (it comes from the network).
 */
import { defineService, InvalidFormatError, method } from '@ffnet/serde';
import { connectConfigOf, type IBConnectConfig, resolveIBSocketConfig } from './config.js';

/** 3FS `IBQueryReq{dummy: Void}`. */
export type IBQueryReq = {};

export interface IBQueryPort {
  port: number;
  zones: string[];
  /** `LinkLayer`: 1 InfiniBand, 2 Ethernet (RoCE). */
  linkLayer: number;
}

export interface IBQueryDevice {
  /** Device id on that host (the devId of its rkeys). */
  dev: number;
  devName: string;
  /** Active ports only. */
  ports: IBQueryPort[];
}

export interface IBQueryRsp {
  devices: IBQueryDevice[];
}

/** How the peer is addressed: a LID on InfiniBand, the RoCE v2 GID on Ethernet. */
export type IBConnectLink = { kind: 'ib'; lid: number } | { kind: 'roce'; gid: Uint8Array };

/** One end of a connection (3FS `IBConnectInfo`). */
export interface IBConnectInfo {
  hostname: string;
  dev: number;
  devName: string;
  port: number;
  /** `ibv_mtu` enum, 1..5 = 256..4096 bytes. */
  mtu: number;
  qpNum: number;
  link: IBConnectLink;
}

export interface IBConnectReq extends IBConnectInfo {
  targetDev: number;
  targetDevName: string;
  targetPort: number;
  config: IBConnectConfig;
}

export type IBConnectRsp = IBConnectInfo;

export const IBConnectService = defineService({
  name: 'IBConnect',
  id: 11,
  methods: {
    query: method<IBQueryReq, IBQueryRsp>(1),
    connect: method<IBConnectReq, IBConnectRsp>(2),
  },
});

/** Requests and responses by method, for the injected `call` function. */
export interface IBConnectRequests {
  query: IBQueryReq;
  connect: IBConnectReq;
}
export interface IBConnectResponses {
  query: IBQueryRsp;
  connect: IBConnectRsp;
}
export type IBConnectMethod = keyof IBConnectRequests;

// Bounds that keep a hostile message from making us hold or iterate much.
const MAX_DEVICES = 64;
const MAX_PORTS = 255;
const MAX_ZONES = 64;
const MAX_STRING = 256;

function bad(what: string, msg: string): never {
  throw new InvalidFormatError(`IBConnect ${what}: ${msg}`);
}

function obj(what: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(what, `expected an object, got ${describe(v)}`);
  return v as Record<string, unknown>;
}

function uint(what: string, o: Record<string, unknown>, key: string, max: number, min = 0): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(what, `${key} must be an integer in ${min}..${max}, got ${describe(v)}`);
  return v;
}

function str(what: string, o: Record<string, unknown>, key: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length > MAX_STRING) bad(what, `${key} must be a string of at most ${MAX_STRING} characters`);
  return v;
}

function list(what: string, o: Record<string, unknown>, key: string, max: number): unknown[] {
  const v = o[key];
  if (!Array.isArray(v) || v.length > max) bad(what, `${key} must be an array of at most ${max} items`);
  return v;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  return Array.isArray(v) ? 'an array' : typeof v === 'object' && v !== null ? 'an object' : String(v);
}

export function parseQueryRsp(v: unknown): IBQueryRsp {
  const what = 'query response';
  const devices = list(what, obj(what, v), 'devices', MAX_DEVICES).map((d) => {
    const o = obj(what, d);
    const ports = list(what, o, 'ports', MAX_PORTS).map((p) => {
      const q = obj(what, p);
      const zones = list(what, q, 'zones', MAX_ZONES).map((z) => {
        if (typeof z !== 'string' || z.length > MAX_STRING) bad(what, 'zones must be strings');
        return z;
      });
      return { port: uint(what, q, 'port', 255, 1), zones, linkLayer: uint(what, q, 'linkLayer', 255) };
    });
    return { dev: uint(what, o, 'dev', 255), devName: str(what, o, 'devName'), ports };
  });
  return { devices };
}

function parseInfo(what: string, o: Record<string, unknown>): IBConnectInfo {
  const l = obj(what, o.link);
  let link: IBConnectLink;
  if (l.kind === 'ib') {
    link = { kind: 'ib', lid: uint(what, l, 'lid', 0xffff) };
  } else if (l.kind === 'roce') {
    const gid = l.gid;
    if (!(gid instanceof Uint8Array) || gid.length !== 16) bad(what, `link.gid must be 16 bytes, got ${describe(gid)}`);
    // Decoded binary values are views into the received frame: keep a copy.
    link = { kind: 'roce', gid: Buffer.from(gid) };
  } else {
    bad(what, `link.kind must be "ib" or "roce", got ${describe(l.kind)}`);
  }
  return {
    hostname: str(what, o, 'hostname'),
    dev: uint(what, o, 'dev', 255),
    devName: str(what, o, 'devName'),
    port: uint(what, o, 'port', 255, 1),
    mtu: uint(what, o, 'mtu', 5, 1),
    qpNum: uint(what, o, 'qpNum', 0xff_ffff),
    link,
  };
}

export function parseConnectRsp(v: unknown): IBConnectRsp {
  const what = 'connect response';
  return parseInfo(what, obj(what, v));
}

/** Structure errors are InvalidFormatError; config values out of range are InvalidConfigError. */
export function parseConnectReq(v: unknown): IBConnectReq {
  const what = 'connect request';
  const o = obj(what, v);
  const info = parseInfo(what, o);
  const config = connectConfigOf(resolveIBSocketConfig(obj(what, o.config) as Partial<IBConnectConfig>));
  return {
    ...info,
    targetDev: uint(what, o, 'targetDev', 255),
    targetDevName: str(what, o, 'targetDevName'),
    targetPort: uint(what, o, 'targetPort', 255, 1),
    config,
  };
}
