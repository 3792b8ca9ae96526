import { type Logger, noopLogger } from '@ffnet/common';
import { defineService, InvalidArgError, method, PermissionDeniedError, s } from '@ffnet/serde';
import type { CallContext } from '@ffnet/worker';
import { type AdminAccess, type AdminOptions, adminOptions, allowed } from './admin.js';
import { implement, type Service } from './service.js';
import type { ServerStats } from './stats.js';

export interface EchoMessage {
  str: string;
}

/**
 * 3FS's `serde::echo::Message`. Echo's methods carry 3FS's schemas, so the one definition serves both envelopes,
 * and a request that does not fit (`{"wrong":1}`) is refused with InvalidArg naming the field under either.
 */
export const EchoMessageSchema = s.struct('hf3fs::serde::echo::Message', { str: s.string });
/** 3FS's `core::EchoMessage` (Core.echo): the same field under another name. */
export const CoreEchoMessageSchema = s.struct('hf3fs::core::EchoMessage', { str: s.string });

/** 3FS's `serde::echo::Service`: id 10000, echo = 1. Every service group serves it, under both envelopes. */
export const EchoService = defineService({
  name: 'Echo',
  id: 10000,
  methods: {
    echo: method(1, { request: EchoMessageSchema, response: EchoMessageSchema }),
  },
});

export interface GetConfigReq {
  /** Dotted path into the server config ('' for all of it), e.g. `groups.0.networkType`. */
  configKey: string;
}
export interface GetConfigRsp {
  /** The value at configKey, as JSON. */
  config: string;
}
export interface ShutdownReq {
  graceful?: boolean;
}

/**
 * 3FS's CoreService (id 10001) with the methods ffnet implements: echo = 1, getConfig = 2, shutdown = 6, as in
 * 3FS, plus `stats` = 7 (an ffnet extension): uptime, connections, calls in flight, calls and errors per method.
 */
export const CoreService = defineService({
  name: 'Core',
  id: 10001,
  methods: {
    echo: method(1, { request: CoreEchoMessageSchema, response: CoreEchoMessageSchema }),
    getConfig: method<GetConfigReq, GetConfigRsp>(2),
    shutdown: method<ShutdownReq, Record<string, never>>(6),
    stats: method<Record<string, never>, ServerStats>(7),
  },
});

/** Longest configKey getConfig accepts: real keys are a few dotted names. */
export const MAX_CONFIG_KEY_LENGTH = 256;
/** A config key part: a property name or an array index. */
const KEY_PART = /^[A-Za-z0-9_$-]+$/;
/** Names that reach prototypes rather than config values. */
const FORBIDDEN_PARTS = new Set(['__proto__', 'prototype', 'constructor']);

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'binary data';
  return typeof v === 'object' ? 'an object of another kind' : typeof v;
}

/** A request map as the decoder builds it: plain object only, so nothing on a prototype is ever read. */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** The own data property `key` of `obj`; getters are never run and prototypes never read. */
function own(obj: object, key: string): unknown {
  const d = Object.getOwnPropertyDescriptor(obj, key);
  return d !== undefined && 'value' in d ? d.value : undefined;
}

function request(method: string, req: unknown, shape: string): Record<string, unknown> {
  if (!isPlainObject(req)) throw new InvalidArgError(`${method} expects a request ${shape}, got ${describe(req)}`);
  return req;
}

// Echo's requests were checked against its schema before the handler runs (under either envelope).
export const echoService: Service<typeof EchoService> = implement(EchoService, {
  echo: (_ctx, req) => ({ str: req.str }),
});

/** What Core needs from the server it reports on. */
export interface CoreHost {
  configValue(): unknown;
  stats(): ServerStats;
  shutdown(graceful: boolean): void;
}

function configKey(req: unknown): string {
  const key = own(request('Core.getConfig', req, '{configKey: string}'), 'configKey') ?? '';
  if (typeof key !== 'string') throw new InvalidArgError(`Core.getConfig: configKey must be a string, got ${describe(key)}`);
  if (key.length > MAX_CONFIG_KEY_LENGTH)
    throw new InvalidArgError(`Core.getConfig: configKey is ${key.length} characters long (max ${MAX_CONFIG_KEY_LENGTH})`);
  if (key === '') return key;
  for (const part of key.split('.')) {
    if (!KEY_PART.test(part)) throw new InvalidArgError('Core.getConfig: configKey must be dot-separated names of letters, digits, _, $ and -');
    if (FORBIDDEN_PARTS.has(part)) throw new InvalidArgError(`Core.getConfig: configKey may not name ${part}`);
  }
  return key;
}

/** The value at a dotted key, through own data properties of plain objects and arrays only. */
function pick(root: unknown, key: string): unknown {
  if (key === '') return root;
  let v: unknown = root;
  for (const part of key.split('.')) {
    if (!(isPlainObject(v) || Array.isArray(v)) || !Object.hasOwn(v, part)) throw new InvalidArgError(`no config key ${key}`);
    v = own(v, part);
  }
  return v;
}

function denied(method: string, access: AdminAccess, ctx: CallContext, log: Logger): PermissionDeniedError {
  if (log.isLevelEnabled('warn')) log.warn({ peer: ctx.peer, method, access, principal: ctx.peerIdentity.principal?.id }, 'admin call refused');
  // The reason crosses the wire: it says that the method is closed, never what the server is or why this peer is not local.
  const why = access === 'none' ? 'is disabled on this server' : access === 'admin' ? 'needs an admin identity' : 'is only answered to local peers';
  return new PermissionDeniedError(`${method} ${why}`, { peer: ctx.peer });
}

/**
 * Core over `host`. `admin` says who may call shutdown and getConfig/stats (default: an admin identity);
 * a refusal is a PermissionDeniedError (2102). Every method checks its request and answers InvalidArgError (3).
 */
export function coreService(host: CoreHost, admin?: AdminOptions, log: Logger = noopLogger): Service<typeof CoreService> {
  const { shutdown, inspect } = adminOptions(admin);
  return implement(CoreService, {
    echo: (_ctx, req) => ({ str: req.str }),
    getConfig: (ctx, req) => {
      if (!allowed(inspect, ctx.peerIdentity, ctx.transport)) throw denied('Core.getConfig', inspect, ctx, log);
      return { config: JSON.stringify(pick(host.configValue(), configKey(req))) ?? 'null' };
    },
    shutdown: (ctx, req) => {
      if (!allowed(shutdown, ctx.peerIdentity, ctx.transport)) throw denied('Core.shutdown', shutdown, ctx, log);
      const graceful = own(request('Core.shutdown', req, '{graceful?: boolean}'), 'graceful') ?? true;
      if (typeof graceful !== 'boolean') throw new InvalidArgError(`Core.shutdown: graceful must be a boolean, got ${describe(graceful)}`);
      // After this reply has been handed to the connection: stopping drains in-flight calls, this one included.
      setImmediate(() => host.shutdown(graceful));
      return {};
    },
    stats: (ctx, req) => {
      if (!allowed(inspect, ctx.peerIdentity, ctx.transport)) throw denied('Core.stats', inspect, ctx, log);
      if (Object.keys(request('Core.stats', req, '{}')).length > 0) throw new InvalidArgError('Core.stats expects an empty request {}');
      return host.stats();
    },
  });
}
