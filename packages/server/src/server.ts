import { defaults } from '@ffnet/common';
import { InvalidArgError, InvalidConfigError, InvalidServiceNameError, initCompression, TimeoutError } from '@ffnet/serde';
import { type Backend, ByteBudget } from '@ffnet/transport';
import type { HandlerErrorHook, ServerInterceptor } from '@ffnet/worker';
import { nonNegativeMsOption, StopControl } from '@ffnet/worker/internal';
import { type AdminOptions, adminOptions } from './admin.js';
import { type AuthOptions, ConnectionAuth } from './auth.js';
import { coreService, echoService } from './builtins.js';
import { ServiceGroup, type ServiceGroupConfig } from './group.js';
import type { MethodStats, Service } from './service.js';
import type { ServerStats } from './stats.js';
import { coreService3fs, echoService3fs } from './threefs-builtins.js';

export type LifecycleHook = () => void | Promise<void>;

/** Server-wide memory caps, shared by every connection of every group. */
export interface ServerLimits {
  /**
   * Bytes held in partially received frames, a large body counted at its full size once allocated (default
   * 256 MiB). Connections holding under 64 KiB take none of it, so small calls never wait for it. Past it, a
   * connection stops reading until bytes are released, and is closed with ResourceExhaustedError if its frame
   * is still waiting at the frame deadline (IOWorkerOptions.frameTimeoutMs); a frame that cannot fit at all
   * closes its connection at once. So it also bounds the largest frame a server accepts.
   */
  receiveBudgetBytes?: number;
  /**
   * Bytes of replies queued for sending (default 256 MiB). A reply that does not fit closes its connection with
   * ResourceExhaustedError, unless that connection has nothing queued (one reply always fits).
   */
  outputBudgetBytes?: number;
}

export const DEFAULT_RECEIVE_BUDGET_BYTES = defaults.RECEIVE_BUDGET_BYTES;
export const DEFAULT_OUTPUT_BUDGET_BYTES = defaults.OUTPUT_BUDGET_BYTES;

/**
 * Security (AuthOptions, for every group that sets neither `authenticate` nor `authorize`): `authenticate` decides
 * per connection who the peer is, `authorize` per call whether it may; see the README's Security section.
 */
export interface ServerOptions extends AuthOptions {
  /** At least one group. */
  groups: readonly ServiceGroupConfig[];
  /**
   * Backends of every group that names none (default `[tcp(), unix()]`); a group with networkType 'rdma' needs
   * `rdma()` from @ffnet/rdma.
   */
  backends?: readonly Backend[];
  /** Serve Echo (10000) and Core (10001) in every group (default true). */
  builtins?: boolean;
  beforeStart?: LifecycleHook;
  afterStart?: LifecycleHook;
  beforeStop?: LifecycleHook;
  afterStop?: LifecycleHook;
  /** What Core.shutdown does (after its reply is sent); default: stop this server. */
  onShutdown?: (graceful: boolean) => void;
  /**
   * Sees each handler failure masked from its caller (not an FfnetError, service without exposeErrors), with
   * what was thrown: the place to log it. For every group whose `processor` options set none.
   */
  onHandlerError?: HandlerErrorHook;
  /**
   * Who may call Core's administrative methods (see AdminOptions): by default only an admin identity, a
   * principal with the role `admin` or a unix:// peer running as this process's uid.
   */
  admin?: AdminOptions;
  /**
   * How long stop() lets handlers finish before it aborts their `ctx.signal` (CancelledError, "the server is
   * stopping"); default 5000 ms.
   */
  stopGraceMs?: number;
  /**
   * How long stop() may take in all (draining, then closing connections) before the connections are destroyed
   * and it resolves, whatever handlers are still running; default 10000 ms. Lifecycle hooks are not bounded.
   */
  stopTimeoutMs?: number;
  /** Server-wide memory caps. */
  limits?: ServerLimits;
  /**
   * Wrap every handler of every group, the first outermost, outside the group's own (`processor.interceptors`).
   * See ServerInterceptor; default none.
   */
  interceptors?: readonly ServerInterceptor[];
}

/** The AuthOptions fields of `o` that are set. */
function authOf(o: AuthOptions): AuthOptions {
  const out: AuthOptions = {};
  if (o.authenticate !== undefined) out.authenticate = o.authenticate;
  if (o.authorize !== undefined) out.authorize = o.authorize;
  if (o.authTimeoutMs !== undefined) out.authTimeoutMs = o.authTimeoutMs;
  if (o.maxAuthFailures !== undefined) out.maxAuthFailures = o.maxAuthFailures;
  if (o.onAuthError !== undefined) out.onAuthError = o.onAuthError;
  return out;
}

