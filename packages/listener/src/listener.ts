import { componentLogger, type Logger } from '@ffnet/common';
import { FfnetError, InvalidConfigError, ListenFailedError } from '@ffnet/serde';
import {
  type Address,
  type Backend,
  type BackendListener,
  type BackendSocket,
  type ConnectionAuthenticator,
  DEFAULT_BACKENDS,
  findBackend,
  formatAddress,
  rdmaAddress,
  shmAddress,
  tcpAddress,
  tlsAddress,
  unixAddress,
} from '@ffnet/transport';
import { findInterfaceOf, type InterfaceAddress, type InterfaceKind, selectInterfaceAddresses } from './interfaces.js';
import { clearStaleSocket, defaultUnixPath, prepareSocketDirectory } from './unix.js';

export type ListenerNetworkType = 'tcp' | 'tls' | 'unix' | 'rdma' | 'shm';

export interface ListenerConfig {
  /**
   * Default 'tcp'. 'rdma' needs rdma() from @ffnet/rdma in `backends` and usable RDMA devices (else setup fails
   * with IBDeviceNotInitializedError): it binds TCP ports that carry the IBConnect handshake and also accept plain
   * tcp:// connections. 'tls' needs tls() (with key and cert) in `backends`; it binds like 'tcp'.
   */
  networkType?: ListenerNetworkType;
  /**
   * Where networkType finds its backend (default `[tcp(), unix()]`). A type with no backend here fails setup with
   * NotImplementedError saying what to pass.
   */
  backends?: readonly Backend[];
  /** 0 (default) picks an ephemeral port per bound socket; the real ports show in `addresses`. */
  port?: number;
  /**
   * One IPv4 address to bind instead of scanning interfaces (an ffnet extension). `0.0.0.0` or unset means the 3FS
   * behaviour: one socket per matching interface address.
   */
  host?: string;
  /** Interface names to listen on; empty (default) means every interface whose name matches the prefix rules. */
  filter?: readonly string[];
  /** An extra name prefix counted as an Ethernet NIC, like 3FS's `custom_tcp_nic_prefix`. */
  customPrefix?: string;
  /** Which NIC kinds to use. Default: tcp → tcp, ipoib, local; rdma → tcp, ipoib. */
  interfaceKinds?: readonly InterfaceKind[];
  /** SO_REUSEPORT; needs Node >= 22.12 (22.x) or >= 23.1. */
  reusePort?: boolean;
  /** listen(2) backlog, default 4096 (3FS `listen_queue_depth`). */
  backlog?: number;
  /**
   * unix: the socket path. Default `ffnet.<port>.sock` (a random number when port is 0) in `$XDG_RUNTIME_DIR` when
   * that is a private directory of ours, else in `<os tmpdir>/ffnet-<uid>/`, created 0700 and checked at setup.
   */
  path?: string;
  /** unix: file mode of the socket, default 0o600. */
  mode?: number;
  /**
   * unix: listen even when the socket's directory is writable by group or other (or is /tmp), or is owned by
   * another non-root user. Default false: such a directory lets another user take the name first and receive
   * our clients' requests, so setup refuses it with ListenFailedError.
   */
  allowSharedDirectory?: boolean;
  /**
   * Handed to the backend's listen (ListenOptions.authenticate): rdma runs it on each IBConnect request and
   * refuses the handshake when it refuses. Stream backends ignore it; the server authenticates their first call.
   */
  authenticate?: ConnectionAuthenticator;
  /**
   * The root logger: connections refused before they reach the owner (scoped to `listener`) and the backend's
   * refused handshakes (tls, rdma; ListenOptions.logger). Default: the process-wide logger.
   */
  logger?: Logger;
}

export interface BoundAddress {
  /** The address string clients dial, e.g. `tcp://10.0.0.5:8000` or `unix:///tmp/ffnet.1.sock`. */
  readonly address: string;
  /** NIC kind by name prefix; 'unix' for a domain socket. */
  readonly kind: InterfaceKind | 'unix';
  /** The interface name the address belongs to (undefined for unix, or a host no interface reports). */
  readonly interface: string | undefined;
}

export type AcceptCallback = (socket: BackendSocket, on: BoundAddress) => void;

type State = 'idle' | 'bound' | 'started';

interface Bound {
  readonly info: BoundAddress;
  readonly listener: BackendListener;
}

