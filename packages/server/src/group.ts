import { type Logger, type Metrics, onAbort } from '@ffnet/common';
import { Listener, type ListenerConfig } from '@ffnet/listener';
import { CancelledError, type EnvelopeName, envelopeNamed, InvalidConfigError } from '@ffnet/serde';
import type { Backend, ByteBudget } from '@ffnet/transport';
import { IOWorker, type IOWorkerOptions, Processor, type ProcessorOptions, Waiter } from '@ffnet/worker';
import { type AuthOptions, type AuthStats, ConnectionAuth } from './auth.js';
import { Observer } from './observe.js';
import { type Service, ServiceRegistry } from './service.js';
import type { GroupStats } from './stats.js';

export type NetworkType = 'tcp' | 'tls' | 'unix' | 'rdma' | 'shm';

/** Counters of a group without authentication or authorization. */
const NO_AUTH: AuthStats = Object.freeze({ authenticated: 0, refused: 0, denied: 0, closed: 0 });

/**
 * A group that sets `authenticate` or `authorize` (AuthOptions) uses its own and not the server's; one that sets
 * neither uses the server's, with any `authTimeoutMs`, `maxAuthFailures` or `onAuthError` of its own.
 */
export interface ServiceGroupConfig extends AuthOptions {
  /** Default 'tcp'. */
  networkType?: NetworkType;
  /** Where to listen (port, interface filter, unix path...); networkType and backends come from the group. */
  listener?: Omit<ListenerConfig, 'networkType' | 'backends'>;
  /**
   * Backends of this group's listener and connections (default: the server's `backends`, else `[tcp(), unix()]`).
   * networkType 'rdma' needs `rdma()` from @ffnet/rdma here, 'tls' a `tls({ key, cert })` from @ffnet/transport.
   */
  backends?: readonly Backend[];
  /** Names of the services this group hosts: Server.addService puts a service into the group that names it. */
  services?: readonly string[];
  /** Connection handling: timeouts, retries, idle expiry (3FS connection_expiration_time, check interval). */
  ioWorker?: Omit<IOWorkerOptions, 'processor' | 'backends'>;
  /** Where this group's calls, bytes and connections are recorded (see @ffnet/common Metrics); default none. */
  metrics?: Metrics;
  /** Request handling: maxProcessingRequests, response compression. */
  processor?: Omit<ProcessorOptions, 'lookup' | 'waiter' | 'envelope'>;
  /**
   * How messages are written (default 'ffnet', msgpack). '3fs' speaks 3FS's own MessagePacket in 3FS binary, so 3FS
   * processes can call this group: every service needs schemas on all its methods (InvalidConfigError otherwise),
   * and there is no metadata (so no tokens) and no deadline field. Not with networkType 'rdma' (no IBConnect).
   */
  envelope?: EnvelopeName;
  /**
   * Where this group's listener, connections, processor and authentication log (default: the server's `logger`,
   * else the process-wide one). `listener.logger`, `ioWorker.logger` and `processor.logger` win for their part.
   */
  logger?: Logger;
}

/**
 * One listener with its own connections, processor and services: 3FS's ServiceGroup. A server usually has
 * one per network type.
 */
