import { InvalidArgError, defineService, method } from '@ffnet/serde';
import { type Service, implement } from './service.js';
import type { ServerStats } from './stats.js';

export interface EchoMessage {
  str: string;
}

/** 3FS's `serde::echo::Service`: id 10000, echo = 1. Every service group serves it. */
export const EchoService = defineService({
  name: 'Echo',
  id: 10000,
  methods: {
    echo: method<EchoMessage, EchoMessage>(1),
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
    echo: method<EchoMessage, EchoMessage>(1),
    getConfig: method<GetConfigReq, GetConfigRsp>(2),
    shutdown: method<ShutdownReq, Record<string, never>>(6),
    stats: method<Record<string, never>, ServerStats>(7),
  },
});

export const echoService: Service<typeof EchoService> = implement(EchoService, {
  echo: (_ctx, req) => ({ str: req.str }),
});

/** What Core needs from the server it reports on. */
export interface CoreHost {
  configValue(): unknown;
  stats(): ServerStats;
  shutdown(graceful: boolean): void;
}

function pick(root: unknown, key: string): unknown {
  if (key === '') return root;
  let v: unknown = root;
  for (const part of key.split('.')) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, part)) throw new InvalidArgError(`no config key ${key}`);
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

export function coreService(host: CoreHost): Service<typeof CoreService> {
  return implement(CoreService, {
    echo: (_ctx, req) => ({ str: req.str }),
    getConfig: (_ctx, req) => ({ config: JSON.stringify(pick(host.configValue(), req?.configKey ?? '')) ?? 'null' }),
    shutdown: (_ctx, req) => {
      // After this reply has been handed to the connection: stopping drains in-flight calls, this one included.
      setImmediate(() => host.shutdown(req?.graceful ?? true));
      return {};
    },
    stats: () => host.stats(),
  });
}