/** Node added `reusePort` to net.Server#listen in 23.1.0 and backported it to 22.12.0; older versions ignore it. */
export function nodeSupportsReusePort(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

const DEFAULT_KINDS: Record<'tcp' | 'tls' | 'rdma', readonly InterfaceKind[]> = {
  tcp: ['tcp', 'ipoib', 'local'],
  tls: ['tcp', 'ipoib', 'local'],
  // 3FS's checkNicType(RDMA) takes Ethernet (RoCE) and ib NICs, not loopback.
  rdma: ['tcp', 'ipoib'],
};

export interface ResolvedListenerConfig {
  readonly networkType: ListenerNetworkType;
  readonly port: number;
  readonly host: string | undefined;
  readonly filter: readonly string[];
  readonly customPrefix: string;
  readonly interfaceKinds: readonly InterfaceKind[];
  readonly reusePort: boolean;
  readonly backends: readonly Backend[];
  readonly backlog: number;
  readonly path: string | undefined;
  readonly mode: number;
  readonly allowSharedDirectory: boolean;
  readonly authenticate: ConnectionAuthenticator | undefined;
  readonly logger: Logger | undefined;
  /** The path is the default one, whose directory setup creates (0700) when missing. */
  readonly defaultPath: boolean;
}

function resolve(c: ListenerConfig): ResolvedListenerConfig {
  const networkType = c.networkType ?? 'tcp';
  if (networkType !== 'tcp' && networkType !== 'tls' && networkType !== 'unix' && networkType !== 'rdma' && networkType !== 'shm') {
    throw new InvalidConfigError(`listener networkType must be 'tcp', 'tls', 'unix', 'rdma' or 'shm', got '${String(networkType)}'`);
  }
  const port = c.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidConfigError(`listener port must be an integer in 0..65535, got ${port}`);
  }
  const backlog = c.backlog ?? 4096;
  if (!Number.isInteger(backlog) || backlog < 1) {
    throw new InvalidConfigError(`listener backlog must be a positive integer, got ${backlog}`);
  }
  const mode = c.mode ?? 0o600;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new InvalidConfigError(`listener mode must be a file mode like 0o600, got ${mode}`);
  }
  const reusePort = c.reusePort ?? false;
  // shm listens on a unix socket (its control channel): everything about the path applies to it as to unix.
  const pathed = networkType === 'unix' || networkType === 'shm';
  if (reusePort) {
    if (pathed) throw new InvalidConfigError('reusePort applies to tcp listeners, not unix sockets');
    if (!nodeSupportsReusePort()) {
      throw new InvalidConfigError(`reusePort needs Node >= 22.12 (22.x) or >= 23.1, but this is Node ${process.versions.node}, whose net.Server ignores it`);
    }
  }
  const host = c.host === undefined || c.host === '' || c.host === '0.0.0.0' ? undefined : c.host;
  const kinds = c.interfaceKinds ?? (pathed ? [] : DEFAULT_KINDS[networkType]);
  return {
    networkType,
    port,
    host,
    filter: [...(c.filter ?? [])],
    customPrefix: c.customPrefix ?? '',
    interfaceKinds: [...kinds],
    reusePort,
    backlog,
    // Fixed once, so a listener that is stopped and set up again comes back on the same path.
    path: pathed ? (c.path ?? defaultUnixPath(port)) : c.path,
    backends: c.backends ?? DEFAULT_BACKENDS,
    mode,
    allowSharedDirectory: c.allowSharedDirectory ?? false,
    authenticate: c.authenticate,
    logger: c.logger,
    defaultPath: pathed && c.path === undefined,
  };
}

/**
 * Binds the sockets of one service group and hands every accepted connection to a callback (the Server passes
 * them to its IOWorker). Like 3FS's Listener: `setup()` binds, `start()` accepts, `stop()` closes.
 */
export class Listener {
  readonly config: Readonly<ResolvedListenerConfig>;
  #state: State = 'idle';
  #bound: Bound[] = [];
  #onSocket: AcceptCallback | undefined;
  /** Connections accepted between setup() and start(); 3FS leaves these in the kernel backlog. */
  #pending: { socket: BackendSocket; on: BoundAddress }[] = [];
  /** Serialises setup/start/stop so concurrent calls see each other's result. */
  #op: Promise<unknown> = Promise.resolve();
  readonly #log: Logger;

  constructor(config: ListenerConfig = {}) {
    this.config = resolve(config);
    this.#log = componentLogger('listener', config.logger);
  }

  get state(): State {
    return this.#state;
  }

  /** The address strings actually bound, in bind order (empty before setup and after stop). */
  get addresses(): string[] {
    return this.#bound.map((b) => b.info.address);
  }

  get bound(): readonly BoundAddress[] {
    return this.#bound.map((b) => b.info);
  }

  /** Binds every address. Idempotent; rejects ListenFailedError and leaves nothing bound when any bind fails. */
  setup(opts: { signal?: AbortSignal } = {}): Promise<void> {
    return this.#serial(() => this.#setup(opts.signal));
  }