const DEFAULT_STOP_GRACE_MS = defaults.STOP_GRACE_MS;
const DEFAULT_STOP_TIMEOUT_MS = defaults.STOP_TIMEOUT_MS;

export type ServerState = 'idle' | 'bound' | 'running' | 'stopped';

/**
 * Service groups with one lifecycle, as 3FS's net::Server:
 * - setup() binds every group's listener;
 * - start() runs beforeStart, starts the groups (binding first if needed), then afterStart;
 * - stop() runs beforeStop, stops each group (listener, processor drain, connections), then afterStop.
 * All three are idempotent and serialised; a stopped server can be set up and started again.
 */
export class Server {
  readonly groups: readonly ServiceGroup[];
  readonly options: Readonly<ServerOptions>;
  readonly stopGraceMs: number;
  readonly stopTimeoutMs: number;
  /** The stop in progress, so that a later stop() can cut it short. */
  #stopControl: StopControl | undefined;
  /** Signals of stop() calls not yet finished: a stop that starts links them all. */
  readonly #stopSignals = new Set<AbortSignal>();
  readonly receiveBudget: ByteBudget;
  readonly outputBudget: ByteBudget;
  #state: ServerState = 'idle';
  #startedAt = 0;
  #op: Promise<unknown> = Promise.resolve();

  constructor(options: ServerOptions) {
    if (!Array.isArray(options.groups) || options.groups.length === 0) throw new InvalidConfigError('a server needs at least one service group');
    // Checked even without built-ins, so a typo fails at construction rather than when built-ins are turned on.
    adminOptions(options.admin);
    this.stopGraceMs = nonNegativeMsOption('stopGraceMs', options.stopGraceMs, DEFAULT_STOP_GRACE_MS);
    this.stopTimeoutMs = nonNegativeMsOption('stopTimeoutMs', options.stopTimeoutMs, DEFAULT_STOP_TIMEOUT_MS);
    this.options = options;
    const hook = options.onHandlerError;
    this.receiveBudget = new ByteBudget(options.limits?.receiveBudgetBytes ?? DEFAULT_RECEIVE_BUDGET_BYTES, 'server receive budget');
    this.outputBudget = new ByteBudget(options.limits?.outputBudgetBytes ?? DEFAULT_OUTPUT_BUDGET_BYTES, 'server output budget');
    const budgets = { receive: this.receiveBudget, output: this.outputBudget };
    const outer = options.interceptors ?? [];
    const backends = options.backends;
    this.groups = options.groups.map((g) => {
      let config = hook && !g.processor?.onHandlerError ? { ...g, processor: { ...g.processor, onHandlerError: hook } } : g;
      if (outer.length > 0) config = { ...config, processor: { ...config.processor, interceptors: [...outer, ...(config.processor?.interceptors ?? [])] } };
      if (backends !== undefined && config.backends === undefined) config = { ...config, backends };
      // The group's own timeouts and hook, if it set any, still apply to the server's authenticator.
      if (!ConnectionAuth.wanted(config) && ConnectionAuth.wanted(options)) config = { ...config, ...authOf(options), ...authOf(config) };
      return new ServiceGroup(config, budgets);
    });
    if (options.builtins ?? true) {
      const core = coreService(
        {
          configValue: () => this.#configValue(),
          stats: () => this.stats(),
          shutdown: (graceful) => (this.options.onShutdown ? this.options.onShutdown(graceful) : void this.stop().catch(() => undefined)),
        },
        options.admin,
      );
      for (const g of this.groups) {
        const threefs = g.envelope === '3fs';
        g.addService(threefs ? echoService3fs : echoService);
        g.addService(threefs ? coreService3fs : core);
      }
    }
  }

  get state(): ServerState {
    return this.#state;
  }

  /** Every bound address, group by group. */
  get addresses(): string[] {
    return this.groups.flatMap((g) => g.addresses);
  }

  /**
   * Adds a service to the group whose `services` list names it, else to the first group; with `strict`, a
   * service no group names is an InvalidServiceNameError. A second service with the same id in a group is an
   * InvalidArgError. Returns the group.
   */
  addService(service: Service, opts: { strict?: boolean } = {}): ServiceGroup {
    if (!service?.def) throw new InvalidArgError('addService needs a Service (see implement())');
    const named = this.groups.find((g) => g.names(service.def.name));
    if (named === undefined && opts.strict) {
      throw new InvalidServiceNameError(`no service group lists service ${service.def.name}`);
    }
    const group = named ?? this.groups[0]!;
    group.addService(service);
    return group;
  }

