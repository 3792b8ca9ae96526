import { fstatSync as fstat } from 'node:fs';
import type * as net from 'node:net';
import { componentLogger, type Disposer, onAbort } from '@ffnet/common';
import {
  ConnectFailedError,
  FfnetError,
  InvalidArgError,
  InvalidFormatError,
  NotImplementedError,
  PermissionDeniedError,
  ResourceExhaustedError,
  TimeoutError,
} from '@ffnet/serde';
import {
  type Address,
  type Backend,
  type BackendListener,
  type BackendSocket,
  type ConnectOptions,
  formatAddress,
  type ListenOptions,
  unix,
  unixAddress,
} from '@ffnet/transport';
import { abortReason, acceptedNetSocket, listenPaused, netSocketFd } from '@ffnet/transport/internal';
import {
  closeFd,
  createSegment,
  type Mapping,
  mapSegment,
  NativeError,
  REQUIRED_SEALS,
  recvWithFds,
  sealsOf,
  sendWithFds,
  unavailableReason,
} from './native.js';
import { ACK_ACCEPTED, ACK_REFUSED, ShmSocket } from './socket.js';

/** Options of shm(). */
export interface ShmBackendOptions {
  /** Buffers of a write at least this large go through shared memory; smaller ones inline on the socket. Default 64 KiB. */
  thresholdBytes?: number;
  /** Size of each of a connection's two rings (client to server, server to client), made by the client. Default 16 MiB:
   * room for 8 calls of 1 MiB in flight with slack for the wrap, as a ring that fills sends the rest inline on the socket. */
  ringBytes?: number;
  /** The largest segment a peer may hand us; a larger one refuses the connection. Default 64 MiB. */
  maxSegmentBytes?: number;
  /** How long the hello (fds one way, the answer back) may take. Default 2000 ms. */
  handshakeTimeoutMs?: number;
  /** Connect timeout when the caller gives none. Default 1000 ms (as unix). */
  connectTimeoutMs?: number;
  /** Accepted connections whose hello is still awaited, per listener; more are closed at once. Default 64. */
  maxPendingHandshakes?: number;
}

export const DEFAULT_THRESHOLD_BYTES = 64 * 1024;
export const DEFAULT_RING_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_SEGMENT_BYTES = 64 * 1024 * 1024;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 2000;
/** Ring offsets travel as u32; rings also need room for a MIN_RING_PIECE. */
const MAX_RING_BYTES = 1024 * 1024 * 1024;
const MIN_RING_BYTES = 64 * 1024;

/**
 * The hello, sent by the client with sendmsg before any other byte, carrying two memfds as SCM_RIGHTS:
 * [magic u32][version u16][reserved u16][c2s bytes u32][s2c bytes u32] then zeros to HELLO_BYTES.
 * fds[0] is the client's ring to the server, fds[1] the server's ring to the client (both created by the client).
 */
export const HELLO_BYTES = 32;
export const HELLO_MAGIC = 0x4853_4646; // 'FFSH' little-endian
export const HELLO_VERSION = 1;

function positiveInt(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new InvalidArgError(`shm() ${name} must be an integer in ${min}..${max}, got ${v}`);
  return v;
}

let segmentSeq = 0;

class ShmBackend implements Backend {
  readonly scheme = 'shm' as const;
  readonly connectTimeoutMs: number;
  readonly thresholdBytes: number;
  readonly ringBytes: number;
  readonly maxSegmentBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly maxPendingHandshakes: number;
  private readonly unix: Backend;

