/**
 * One-sided RDMA from a handler (3FS CallContext::readTransmission / writeTransmission, §6) and the server half
 * of RDMAControl: before writing into a client's memory the server asks that client, over the same connection,
 * for a transmission slot.
 */
import type { IBSocket, RDMAPostOptions, RDMAReqBatch } from '@ffnet/connect';
import type { RDMABuf, RDMARemoteBuf } from '@ffnet/device';
import { CancelledError, encodeMessageParts, type FfnetError, type FrameParts, MessageFlags, type MessagePacket, NotImplementedError } from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';
import { socketOf } from '@ffnet/transport/internal';
import { type CallContext, PendingCall } from '@ffnet/worker';
import { toFfnetError } from '@ffnet/worker/internal';
import { ibSocketOf } from './backend.js';
import { RDMAControlService, type RDMATransmissionReq } from './service.js';

/** Outcomes of applyTransmission in this process; failures are otherwise ignored, as in 3FS. */
export interface RDMAControlStats {
  /** Granted by the client. */
  readonly applied: number;
  /** Failed or timed out (the write went ahead anyway). */
  readonly failed: number;
}

const stats = { applied: 0, failed: 0 };

export function rdmaControlStats(): RDMAControlStats {
  return { ...stats };
}

/** The IBSocket a call came in on, while its connection is open; undefined over tcp:// and unix://. */
export function ibSocketOfCall(ctx: CallContext): IBSocket | undefined {
  const sock = socketOf(ctx.transport);
  return sock === undefined ? undefined : ibSocketOf(sock);
}

/**
 * Whether the call came over rdma:// with its IBSocket at hand, so that readTransmission(ctx) /
 * writeTransmission(ctx) work. Over tcp:// and unix:// services send the data inline instead.
 */
export function isRdmaCall(ctx: CallContext): boolean {
  return ctx.transport.capabilities.oneSided && ibSocketOfCall(ctx) !== undefined;
}

function requireIBSocket(ctx: CallContext, what: string): IBSocket {
  const s = ctx.transport.capabilities.oneSided ? ibSocketOfCall(ctx) : undefined;
  if (s === undefined) {
    const why = ctx.transport.address.scheme === 'rdma' ? 'its IBSocket is not available' : 'the call did not come over rdma://';
    throw new NotImplementedError(`${ctx.method.name}: ${what} needs an RDMA connection, but ${why}; check isRdmaCall(ctx) and send the data inline`, {
      peer: ctx.peer,
    });
  }
  return s;
}

/**
 * A batch of RDMA READs from the caller's memory on its own queue pair (3FS readTransmission). Throws
 * NotImplementedError when the call did not come over RDMA (see isRdmaCall).
 */
export function readTransmission(ctx: CallContext): RDMATransmission {
  return new RDMATransmission(ctx, requireIBSocket(ctx, 'readTransmission()').rdmaReadBatch());
}

/**
 * A batch of RDMA WRITEs into the caller's memory (3FS writeTransmission); call `applyTransmission(timeoutMs)`
 * before post() so a caller using RDMAControl can bound how many such writes land at once. Throws
 * NotImplementedError when the call did not come over RDMA (see isRdmaCall).
 */
export function writeTransmission(ctx: CallContext): RDMAWriteTransmission {
  return new RDMAWriteTransmission(ctx, requireIBSocket(ctx, 'writeTransmission()').rdmaWriteBatch());
}

/**
 * RDMA READs or WRITEs on the caller's queue pair: add() pairs a buffer the caller described (an RDMARemoteBuf from
 * the request) with local registered memory, post() runs them all. Failures are RDMAError / RDMAPostFailedError /
 * InvalidArgError as for RDMAReqBatch; an RDMA error breaks the connection (RC semantics), so the caller sees its
 * call fail with a connection error.
 */
export class RDMATransmission {
  readonly ctx: CallContext;
  readonly batch: RDMAReqBatch;

  constructor(ctx: CallContext, batch: RDMAReqBatch) {
    this.ctx = ctx;
    this.batch = batch;
  }

  get isWrite(): boolean {
    return this.batch.isWrite;
  }

