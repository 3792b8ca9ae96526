/**
 * Both ends of the IBConnect handshake (§4.2) without any RPC layer: the server side answers `query` and
 * `connect` requests handed to it (a server wires IBConnectService to these), the client side drives an
 * injected `call` function.
 */

import { defaults, IBDeviceNotFoundError, InvalidArgError, InvalidConfigError, ResourceExhaustedError, Semaphore } from '@ffnet/common';
import { type IBDevice, IBManager } from '@ffnet/device';
import { checkIBSocketConfig, ibSocketSizes } from './config.js';
import { type IBConnectReq, type IBConnectRsp, type IBQueryReq, type IBQueryRsp, parseConnectReq } from './messages.js';
import { acceptIBSocket, type IBConnectCall, type IBConnectOptions, IBSocket, type IBSocketOptions } from './socket.js';

const PORT_ACTIVE = 4;

/** Default server-wide cap on queue pairs of accepted sockets (IBAcceptBudget.maxQps). */
export const DEFAULT_MAX_ACCEPTED_QPS = defaults.RDMA_MAX_ACCEPTED_QPS;
/** Default server-wide cap on registered buffer bytes of accepted sockets (IBAcceptBudget.maxPinnedBytes). */
export const DEFAULT_MAX_PINNED_BYTES = defaults.RDMA_MAX_PINNED_BYTES;
/** Default cap on one accepted socket's registered buffer block (IBConnectServerOptions.maxBufferBytes). */
export const DEFAULT_MAX_BUFFER_BYTES = defaults.RDMA_MAX_BUFFER_BYTES;
/** Default cap on a client's sendBufCnt and maxRdmaWr (IBConnectServerOptions.maxWorkRequests). */
export const DEFAULT_MAX_WORK_REQUESTS = defaults.RDMA_MAX_WORK_REQUESTS;

function positive(name: string, v: number): number {
  if (!(Number.isSafeInteger(v) && v > 0)) throw new InvalidArgError(`${name} must be a positive integer, got ${v}`);
  return v;
}

export interface IBAcceptLimits {
  /** Queue pairs of accepted sockets alive at once (default 1024). */
  maxQps?: number;
  /** Bytes of registered (pinned) stream buffers of accepted sockets alive at once (default 1 GiB). */
  maxPinnedBytes?: number;
}

/**
 * What peers' connect requests may make this process allocate, across every IBConnectServer that shares it:
 * queue pairs and pinned buffer memory of accepted sockets. Reserved before anything is created for a request,
 * released when the socket has freed its resources.
 */
export class IBAcceptBudget {
  readonly maxQps: number;
  readonly maxPinnedBytes: number;
  readonly #qps: Semaphore;
  readonly #pinned: Semaphore;

  constructor(limits: IBAcceptLimits = {}) {
    this.maxQps = positive('maxQps', limits.maxQps ?? DEFAULT_MAX_ACCEPTED_QPS);
    this.maxPinnedBytes = positive('maxPinnedBytes', limits.maxPinnedBytes ?? DEFAULT_MAX_PINNED_BYTES);
    this.#qps = new Semaphore(this.maxQps, { name: 'accepted RDMA queue pairs' });
    this.#pinned = new Semaphore(this.maxPinnedBytes, { name: 'pinned bytes of accepted RDMA sockets' });
  }

  /** Queue pairs reserved for accepted sockets now. */
  get qps(): number {
    return this.#qps.used;
  }

  /** Registered buffer bytes reserved for accepted sockets now. */
  get pinnedBytes(): number {
    return this.#pinned.used;
  }

  /** One QP and `bytes` of pinned memory, or ResourceExhaustedError naming the cap (and nothing is taken). */
  reserve(bytes: number, peer?: string): void {
    if (!this.#qps.tryAcquire(1)) {
      throw new ResourceExhaustedError(`${this.#qps.used} RDMA queue pairs accepted, the server-wide cap (maxQps) is ${this.maxQps}`, { peer });
    }
    if (!this.#pinned.tryAcquire(bytes)) {
      this.#qps.release(1);
      throw new ResourceExhaustedError(
        `${bytes} more bytes of registered buffers would exceed the server-wide cap (maxPinnedBytes) of ${this.maxPinnedBytes} (${this.#pinned.used} in use)`,
        { peer },
      );
    }
  }

  /** Gives back what one reserve(bytes) took; giving back more than was reserved is a bug and throws InvalidArgError. */
  release(bytes: number): void {
    this.#pinned.release(bytes);
    this.#qps.release(1);
  }
}

export interface IBConnectServerOptions {
  /** Devices to accept on (default: those opened by IBManager, read at each request). */
  devices?: readonly IBDevice[] | (() => readonly IBDevice[]);
  /** An accepted socket that has not seen the client's probe after this long fails (default 15000, 3FS rdma_accept_timeout). */
  acceptTimeoutMs?: number;
  /** drainTimeoutMs of accepted sockets (the rest of their config comes from the client). */
  drainTimeoutMs?: number;
  /** Largest registered buffer block a client's config may make us allocate per connection (default 64 MiB). */
  maxBufferBytes?: number;
  /**
   * Largest sendBufCnt and maxRdmaWr a client's config may ask for (default 4096): they size host memory (work
   * requests, receive bookkeeping) that the buffer cap does not count.
   */
  maxWorkRequests?: number;
  /** Accepted sockets of this server alive at once; past it a connect is refused (default: no own cap). */
  maxQps?: number;
  /** Shared caps on QPs and pinned memory (default: a budget of this server's own, with the default caps). */
  budget?: IBAcceptBudget;
  /** Receives each accepted socket (state ACCEPTED; READY once the probe arrives). Throwing refuses the connect. */
  onSocket(sock: IBSocket, req: IBConnectReq): void;
}