  constructor(o: ShmBackendOptions) {
    this.thresholdBytes = positiveInt('thresholdBytes', o.thresholdBytes ?? DEFAULT_THRESHOLD_BYTES, 1, MAX_RING_BYTES);
    this.ringBytes = positiveInt('ringBytes', o.ringBytes ?? DEFAULT_RING_BYTES, MIN_RING_BYTES, MAX_RING_BYTES);
    this.maxSegmentBytes = positiveInt('maxSegmentBytes', o.maxSegmentBytes ?? DEFAULT_MAX_SEGMENT_BYTES, MIN_RING_BYTES, MAX_RING_BYTES);
    this.handshakeTimeoutMs = positiveInt('handshakeTimeoutMs', o.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, 1, 600_000);
    this.maxPendingHandshakes = positiveInt('maxPendingHandshakes', o.maxPendingHandshakes ?? 64, 1, 1_000_000);
    const t = o.connectTimeoutMs ?? 1000;
    if (!(Number.isFinite(t) && t >= 0)) throw new InvalidArgError(`shm() connectTimeoutMs must be a non-negative number, got ${t}`);
    this.connectTimeoutMs = t;
    // The socket carries records and small frames; large payloads go through the rings, so the kernel's default
    // send buffer is enough (unix() would otherwise ask for 1 MiB).
    this.unix = unix({ connectTimeoutMs: t, sendBufferBytes: 0 });
  }

  available(): { ok: true } | { ok: false; reason: string } {
    const why = unavailableReason();
    return why === null ? { ok: true } : { ok: false, reason: why };
  }

  private check(peer: string): void {
    const why = unavailableReason();
    if (why !== null) throw new NotImplementedError(`shm:// cannot be used here: ${why}`, { peer });
  }

  async connect(addr: Address, opts: ConnectOptions = {}): Promise<BackendSocket> {
    const peer = formatAddress(addr);
    this.check(peer);
    let inner: BackendSocket;
    try {
      inner = await this.unix.connect(unixAddress(addr.path), {
        ...(opts.signal ? { signal: opts.signal } : {}),
        timeoutMs: opts.timeoutMs ?? this.connectTimeoutMs,
        ...(opts.ownerUid === undefined ? {} : { ownerUid: opts.ownerUid }),
      });
    } catch (e) {
      // The same error, naming the address the caller dialled rather than the unix socket under it.
      if (FfnetError.is(e)) {
        const Ctor = e.constructor as new (m: string, o: { peer: string; cause: unknown }) => FfnetError;
        throw new Ctor(e.message, { peer, cause: e.cause });
      }
      throw e;
    }
    let tx: Mapping | undefined;
    let rx: Mapping | undefined;
    const fds: number[] = [];
    try {
      const fd = netSocketFd(inner);
      if (fd === undefined) throw new ConnectFailedError('the unix socket has no file descriptor to pass the segments on', { peer });
      const size = this.ringBytes;
      const seq = segmentSeq++;
      fds.push(createSegment(`ffnet-shm-c2s-${seq}`, size), createSegment(`ffnet-shm-s2c-${seq}`, size));
      tx = mapSegment(fds[0]!, size, true);
      rx = mapSegment(fds[1]!, size, false);
      const hello = Buffer.alloc(HELLO_BYTES);
      hello.writeUInt32LE(HELLO_MAGIC, 0);
      hello.writeUInt16LE(HELLO_VERSION, 4);
      hello.writeUInt32LE(size, 8);
      hello.writeUInt32LE(size, 12);
      // Before any libuv write (there has been none): the fds ride on the hello's first byte.
      const sent = sendWithFds(fd, hello, fds);
      if (sent !== HELLO_BYTES) throw new ConnectFailedError(`sendmsg sent ${sent} of the ${HELLO_BYTES}-byte shm hello`, { peer });
    } catch (e) {
      tx?.unmap();
      rx?.unmap();
      inner.destroy();
      throw e instanceof NativeError ? new ConnectFailedError(`shm hello: ${e.message}`, { peer, cause: e }) : e;
    } finally {
      // The message in flight holds its own references; ours go now, so a server that never reads them frees them.
      for (const fd of fds) closeFd(fd);
    }
    return this.awaitAck(inner, addr, peer, tx, rx, opts);
  }

