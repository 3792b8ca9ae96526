/**
 * RDMAReqBatch (3FS §4.6): one-sided READs or WRITEs collected into work requests, posted by the socket.
 */
import type { RDMABuf, RDMARemoteBuf } from '@ffnet/device';
import { type FfnetError, InvalidArgError } from '@ffnet/serde';

/** What a batch needs to know about its socket when work requests are built. */
export interface RdmaContext {
  devId: number;
  peerDev: number;
  maxSge: number;
  maxMsgSz: number;
}

/** Options of RDMAReqBatch.post(). */
export interface RDMAPostOptions {
  /** Drops the work requests still waiting for the socket's semaphore; posted ones cannot be recalled. */
  signal?: AbortSignal;
  /**
   * When the promise resolves. `'completed'` (default): every work request has completed, so the remote memory
   * holds the data (WRITE) or the local one does (READ), and the local buffers may be reused. `'posted'`: every
   * work request has been handed to ibv_post_send; anything posted on the connection afterwards (a response SEND)
   * executes behind them, since an RC queue pair executes in order, and the peer sees the written data before it.
   * A failed completion then no longer reaches this promise: it fails the connection (as always), so what was posted
   * behind it is flushed, never delivered, and the peer sees the connection fail. Local buffers must stay unchanged
   * until `onCompleted` has been called.
   */
  until?: 'completed' | 'posted';
  /** Called once, when every work request has completed (err null) or never will (the error). */
  onCompleted?: (err: FfnetError | null) => void;
}

/** The socket-side poster, installed once by IBSocket (which owns the QP, the semaphore and the completions). */
type Poster = (sock: object, req: RDMAReqBatch, opts: RDMAPostOptions) => Promise<void>;
let poster: Poster;

/** @internal */
export function bindRdmaPost(p: Poster): void {
  poster = p;
}

/**
 * RDMA READs or WRITEs to run together (3FS RDMAReqBatch, §4.6). add() splits local buffers into work requests of
 * at most maxSge SGEs, each covering a contiguous stretch of the remote buffer; post() chains them into posts of
 * at most maxRdmaWrPerPost (only the last signaled), under a semaphore of maxRdmaWr work requests per socket.
 * The promise settles once every posted request has completed: RDMAError (with the completion status name) on a
 * failed completion, RDMAPostFailedError when the post is refused.
 */
export class RDMAReqBatch {
  readonly isWrite: boolean;
  /** @internal per work request */ readonly remoteAddr: bigint[] = [];
  /** @internal */ readonly rkey: number[] = [];
  /** @internal end (exclusive) of each work request's SGEs */ readonly sgeEnd: number[] = [];
  /** @internal */ readonly sgeAddr: bigint[] = [];
  /** @internal */ readonly sgeLen: number[] = [];
  /** @internal */ readonly sgeLkey: number[] = [];
  readonly #sock: object;
  readonly #ctx: RdmaContext;
  #posted = false;

  /** @internal use IBSocket.rdmaReadBatch() / rdmaWriteBatch(). */
  constructor(sock: object, isWrite: boolean, ctx: RdmaContext) {
    this.#sock = sock;
    this.isWrite = isWrite;
    this.#ctx = ctx;
  }

  /** Work requests so far. */
  get wrCount(): number {
    return this.remoteAddr.length;
  }

  /**
   * `local` (one buffer, or several back to back) against the start of `remote`. Local buffers must be registered
   * on the socket's device, their total must fit in `remote`, and `remote` must carry an rkey for the peer's
   * device (InvalidArgError otherwise).
   */
  add(remote: RDMARemoteBuf, local: RDMABuf | readonly RDMABuf[]): this {
    if (this.#posted) throw new InvalidArgError('RDMAReqBatch.add after post()');
    const { devId, peerDev, maxSge, maxMsgSz } = this.#ctx;
    const locals: readonly RDMABuf[] = Array.isArray(local) ? local : [local as RDMABuf];
    if (!remote.valid) throw new InvalidArgError('RDMA with an invalid remote buffer (address 0)');
    const rkey = remote.rkey(peerDev);
    if (rkey === undefined)
      throw new InvalidArgError(`remote buffer has no rkey for the peer's device ${peerDev} (it has ${remote.rkeys.map((k) => k.devId).join(', ') || 'none'})`);
    const lkeys: number[] = [];
    let total = 0;
    for (const l of locals) {
      if (!l.valid) throw new InvalidArgError('RDMA with a released local buffer');
      const lkey = l.lkey(devId);
      if (lkey === undefined) throw new InvalidArgError(`local buffer is not registered on device ${devId}`);
      if (l.length > maxMsgSz) throw new InvalidArgError(`local buffer of ${l.length} bytes exceeds the port's max_msg_sz ${maxMsgSz}`);
      lkeys.push(lkey);
      total += l.length;
    }
    if (total > remote.length) throw new InvalidArgError(`local buffers (${total} bytes) exceed the remote buffer (${remote.length} bytes)`);
    let addr = remote.addr;
    let sges = 0;
    let bytes = 0;
    const close = () => {
      this.remoteAddr.push(addr);
      this.rkey.push(rkey);
      this.sgeEnd.push(this.sgeAddr.length);
      addr += BigInt(bytes);
      sges = 0;
      bytes = 0;
    };
    for (let i = 0; i < locals.length; i++) {
      const l = locals[i]!;
      if (l.length === 0) continue;
      if (sges === maxSge || bytes + l.length > maxMsgSz) close();
      this.sgeAddr.push(l.address);
      this.sgeLen.push(l.length);
      this.sgeLkey.push(lkeys[i]!);
      sges++;
      bytes += l.length;
    }
    if (sges > 0) close();
    return this;
  }

  /**
   * Posts everything added; resolves when all of it has completed (or, with `until: 'posted'`, has been posted).
   * Aborting drops what is not yet posted.
   */
  post(opts: RDMAPostOptions = {}): Promise<void> {
    if (this.#posted) return Promise.reject(new InvalidArgError('RDMAReqBatch posted twice'));
    this.#posted = true;
    return poster(this.#sock, this, opts);
  }
}