  /** Work requests so far. */
  get wrCount(): number {
    return this.batch.wrCount;
  }

  add(remote: RDMARemoteBuf, local: RDMABuf | readonly RDMABuf[]): this {
    this.batch.add(remote, local);
    return this;
  }

  /**
   * Posts everything added and resolves when it has completed, or with `until: 'posted'` as soon as it is on the
   * queue pair (see the package README, "Response behind the WRITE": the response a handler returns then travels
   * behind the WRITEs, and a WRITE that fails fails the connection instead of letting that response through).
   */
  post(opts: RDMAPostOptions = {}): Promise<void> {
    return this.batch.post(opts);
  }
}

/** A write batch, plus the RDMAControl handshake that precedes writes into client memory. */
export class RDMAWriteTransmission extends RDMATransmission {
  /**
   * When the caller opted into RDMAControl (ControlRDMA request flag), asks it for a transmission slot with
   * `RDMAControl.apply{uuid}` on this connection and waits for the answer, at most `timeoutMs`. Never rejects: as in
   * 3FS an error or timeout only counts, and the write goes ahead. Resolves true when the client granted the slot
   * (or did not ask for control), false when the apply failed.
   */
  applyTransmission(timeoutMs: number, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    const ctx = this.ctx;
    if ((ctx.flags & MessageFlags.ControlRDMA) === 0) return Promise.resolve(true);
    return callBack(ctx, ctx.transport, timeoutMs, opts.signal);
  }
}

/** A server→client call on the transport the request came in on, matched by the group's Waiter. */
class ApplyCall extends PendingCall {
  readonly #resolve: (granted: boolean) => void;
  signal: AbortSignal | undefined = undefined;

  constructor(resolve: (granted: boolean) => void) {
    super('RDMAControl.apply', 0);
    this.#resolve = resolve;
  }

  onResponse(pkt: MessagePacket): void {
    this.#detach();
    const ok = (pkt.payload as { ok?: boolean } | undefined)?.ok === true;
    if (ok) stats.applied++;
    else stats.failed++;
    this.#resolve(ok);
  }

  onError(_err: FfnetError): void {
    this.#detach();
    stats.failed++;
    this.#resolve(false);
  }

  handleEvent(): void {
    this.fail(new CancelledError('applyTransmission was aborted', { peer: this.address, cause: this.signal?.reason }));
  }

  #detach(): void {
    this.signal?.removeEventListener('abort', this);
    this.signal = undefined;
  }
}

function callBack(ctx: CallContext, t: Transport, timeoutMs: number, signal: AbortSignal | undefined): Promise<boolean> {
  const waiter = ctx.processor.waiter;
  if (waiter === undefined || signal?.aborted || t.state !== 'ready') {
    // Nowhere to match an answer (a Processor built without a Waiter), or nothing to wait for.
    stats.failed++;
    return Promise.resolve(false);
  }
  let resolve!: (granted: boolean) => void;
  const promise = new Promise<boolean>((r) => {
    resolve = r;
  });
  const call = new ApplyCall(resolve);
  waiter.register(call, timeoutMs);
  // Bound to the transport but sent untagged: if the connection dies, the Waiter fails the call at once, and the
  // IOWorker never tries to redial a client's address to resend it.
  waiter.bind(call, t);
  const pkt: MessagePacket = {
    uuid: call.uuid,
    serviceId: RDMAControlService.id,
    methodId: RDMAControlService.methods.apply.id,
    flags: MessageFlags.IsReq,
    version: 0,
    timeoutMs: Number.isFinite(timeoutMs) && timeoutMs > 0 ? timeoutMs : 0,
    payload: { uuid: ctx.uuid } satisfies RDMATransmissionReq,
  };
  let frame: FrameParts;
  try {
    frame = encodeMessageParts(pkt);
  } catch (e) {
    call.fail(toFfnetError(e, t.peer));
    return promise;
  }
  if (signal !== undefined) {
    call.signal = signal;
    // The call is its own listener (handleEvent): no closure per transmission on this per-call path.
    signal.addEventListener('abort', call);
  }
  try {
    t.send(frame);
  } catch (e) {
    call.fail(toFfnetError(e, t.peer));
  }
  return promise;
}