  /** Starts handing accepted sockets to `onSocket` (binding first if needed). Idempotent: a second call is a no-op. */
  start(onSocket: AcceptCallback, opts: { signal?: AbortSignal } = {}): Promise<void> {
    return this.#serial(async () => {
      if (this.#state === 'started') return;
      await this.#setup(opts.signal);
      this.#onSocket = onSocket;
      this.#state = 'started';
      const pending = this.#pending;
      this.#pending = [];
      for (const p of pending) onSocket(p.socket, p.on);
    });
  }

  /** Stops accepting, closes the bound sockets and removes unix socket files. Idempotent; setup() may bind again. */
  stop(_opts: { signal?: AbortSignal } = {}): Promise<void> {
    return this.#serial(async () => {
      if (this.#state === 'idle') return;
      await this.#closeAll();
    });
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const run = this.#op.then(fn, fn);
    // The caller gets `run` and its failure; the chain only orders the next operation after it.
    this.#op = run.catch(() => undefined);
    return run;
  }

  async #closeAll(): Promise<void> {
    const bound = this.#bound;
    this.#bound = [];
    this.#state = 'idle';
    this.#onSocket = undefined;
    const pending = this.#pending;
    this.#pending = [];
    for (const p of pending) p.socket.destroy();
    await Promise.all(bound.map((b) => b.listener.close()));
  }

  async #setup(signal: AbortSignal | undefined): Promise<void> {
    if (this.#state !== 'idle') return;
    signal?.throwIfAborted();
    const c = this.config;
    // First, so that an rdma listener without usable devices fails with IBDeviceNotInitializedError (3FS).
    const backend = findBackend(c.backends, c.networkType);
    const usable = backend.available();
    if (!usable.ok) throw usable.error ?? new ListenFailedError(`${c.networkType} cannot be used here: ${usable.reason}`);
    const targets = this.#targets();
    const opts = {
      backlog: c.backlog,
      reusePort: c.reusePort,
      ...(c.networkType === 'unix' || c.networkType === 'shm' ? { mode: c.mode } : {}),
      // An RDMA group's port also serves tcp:// callers; the IBConnect handshake arrives on it too (3FS).
      ...(c.networkType === 'rdma' ? { acceptTcp: true } : {}),
      ...(c.authenticate === undefined ? {} : { authenticate: c.authenticate }),
      ...(c.logger === undefined ? {} : { logger: c.logger }),
      ...(signal ? { signal } : {}),
    };
    if (c.networkType === 'unix' || c.networkType === 'shm') {
      const t = targets[0]!;
      await prepareSocketDirectory(t.address.path, { create: c.defaultPath, allowShared: c.allowSharedDirectory });
      await clearStaleSocket(t.address.path, signal);
    }
    const results = await Promise.allSettled(
      targets.map(async (t): Promise<Bound> => {
        let info: BoundAddress | undefined;
        const listener = await backend.listen(t.address, opts, (s) => (info ? this.#accept(s, info) : s.destroy()));
        info = { address: formatAddress(listener.address), kind: t.kind, interface: t.iface };
        return { info, listener };
      }),
    );
    const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(ok.map((b) => b.listener.close()));
      const e = failed.reason;
      if (FfnetError.is(e)) throw e;
      throw new ListenFailedError(`listener setup failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    }
    this.#bound = ok;
    this.#state = 'bound';
  }

  #accept(socket: BackendSocket, on: BoundAddress): void {
    if (this.#state === 'started') {
      this.#onSocket!(socket, on);
    } else if (this.#state === 'bound' && this.#pending.length < this.config.backlog) {
      this.#pending.push({ socket, on });
    } else {
      const log = this.#log;
      if (log.isLevelEnabled('debug')) {
        const why =
          this.#state === 'bound' ? `${this.#pending.length} connections wait for start() (backlog ${this.config.backlog})` : `the listener is ${this.#state}`;
        log.debug({ peer: socket.peer, listener: on.address, reason: why }, 'accepted connection closed');
      }
      socket.destroy();
    }
  }

  #targets(): { address: Address; kind: BoundAddress['kind']; iface: string | undefined }[] {
    const c = this.config;
    if (c.networkType === 'unix') {
      return [{ address: unixAddress(c.path!), kind: 'unix', iface: undefined }];
    }
    if (c.networkType === 'shm') {
      return [{ address: shmAddress(c.path!), kind: 'unix', iface: undefined }];
    }
    const make = c.networkType === 'rdma' ? rdmaAddress : c.networkType === 'tls' ? tlsAddress : tcpAddress;
    if (c.host !== undefined) {
      const owner = findInterfaceOf(c.host, c.customPrefix);
      return [{ address: make(c.host, c.port), kind: owner?.kind ?? 'tcp', iface: owner?.name }];
    }
    const found: InterfaceAddress[] = selectInterfaceAddresses({ filter: c.filter, customPrefix: c.customPrefix, kinds: c.interfaceKinds });
    if (found.length === 0) {
      throw new ListenFailedError(
        `no up IPv4 interface to listen on for networkType ${c.networkType}: ` +
          `filter [${c.filter.join(', ')}]${c.filter.length === 0 ? ' (all)' : ''}, kinds [${c.interfaceKinds.join(', ')}], ` +
          `name prefixes en/eth/bond/xgbe${c.customPrefix ? `/${c.customPrefix}` : ''} (tcp), ib (ipoib), lo (local)`,
      );
    }
    return found.map((f) => ({ address: make(f.ip, c.port), kind: f.kind, iface: f.name }));
  }
}