  private awaitAck(inner: BackendSocket, addr: Address, peer: string, tx: Mapping, rx: Mapping, opts: ConnectOptions): Promise<BackendSocket> {
    return new Promise<BackendSocket>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let offAbort: Disposer | undefined;
      let settled = false;
      const done = (e: FfnetError | undefined): void => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        offAbort?.();
        if (e === undefined) {
          resolve(sock);
        } else {
          sock.destroy();
          reject(e);
        }
      };
      const sock: ShmSocket = new ShmSocket({
        inner,
        remote: addr,
        peer,
        local: peer,
        tx,
        rx,
        thresholdBytes: this.thresholdBytes,
        onAck: (status) => {
          if (status === ACK_ACCEPTED) {
            done(undefined);
            return;
          }
          if (typeof status === 'number') {
            done(new ConnectFailedError(`the server refused the shm hello: ${ACK_REFUSED[status] ?? `status ${status}`}`, { peer }));
            return;
          }
          done(
            new ConnectFailedError(`the connection closed during the shm hello (is ${addr.path} an shm:// listener?)${status ? `: ${status.message}` : ''}`, {
              peer,
              cause: status,
            }),
          );
        },
      });
      const ms = this.handshakeTimeoutMs;
      timer = setTimeout(() => done(new TimeoutError(`the server did not answer the shm hello within ${ms} ms`, { peer })), ms);
      const signal = opts.signal;
      offAbort = onAbort(signal, (cause) => done(new ConnectFailedError(`connect aborted: ${abortReason(signal!)}`, { peer, cause })));
    });
  }

  listen(addr: Address, opts: ListenOptions, onSocket: (s: BackendSocket) => void): Promise<BackendListener> {
    const where = formatAddress(addr);
    this.check(where);
    const log = componentLogger('shm', opts.logger);
    let pending = 0;
    // pauseOnConnect (listenPaused): libuv must not read an accepted socket before recvmsg has taken the hello and its fds.
    return listenPaused({
      where,
      target: { path: addr.path },
      path: addr.path,
      addr,
      bound: () => addr,
      opts,
      log,
      onConnection: (accepted) => {
        accepted.on('error', () => {});
        if (pending >= this.maxPendingHandshakes) {
          // Hellos in progress are bounded like rdma's handshakes: past the cap new connections close at once.
          if (log.isLevelEnabled('debug')) log.debug({ listener: where, pending }, 'too many shm hellos in progress: connection closed');
          accepted.destroy();
          return;
        }
        pending++;
        let counted = true;
        const settled = (): void => {
          if (counted) pending--;
          counted = false;
        };
        accepted.once('close', settled);
        const refuse = (e: FfnetError): void => {
          if (log.isLevelEnabled('warn')) log.warn({ listener: where, peer: where, err: e }, 'shm hello refused');
          accepted.destroy();
        };
        this.handshake(
          accepted,
          addr,
          where,
          (s) => {
            settled();
            onSocket(s);
          },
          refuse,
        );
      },
    });
  }

  /** Polls the paused socket with non-blocking recvmsg until the hello is in or the deadline passes. */
  private handshake(accepted: net.Socket, addr: Address, peer: string, onSocket: (s: BackendSocket) => void, refuse: (e: FfnetError) => void): void {
    const fd = (accepted as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) {
      refuse(new InvalidFormatError('accepted socket has no file descriptor', { peer }));
      return;
    }
    const deadline = Date.now() + this.handshakeTimeoutMs;
    let wait = 0;
    let gone = false;
    accepted.once('close', () => {
      gone = true;
    });
    const poll = (): void => {
      if (gone) return;
      let got: ReturnType<typeof recvWithFds>;
      try {
        got = recvWithFds(fd, HELLO_BYTES);
      } catch (e) {
        refuse(new InvalidFormatError(`shm hello: ${(e as Error).message}`, { peer, cause: e }));
        return;
      }
      if (got === null) {
        if (Date.now() >= deadline) {
          refuse(new TimeoutError(`no shm hello within ${this.handshakeTimeoutMs} ms`, { peer }));
          return;
        }
        // Usually the hello is already there; a slow client is polled ever less often, up to every 20 ms.
        wait = Math.min(20, wait === 0 ? 1 : wait * 2);
        setTimeout(poll, wait);
        return;
      }
      this.accept(accepted, got, addr, peer, onSocket, refuse);
    };
    poll();
  }

  private accept(
    accepted: net.Socket,
    got: NonNullable<ReturnType<typeof recvWithFds>>,
    addr: Address,
    peer: string,
    onSocket: (s: BackendSocket) => void,
    refuse: (e: FfnetError) => void,
  ): void {
    const { data, fds } = got;
    let tx: Mapping | undefined;
    let rx: Mapping | undefined;
    const answer = (status: number, e: FfnetError): void => {
      tx?.unmap();
      rx?.unmap();
      // The refusal's reason reaches the client; the connection then closes. Nothing else is read from it.
      accepted.end(Buffer.from([4, status]));
      refuse(e);
    };
    try {
      if (data.length === 0) {
        refuse(new InvalidFormatError('the peer closed before its shm hello', { peer }));
        return;
      }
      if (data.length !== HELLO_BYTES || data.readUInt32LE(0) !== HELLO_MAGIC || data.readUInt16LE(4) !== HELLO_VERSION) {
        answer(1, new InvalidFormatError(`bad shm hello (${data.length} bytes, not an ffnet shm client of version ${HELLO_VERSION})`, { peer }));
        return;
      }
      if (got.truncated || fds.length !== 2) {
        answer(1, new InvalidFormatError(`the shm hello carried ${fds.length} file descriptors${got.truncated ? ' (truncated)' : ''}, expected 2`, { peer }));
        return;
      }
      const sizes = [data.readUInt32LE(8), data.readUInt32LE(12)];
      for (let i = 0; i < 2; i++) {
        const fd = fds[i]!;
        const size = sizes[i]!;
        let actual: number;
        try {
          const st = fstat(fd);
          if (!st.isFile()) {
            answer(1, new InvalidFormatError(`shm segment ${i} is not a memory file`, { peer }));
            return;
          }
          actual = st.size;
        } catch (e) {
          answer(1, new InvalidFormatError(`shm segment ${i} cannot be examined: ${(e as Error).message}`, { peer, cause: e }));
          return;
        }
        if (actual > this.maxSegmentBytes || size > this.maxSegmentBytes) {
          answer(
            2,
            new ResourceExhaustedError(`shm segment ${i} of ${Math.max(actual, size)} bytes exceeds maxSegmentBytes ${this.maxSegmentBytes}`, { peer }),
          );
          return;
        }
        if (actual !== size || size < MIN_RING_BYTES) {
          answer(1, new InvalidFormatError(`shm segment ${i} is ${actual} bytes, the hello says ${size} (at least ${MIN_RING_BYTES})`, { peer }));
          return;
        }
        const seals = sealsOf(fd);
        if (seals < 0 || (seals & REQUIRED_SEALS) !== REQUIRED_SEALS) {
          answer(
            3,
            new PermissionDeniedError(
              `shm segment ${i} is not sealed against shrinking, growing and unsealing (seals ${seals}): the peer could truncate it under us`,
              {
                peer,
              },
            ),
          );
          return;
        }
      }
      try {
        // The client's ring to us is only read; ours to it is written.
        rx = mapSegment(fds[0]!, sizes[0]!, false);
        tx = mapSegment(fds[1]!, sizes[1]!, true);
      } catch (e) {
        answer(4, new ResourceExhaustedError(`cannot map the shm segments: ${(e as Error).message}`, { peer, cause: e }));
        return;
      }
    } finally {
      // Mappings keep the memory; the fds are not needed past this point, whatever the outcome.
      for (const fd of fds) closeFd(fd);
    }
    const inner = acceptedNetSocket('unix', accepted, unixAddress(addr.path), peer, peer);
    const sock = new ShmSocket({ inner, remote: addr, peer, local: peer, tx: tx!, rx: rx!, thresholdBytes: this.thresholdBytes });
    sock.sendAck(ACK_ACCEPTED);
    onSocket(sock);
  }
}

/**
 * A same-host shared-memory backend (`shm:///path/to/socket`): control bytes and small writes over a unix socket,
 * large buffers (>= thresholdBytes) through rings in sealed memfd segments handed over with SCM_RIGHTS. Pass it in
 * `backends` of Client, Server, Transport like tcp() and unix(). Each call makes a new one.
 */
export function shm(opts: ShmBackendOptions = {}): Backend & { readonly thresholdBytes: number; readonly ringBytes: number; readonly maxSegmentBytes: number } {
  return new ShmBackend(opts);
}
