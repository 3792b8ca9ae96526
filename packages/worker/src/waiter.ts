import type { TimerTarget, TimerWheel } from '@ffnet/event';
import { type FfnetError, InvalidArgError, type MessagePacket, TimeoutError } from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';
import type { PendingCall } from './pending-call.js';
import { sharedTimerWheel } from './timers.js';

export interface WaiterOptions {
  /** Where deadlines live; default the process-wide wheel (one Node timer for every deadline). */
  wheel?: TimerWheel;
}

export interface WaiterStats {
  /** Calls waiting for a response. */
  readonly pending: number;
  /** Responses whose uuid this waiter never issued (or issued so long ago the counter wrapped). */
  readonly unknownResponses: number;
  /** Responses for calls that had already settled: timed out, failed or cancelled. */
  readonly lateResponses: number;
  readonly timeouts: number;
  /** Calls failed because the connection they went out on died. */
  readonly connectionFailures: number;
}

const MAX_UUID = Number.MAX_SAFE_INTEGER;

/**
 * Pending calls of one client, keyed by uuid, each with a deadline on a TimerWheel. Unlike 3FS's process-wide
 * singleton, every client owns one, so clients never see each other's uuids or counters.
 *
 * A response settles the call with the same uuid; one that matches nothing is dropped and counted. When a
 * connection dies, failTransport fails the calls written on it immediately instead of leaving them to time
 * out, as 3FS does.
 */
export class Waiter implements TimerTarget<PendingCall> {
  readonly #pending = new Map<number, PendingCall>();
  readonly #wheel: TimerWheel;
  #nextUuid = 1;
  #unknown = 0;
  #late = 0;
  #timeouts = 0;
  #connectionFailures = 0;

  constructor(opts: WaiterOptions = {}) {
    this.#wheel = opts.wheel ?? sharedTimerWheel();
  }

  /** Calls waiting for a response. */
  get size(): number {
    return this.#pending.size;
  }

  get stats(): WaiterStats {
    return {
      pending: this.#pending.size,
      unknownResponses: this.#unknown,
      lateResponses: this.#late,
      timeouts: this.#timeouts,
      connectionFailures: this.#connectionFailures,
    };
  }

  /** Whether a call with this uuid is waiting. */
  has(uuid: number): boolean {
    return this.#pending.has(uuid);
  }

  /**
   * Gives the call a fresh uuid and starts its deadline: after `timeoutMs` (> 0) it fails with TimeoutError.
   * A timeout of 0 or less waits indefinitely. Returns the uuid.
   */
  register(call: PendingCall, timeoutMs: number): number {
    if (call.waiter !== undefined || call.settled) throw new InvalidArgError(`call ${call.label} is already registered or settled`);
    let uuid = this.#nextUuid;
    // After 2^53 calls the counter wraps; skip an id still in use by some very long call.
    while (this.#pending.has(uuid)) uuid = uuid === MAX_UUID ? 1 : uuid + 1;
    this.#nextUuid = uuid === MAX_UUID ? 1 : uuid + 1;
    call.uuid = uuid;
    call.waiter = this;
    call.timeoutMs = Math.max(timeoutMs, 0);
    this.#pending.set(uuid, call);
    if (timeoutMs > 0 && Number.isFinite(timeoutMs)) call.timer = this.#wheel.scheduleAfter(timeoutMs, this, call);
    return uuid;
  }

  /** Delivers a response. Returns false (and counts it) when no call waits for its uuid. */
  post(pkt: MessagePacket, transport: Transport): boolean {
    const call = this.#pending.get(pkt.uuid);
    if (call === undefined) {
      if (pkt.uuid > 0 && pkt.uuid < this.#nextUuid) this.#late++;
      else this.#unknown++;
      return false;
    }
    this.#settle(call);
    call.onResponse(pkt, transport);
    return true;
  }

  /** Fails a waiting call; false when it had already settled. */
  fail(call: PendingCall, err: FfnetError): boolean {
    if (call.settled || call.waiter !== this) return false;
    this.#settle(call);
    call.onError(err);
    return true;
  }

  /** Fails a waiting call by uuid. */
  failUuid(uuid: number, err: FfnetError): boolean {
    const call = this.#pending.get(uuid);
    return call ? this.fail(call, err) : false;
  }

  /**
   * Fails every call whose frame went out on `transport` with `err`. Calls whose frame never left are not
   * bound to it any more (the IOWorker retries those), so only calls the peer may have seen fail here.
   */
  failTransport(transport: Transport, err: FfnetError): number {
    let n = 0;
    for (const call of this.#pending.values()) {
      if (call.transport !== transport) continue;
      this.#settle(call);
      n++;
      call.onError(err);
    }
    this.#connectionFailures += n;
    return n;
  }

  /** Fails every waiting call, e.g. when the client stops. */
  failAll(err: FfnetError): number {
    const calls = [...this.#pending.values()];
    for (const call of calls) this.fail(call, err);
    return calls.length;
  }

  /** TimerTarget: a call's deadline passed. */
  onTimeout(call: PendingCall): void {
    call.timer = undefined;
    if (call.settled) return;
    this.#timeouts++;
    this.fail(call, new TimeoutError(`${call.label} got no response within ${call.timeoutMs} ms (uuid ${call.uuid})`, { peer: call.address || undefined }));
  }

  #settle(call: PendingCall): void {
    call.settled = true;
    this.#pending.delete(call.uuid);
    if (call.timer !== undefined) {
      this.#wheel.cancel(call.timer);
      call.timer = undefined;
    }
    call.frame = undefined;
  }
}
