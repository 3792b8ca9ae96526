import {
  type EnvelopeName,
  type FfnetError,
  InvalidArgError,
  InvalidConfigError,
  type MethodNames,
  type RequestOf,
  type ResponseOf,
  type Schema,
  type ServiceDef,
} from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';
import { type CallContext, type MethodBinding, MethodPool, type RequestInfo, type ServiceBinding, type ServiceLookup } from '@ffnet/worker';
import { CANCEL_SERVICE_ID } from '@ffnet/worker/internal';

/** A method implementation: gets the call context and the request, returns (a promise of) the response. */
export type Handler<Req, Rsp> = (ctx: CallContext, req: Req) => Promise<Rsp> | Rsp;

/** One handler per method of the definition, typed from it. */
export type Handlers<D extends ServiceDef> = {
  [M in MethodNames<D>]: Handler<RequestOf<D, M>, ResponseOf<D, M>>;
};

export interface MethodOptions {
  /**
   * Run at most this many requests of the method at once, queueing the rest (3FS's per-method coroutine
   * pools). Omitted: each request runs inline as soon as it is decoded, the fastest path for handlers that
   * return quickly or await I/O.
   */
  concurrency?: number;
}

/** A service: a definition, its handlers, and optional hooks. Build one with implement() or write it out. */
export interface Service<D extends ServiceDef = ServiceDef> {
  readonly def: D;
  readonly handlers: Handlers<D>;
  /** Sees every error response of the service (and may replace it) before it is sent, like 3FS's onError. */
  // biome-ignore lint/suspicious/noConfusingVoidType: a hook that only observes returns nothing
  readonly onError?: ((err: FfnetError, req: RequestInfo) => FfnetError | undefined | void) | undefined;
  readonly methods?: { readonly [M in MethodNames<D>]?: MethodOptions } | undefined;
  /** Also serve it on RDMA connections (3FS `addService(obj, isRDMA)`); default true. */
  readonly rdma?: boolean | undefined;
  /**
   * Callers see the message of a handler failure that is not an FfnetError (as 999 Unknown). Default false:
   * they get 999 "internal error" and the detail stays on the server (`onHandlerError`, `handlerErrors`).
   */
  readonly exposeErrors?: boolean | undefined;
}

export interface ImplementOptions<D extends ServiceDef> {
  onError?: Service<D>['onError'];
  methods?: Service<D>['methods'];
  rdma?: boolean;
  exposeErrors?: boolean;
}

/** Pairs a definition with its handlers, checking that every method has one. */
export function implement<D extends ServiceDef>(def: D, handlers: Handlers<D>, opts: ImplementOptions<D> = {}): Service<D> {
  for (const name of Object.keys(def.methods)) {
    if (typeof (handlers as Record<string, unknown>)[name] !== 'function') {
      throw new InvalidArgError(`service ${def.name}: no handler for method ${name}`);
    }
  }
  return { def, handlers, onError: opts.onError, methods: opts.methods, rdma: opts.rdma, exposeErrors: opts.exposeErrors };
}

/** Per-method counters, as reported by the stats method. */
export interface MethodStats {
  readonly calls: number;
  readonly errors: number;
}

class Method implements MethodBinding {
  readonly name: string;
  readonly handler: (ctx: CallContext, req: unknown) => unknown;
  readonly pool: MethodPool | undefined;
  readonly request: Schema | undefined;
  readonly response: Schema | undefined;
  calls = 0;
  errors = 0;
  constructor(name: string, handler: (ctx: CallContext, req: unknown) => unknown, pool: MethodPool | undefined, schemas: MethodWithSchemas) {
    this.name = name;
    this.handler = handler;
    this.pool = pool;
    this.request = schemas.request;
    this.response = schemas.response;
  }
}

/** What defineService keeps of a method's schemas (undefined when it was defined without). */
interface MethodWithSchemas {
  readonly id: number;
  readonly request?: Schema | undefined;
  readonly response?: Schema | undefined;
}

class RegisteredService implements ServiceBinding {
  readonly id: number;
  readonly name: string;
  readonly rdma: boolean;
  readonly service: Service;
  readonly onError: ServiceBinding['onError'];
  readonly exposeErrors: boolean;
  /** Indexed by method id, like 3FS's MethodExtractor table. */
  readonly #methods: (Method | undefined)[] = [];

  constructor(service: Service, envelope: EnvelopeName) {
    const { def } = service;
    this.id = def.id;
    this.name = def.name;
    this.rdma = service.rdma ?? true;
    this.exposeErrors = service.exposeErrors === true;
    this.service = service;
    if (service.onError) this.onError = service.onError;
    const handlers = service.handlers as Record<string, (ctx: CallContext, req: unknown) => unknown>;
    for (const [key, info] of Object.entries(def.methods as Record<string, MethodWithSchemas>)) {
      const fn = handlers[key];
      if (typeof fn !== 'function') throw new InvalidArgError(`service ${def.name}: no handler for method ${key}`);
      // 3FS's MessagePacket carries bare serde bytes: without schemas a request could be neither read nor answered.
      if (envelope === '3fs' && (info.request === undefined || info.response === undefined)) {
        throw new InvalidConfigError(`service ${def.name}: method ${key} has no request and response schemas, which the 3fs envelope needs`);
      }
      const concurrency = (service.methods as Record<string, MethodOptions | undefined> | undefined)?.[key]?.concurrency;
      // Bound once here, so handlers written as object methods keep their `this`.
      this.#methods[info.id] = new Method(`${def.name}.${key}`, fn.bind(handlers), concurrency === undefined ? undefined : new MethodPool(concurrency), info);
    }
  }

  method(methodId: number): MethodBinding | undefined {
    return this.#methods[methodId];
  }

  stats(into: Record<string, MethodStats>): void {
    for (const m of this.#methods) {
      if (m === undefined) continue;
      const prev = into[m.name];
      into[m.name] = { calls: (prev?.calls ?? 0) + m.calls, errors: (prev?.errors ?? 0) + m.errors };
    }
  }
}

/**
 * The services of one group by id: the Processor's lookup. Services not marked for RDMA are invisible on
 * RDMA connections, as with 3FS's two tables.
 */
export class ServiceRegistry implements ServiceLookup {
  readonly #byId = new Map<number, RegisteredService>();
  /** The envelope of the connections these services answer on; '3fs' refuses methods without schemas. */
  readonly envelope: EnvelopeName;

  constructor(envelope: EnvelopeName = 'ffnet') {
    this.envelope = envelope;
  }

  add(service: Service): void {
    const id = service.def.id;
    if (id === CANCEL_SERVICE_ID) throw new InvalidArgError(`service ${service.def.name}: id ${id} is reserved for cancel notices`);
    const taken = this.#byId.get(id);
    if (taken) throw new InvalidArgError(`service ${service.def.name}: id ${id} is already taken by ${taken.name}`);
    this.#byId.set(id, new RegisteredService(service, this.envelope));
  }

  remove(id: number): boolean {
    return this.#byId.delete(id);
  }

  has(id: number): boolean {
    return this.#byId.has(id);
  }

  service(serviceId: number, transport: Transport): ServiceBinding | undefined {
    const s = this.#byId.get(serviceId);
    return s === undefined || (!s.rdma && transport.address.scheme === 'rdma') ? undefined : s;
  }

  /** Names of the registered services. */
  names(): string[] {
    return [...this.#byId.values()].map((s) => s.name);
  }

  /** Calls and errors per `Service.method`. */
  methodStats(into: Record<string, MethodStats> = {}): Record<string, MethodStats> {
    for (const s of this.#byId.values()) s.stats(into);
    return into;
  }
}
