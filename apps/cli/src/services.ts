import { services as threefsServices } from '@ffnet/3fs';
import type { Schema, ServiceDef } from '@ffnet/serde';
import { CoreService, EchoService } from '@ffnet/server';
import { formatAddress, parseAddress } from '@ffnet/transport';
import { UsageError } from './command.js';

/** Services `ffnet call` knows by name. Another built-in definition is one more entry here. */
export const KNOWN_SERVICES: readonly ServiceDef[] = [EchoService, CoreService];

/** What `ffnet call --envelope 3fs` knows by name: 3FS's own services with their schemas (`@ffnet/3fs`). */
export const THREEFS_SERVICES: readonly ServiceDef[] = threefsServices;

/**
 * What `ffnet call` knows under the ffnet envelope: the built-ins, then 3FS's services whose names are not taken
 * (an ffnet group may serve them in msgpack; their schemas still check the request).
 */
export const FFNET_SERVICES: readonly ServiceDef[] = [
  ...KNOWN_SERVICES,
  ...THREEFS_SERVICES.filter((t) => !KNOWN_SERVICES.some((k) => k.name === t.name || k.id === t.id)),
];

export interface ResolvedMethod {
  readonly label: string;
  readonly serviceId: number;
  readonly methodId: number;
  /** The definition and method name, when the CLI has one (not for raw ids of an unknown service). */
  readonly def?: ServiceDef;
  readonly method?: string;
  /** The method's schemas, when its definition carries them. */
  readonly request?: Schema;
  readonly response?: Schema;
}

function resolved(def: ServiceDef, m: { id: number; name: string; request?: Schema; response?: Schema }): ResolvedMethod {
  return {
    label: `${def.name}.${m.name}`,
    serviceId: def.id,
    methodId: m.id,
    def,
    method: m.name,
    ...(m.request === undefined ? {} : { request: m.request }),
    ...(m.response === undefined ? {} : { response: m.response }),
  };
}

/** Every `Service.method` the CLI can name, for help and error messages. */
export function knownMethods(services: readonly ServiceDef[] = KNOWN_SERVICES): string[] {
  return services.flatMap((s) => Object.keys(s.methods).map((m) => `${s.name}.${m}`));
}

/**
 * `Echo.echo` or `Core.getConfig` by name (service names match case-insensitively when unambiguous), or raw wire ids
 * `10000.1` for services the CLI has no definition of.
 */
export function resolveMethod(spec: string, services: readonly ServiceDef[] = KNOWN_SERVICES): ResolvedMethod {
  const ids = /^(\d+)\.(\d+)$/.exec(spec);
  if (ids) {
    const serviceId = Number(ids[1]);
    const methodId = Number(ids[2]);
    if (serviceId > 0xffff || methodId > 0xffff) throw new UsageError(`service and method ids are 0..65535, got ${spec}`);
    const def = services.find((s) => s.id === serviceId);
    const m = def?.methodById(methodId);
    return def && m ? resolved(def, m) : { label: spec, serviceId, methodId };
  }
  const dot = spec.lastIndexOf('.');
  const serviceName = spec.slice(0, dot);
  const methodName = spec.slice(dot + 1);
  const def =
    services.find((s) => s.name === serviceName) ??
    (() => {
      const ci = services.filter((s) => s.name.toLowerCase() === serviceName.toLowerCase());
      return ci.length === 1 ? ci[0] : undefined;
    })();
  const m =
    dot > 0 && def ? (def.methods as Record<string, { id: number; name: string; request?: Schema; response?: Schema } | undefined>)[methodName] : undefined;
  if (!def || !m) {
    throw new UsageError(`unknown method '${spec}'; known: ${knownMethods(services).join(', ')} (or raw ids like 10000.1)`);
  }
  return resolved(def, m);
}

/** `host:port` means tcp and `/path` means unix; full `scheme://` addresses pass through. InvalidAddrError otherwise. */
export function normalizeAddress(s: string): string {
  try {
    if (s.includes('://')) return formatAddress(parseAddress(s));
    return formatAddress(parseAddress(s.startsWith('/') ? `unix://${s}` : `tcp://${s}`));
  } catch (e) {
    throw new UsageError((e as Error).message, { cause: e });
  }
}

/** JSON for whatever msgpack decoded: 64-bit integers as numbers when exact (else strings), bytes as base64. */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) => {
      if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
      if (v instanceof Uint8Array) return { $base64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
      return v;
    },
    2,
  );
}