  /** Frozen groups drop requests unanswered (callers time out); unfreezing recovers. */
  setFrozen(frozen: boolean): void {
    for (const g of this.groups) g.processor.setFrozen(frozen);
  }

  /** Binds every group's listener; if one fails, the others are unbound again and its error is thrown. */
  setup(opts: { signal?: AbortSignal } = {}): Promise<void> {
    return this.#serial(() => this.#setup(opts));
  }

  start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    return this.#serial(async () => {
      if (this.#state === 'running') return;
      await this.#setup(opts);
      await this.beforeStart();
      for (const g of this.groups) await g.start(opts);
      this.#startedAt = performance.now();
      this.#state = 'running';
      await this.afterStart();
    });
  }

  /**
   * Stops accepting, lets the requests in progress finish, then closes the connections gracefully. Bounded:
   * handlers still running after `stopGraceMs` have their `ctx.signal` aborted, and after `stopTimeoutMs` the
   * connections are destroyed and stop resolves regardless. An aborted `signal` (e.g. `AbortSignal.abort()`)
   * does both at once: handlers aborted, connections destroyed without flushing. A signal passed to a later
   * stop() while this one is pending cuts this one short the same way.
   */
  stop(opts: { signal?: AbortSignal } = {}): Promise<void> {
    const signal = opts.signal;
    if (signal !== undefined) {
      this.#stopSignals.add(signal);
      this.#stopControl?.link(signal);
    }
    return this.#serial(async () => {
      try {
        if (this.#state === 'idle' || this.#state === 'stopped') return;
        const wasRunning = this.#state === 'running';
        if (wasRunning) await this.beforeStop();
        const control = new StopControl();
        this.#stopControl = control;
        for (const s of this.#stopSignals) control.link(s);
        const bound = this.stopTimeoutMs;
        control.expireAfter(bound, () => new TimeoutError(`the server did not stop within stopTimeoutMs (${bound} ms)`));
        try {
          await Promise.all(this.groups.map((g) => g.stop({ signal: control.signal, graceMs: this.stopGraceMs })));
        } finally {
          control.dispose();
          this.#stopControl = undefined;
        }
        this.#state = 'stopped';
        if (wasRunning) await this.afterStop();
      } finally {
        if (signal !== undefined) this.#stopSignals.delete(signal);
      }
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** Uptime, connections, calls in flight, and calls and errors per method (what Core.stats returns). */
  stats(): ServerStats {
    const groups = this.groups.map((g) => g.stats());
    const methods: Record<string, MethodStats> = {};
    for (const g of this.groups) g.services.methodStats(methods);
    return {
      uptimeMs: this.#state === 'running' ? performance.now() - this.#startedAt : 0,
      connections: groups.reduce((n, g) => n + g.connections, 0),
      inFlight: groups.reduce((n, g) => n + g.inFlight, 0),
      groups,
      methods,
      receiveBudget: this.receiveBudget.stats,
      outputBudget: this.outputBudget.stats,
      auth: {
        authenticated: groups.reduce((n, g) => n + g.auth.authenticated, 0),
        refused: groups.reduce((n, g) => n + g.auth.refused, 0),
        denied: groups.reduce((n, g) => n + g.auth.denied, 0),
        closed: groups.reduce((n, g) => n + g.auth.closed, 0),
      },
    };
  }

  protected async beforeStart(): Promise<void> {
    await this.options.beforeStart?.();
  }
  protected async afterStart(): Promise<void> {
    await this.options.afterStart?.();
  }
  protected async beforeStop(): Promise<void> {
    await this.options.beforeStop?.();
  }
  protected async afterStop(): Promise<void> {
    await this.options.afterStop?.();
  }

  async #setup(opts: { signal?: AbortSignal }): Promise<void> {
    if (this.#state === 'bound' || this.#state === 'running') return;
    // Any peer may compress; the codec must be loaded before the first frame arrives.
    await initCompression();
    const results = await Promise.allSettled(this.groups.map((g) => g.setup(opts)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(this.groups.map((g) => g.listener.stop()));
      throw failed.reason;
    }
    this.#state = 'bound';
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const run = this.#op.then(fn, fn);
    this.#op = run.catch(() => undefined);
    return run;
  }

  #configValue(): unknown {
    const { groups, builtins } = this.options;
    return { builtins: builtins ?? true, groups };
  }
}
