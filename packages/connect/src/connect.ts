/**
 * Both ends of the IBConnect handshake (§4.2) without any RPC layer: the server side answers `query` and
 * `connect` requests handed to it (a server wires IBConnectService to these), the client side drives an
 * injected `call` function.
 */
import { IBManager, type IBDevice } from '@ffnet/device';
import { IBDeviceNotFoundError, InvalidConfigError } from '@ffnet/serde';
import { ibSocketSizes } from './config.js';
import { type IBConnectReq, type IBConnectRsp, type IBQueryReq, type IBQueryRsp, parseConnectReq } from './messages.js';
import { type IBConnectCall, type IBConnectOptions, IBSocket, type IBSocketOptions, acceptIBSocket } from './socket.js';

const PORT_ACTIVE = 4;

export interface IBConnectServerOptions {
  /** Devices to accept on (default: those opened by IBManager, read at each request). */
  devices?: readonly IBDevice[] | (() => readonly IBDevice[]);
  /** An accepted socket that has not seen the client's probe after this long fails (default 15000, 3FS rdma_accept_timeout). */
  acceptTimeoutMs?: number;
  /** drainTimeoutMs of accepted sockets (the rest of their config comes from the client). */
  drainTimeoutMs?: number;
  /** Largest registered buffer block a client's config may make us allocate per connection (default 64 MiB). */
  maxBufferBytes?: number;
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
  readonly #onSocket: IBConnectServerOptions['onSocket'];

  constructor(options: IBConnectServerOptions) {
    const d = options.devices;
    this.#devices = typeof d === 'function' ? d : d ? () => d : () => IBManager.devices;
    this.#acceptTimeoutMs = options.acceptTimeoutMs ?? 15_000;
    this.#drainTimeoutMs = options.drainTimeoutMs;
    this.#maxBufferBytes = options.maxBufferBytes ?? 64 * 1024 * 1024;
    this.#onSocket = options.onSocket;
  }

  /** IBConnect.query: every device with its active ports. */
  query(_req?: IBQueryReq): IBQueryRsp {
    return {
      devices: this.#devices()
        .filter((d) => !d.closed)
        .map((d) => ({
          dev: d.id,
          devName: d.name,
          ports: d.ports
            .filter((p) => p.attr.state === PORT_ACTIVE)
            .map((p) => ({ port: p.portNum, zones: [...p.zones], linkLayer: p.attr.linkLayer })),
        })),
    };
  }

  /**
   * IBConnect.connect: checks the request (it comes off the network), adopts the client's config, creates the QP
   * on the target device and port (INIT, RTR), hands the socket to onSocket and answers with this end's info.
   * Errors: InvalidFormatError / InvalidConfigError (bad request), IBDeviceNotFoundError, IBOpenPortFailedError.
   */
  connect(req: unknown, ctx: IBAcceptContext = {}): IBConnectRsp {
    const r = parseConnectReq(req);
    const bytes = ibSocketSizes(r.config).bufferBytes;
    if (bytes > this.#maxBufferBytes) {
      throw new InvalidConfigError(`client config needs ${bytes} bytes of buffers per connection, more than the ${this.#maxBufferBytes} allowed`, { peer: ctx.peer });
    }
    const dev = this.#devices().find((d) => d.id === r.targetDev && !d.closed);
    if (!dev || dev.name !== r.targetDevName) {
      throw new IBDeviceNotFoundError(`no RDMA device ${r.targetDev} named ${r.targetDevName} here${dev ? ` (device ${r.targetDev} is ${dev.name})` : ''}`, {
        peer: ctx.peer,
      });
    }
    const sock = acceptIBSocket(r, dev, { acceptTimeoutMs: this.#acceptTimeoutMs, drainTimeoutMs: this.#drainTimeoutMs, peer: ctx.peer });
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