/** Context of one connect request, as the serving layer knows it. */
export interface IBAcceptContext {
  /** The client, for messages (e.g. `tcp://10.0.0.1:53422`). */
  peer?: string;
}

export class IBConnectServer {
  readonly #devices: () => readonly IBDevice[];
  readonly #acceptTimeoutMs: number;
  readonly #drainTimeoutMs: number | undefined;
  readonly #maxBufferBytes: number;
  readonly #maxWorkRequests: number;
  readonly #maxQps: number;
  readonly #onSocket: IBConnectServerOptions['onSocket'];
  readonly budget: IBAcceptBudget;
  #live = 0;

  constructor(options: IBConnectServerOptions) {
    const d = options.devices;
    this.#devices = typeof d === 'function' ? d : d ? () => d : () => IBManager.devices;
    this.#acceptTimeoutMs = options.acceptTimeoutMs ?? defaults.RDMA_ACCEPT_TIMEOUT_MS;
    this.#drainTimeoutMs = options.drainTimeoutMs;
    this.#maxBufferBytes = positive('maxBufferBytes', options.maxBufferBytes ?? DEFAULT_MAX_BUFFER_BYTES);
    this.#maxWorkRequests = positive('maxWorkRequests', options.maxWorkRequests ?? DEFAULT_MAX_WORK_REQUESTS);
    this.#maxQps = options.maxQps === undefined ? Number.POSITIVE_INFINITY : positive('maxQps', options.maxQps);
    this.budget = options.budget ?? new IBAcceptBudget();
    this.#onSocket = options.onSocket;
  }

  /** Accepted sockets of this server that have not yet freed their resources. */
  get qps(): number {
    return this.#live;
  }

  /** IBConnect.query: every device with its active ports. */
  query(_req?: IBQueryReq): IBQueryRsp {
    return {
      devices: this.#devices()
        .filter((d) => !d.closed)
        .map((d) => ({
          dev: d.id,
          devName: d.name,
          ports: d.ports.filter((p) => p.attr.state === PORT_ACTIVE).map((p) => ({ port: p.portNum, zones: [...p.zones], linkLayer: p.attr.linkLayer })),
        })),
    };
  }

  /**
   * IBConnect.connect: checks the request (it comes off the network), adopts the client's config, creates the QP
   * on the target device and port (INIT, RTR), hands the socket to onSocket and answers with this end's info.
   * Every cap is checked before anything is allocated for the request.
   * Errors: InvalidFormatError / InvalidConfigError (bad request, or buffers / queues above maxBufferBytes /
   * maxWorkRequests / the device's limits), ResourceExhaustedError (this server's maxQps, or the budget's maxQps /
   * maxPinnedBytes), IBDeviceNotFoundError, IBOpenPortFailedError.
   */
  connect(req: unknown, ctx: IBAcceptContext = {}): IBConnectRsp {
    const peer = ctx.peer;
    const r = parseConnectReq(req);
    const c = r.config;
    const bytes = ibSocketSizes(c).bufferBytes;
    if (bytes > this.#maxBufferBytes) {
      throw new InvalidConfigError(
        `client config needs ${bytes} bytes of buffers per connection, more than the ${this.#maxBufferBytes} allowed (maxBufferBytes)`,
        {
          peer,
        },
      );
    }
    const wrs = Math.max(c.sendBufCnt, c.maxRdmaWr);
    if (wrs > this.#maxWorkRequests) {
      throw new InvalidConfigError(
        `client config asks for ${c.sendBufCnt} send buffers and ${c.maxRdmaWr} RDMA work requests, more than the ${this.#maxWorkRequests} allowed (maxWorkRequests)`,
        { peer },
      );
    }
    if (this.#live >= this.#maxQps) {
      throw new ResourceExhaustedError(`${this.#live} RDMA queue pairs already accepted on this connection, the cap (maxQps) is ${this.#maxQps}`, { peer });
    }
    const budget = this.budget;
    budget.reserve(bytes, peer);
    let sock: IBSocket;
    try {
      const dev = this.#devices().find((d) => d.id === r.targetDev && !d.closed);
      if (!dev || dev.name !== r.targetDevName) {
        throw new IBDeviceNotFoundError(`no RDMA device ${r.targetDev} named ${r.targetDevName} here${dev ? ` (device ${r.targetDev} is ${dev.name})` : ''}`, {
          peer,
        });
      }
      // Before the socket exists: its constructor sizes host memory by these queue depths.
      checkIBSocketConfig(c, dev.attr, dev.name);
      sock = acceptIBSocket(r, dev, { acceptTimeoutMs: this.#acceptTimeoutMs, drainTimeoutMs: this.#drainTimeoutMs, peer });
    } catch (e) {
      budget.release(bytes);
      throw e;
    }
    this.#live++;
    // `closed` resolves once the QP and the registered buffers are freed, whatever ended the socket.
    void sock.closed.then(() => {
      this.#live--;
      budget.release(bytes);
    });
    try {
      this.#onSocket(sock, r);
    } catch (e) {
      sock.destroy();
      throw e;
    }
    return sock.localInfo!;
  }
}

/** A new IBSocket, connected through the handshake over `call` (see IBSocket.connect). */
export async function connectIBSocket(call: IBConnectCall, opts: IBConnectOptions & IBSocketOptions = {}): Promise<IBSocket> {
  const sock = new IBSocket({ config: opts.config, peer: opts.peer });
  await sock.connect(call, opts);
  return sock;
}