export class ServiceGroup {
  readonly config: Readonly<ServiceGroupConfig>;
  readonly networkType: NetworkType;
  readonly envelope: EnvelopeName;
  readonly services: ServiceRegistry;
  readonly listener: Listener;
  readonly processor: Processor;
  readonly ioWorker: IOWorker;
  /** The group's authentication and authorization; undefined when it has neither (calls pay nothing). */
  readonly auth: ConnectionAuth | undefined;
  readonly #onSocket = (socket: Parameters<IOWorker['adopt']>[0]): void => {
    this.ioWorker.adopt(socket);
  };

  /** `budgets`: a Server's, shared by the transports of all its groups (see ServerOptions.limits). */
  constructor(config: ServiceGroupConfig = {}, budgets: { receive?: ByteBudget; output?: ByteBudget } = {}) {
    this.config = config;
    this.networkType = config.networkType ?? 'tcp';
    this.envelope = envelopeNamed(config.envelope, 'ServiceGroupConfig.envelope').name;
    if (this.envelope === '3fs' && this.networkType === 'rdma') {
      throw new InvalidConfigError("envelope '3fs' is not available on rdma groups: ffnet does not speak 3FS's IBConnect handshake");
    }
    this.services = new ServiceRegistry(this.envelope);
    const backends = config.backends;
    const logger = config.logger;
    this.auth = ConnectionAuth.wanted(config) ? new ConnectionAuth(config, logger) : undefined;
    this.listener = new Listener({
      ...(logger === undefined ? {} : { logger }),
      ...config.listener,
      networkType: this.networkType,
      ...(backends === undefined ? {} : { backends }),
      ...(config.authenticate === undefined ? {} : { authenticate: config.authenticate }),
    });
    // Authentication and authorization come first, so interceptors and handlers see the principal.
    const interceptors = this.auth === undefined ? config.processor?.interceptors : [this.auth.interceptor, ...(config.processor?.interceptors ?? [])];
    // The Waiter matches answers to calls the server makes back on accepted connections (RDMAControl.apply).
    this.processor = new Processor({
      ...(logger === undefined ? {} : { logger }),
      ...config.processor,
      ...(interceptors === undefined ? {} : { interceptors }),
      // Always one, so diagnostics_channel subscribers see this group's calls; metrics only when configured.
      observer: config.processor?.observer ?? new Observer('server', config.metrics),
      envelope: this.envelope,
      lookup: this.services,
      waiter: new Waiter(),
    });
    const io = config.ioWorker;
    const transport = { ...io?.transport };
    if (budgets.receive !== undefined) transport.receiveBudget = budgets.receive;
    if (budgets.output !== undefined) transport.outputBudget = budgets.output;
    this.ioWorker = new IOWorker({
      ...(logger === undefined ? {} : { logger }),
      ...io,
      transport,
      processor: this.processor,
      ...(backends === undefined ? {} : { backends }),
    });
  }

  /** Whether this group's `services` list names `name`. */
  names(name: string): boolean {
    return this.config.services?.includes(name) ?? false;
  }

  addService(service: Service): void {
    this.services.add(service);
  }

  /** The addresses clients dial, once set up. */
  get addresses(): string[] {
    return this.listener.addresses;
  }

  /** Binds the listener (ListenFailedError when it cannot). Idempotent. */
  async setup(opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.listener.setup(opts);
  }

  /** Processor, then connections, then accepting. Idempotent. */
  async start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.processor.start();
    this.ioWorker.start();
    await this.listener.start(this.#onSocket, opts);
  }

  /**
   * Stops accepting, drains the requests in progress, then closes the connections. Handlers still running
   * `graceMs` after the drain began (default: never), or when `signal` aborts, have their `ctx.signal` aborted
   * with a CancelledError; when `signal` aborts the drain ends and the connections are destroyed at once.
   * Idempotent.
   */
  async stop(opts: { signal?: AbortSignal; graceMs?: number } = {}): Promise<void> {
    const { signal } = opts;
    await this.listener.stop({ ...(signal ? { signal } : {}) });
    const drained = this.processor.stop({ ...(signal ? { signal } : {}) });
    if (this.processor.processing > 0) {
      const abortHandlers = (): void => this.ioWorker.abortCalls(new CancelledError('the server is stopping'));
      const graceMs = opts.graceMs ?? Number.POSITIVE_INFINITY;
      const timer = graceMs < 2 ** 31 - 1 ? setTimeout(abortHandlers, Math.max(0, graceMs)) : undefined;
      const offAbort = onAbort(signal, abortHandlers);
      try {
        await drained;
      } finally {
        if (timer !== undefined) clearTimeout(timer);
        offAbort();
      }
      if (signal?.aborted) abortHandlers();
    }
    await this.ioWorker.stop({ ...(signal ? { signal } : {}) });
  }

  stats(): GroupStats {
    return {
      networkType: this.networkType,
      addresses: this.addresses,
      connections: this.ioWorker.connections,
      inFlight: this.processor.processing,
      auth: this.auth?.stats ?? NO_AUTH,
    };
  }
}
