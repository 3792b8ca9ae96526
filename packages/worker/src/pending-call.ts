import type { FfnetError, MessagePacket, Schema } from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';

/** What settles a registered call: the Waiter. */
export interface CallOwner {
  fail(call: PendingCall, err: FfnetError): boolean;
}

// The write side of a PendingCall, keyed by symbols that only `@ffnet/worker/internal` exports: the Waiter and the
// IOWorker (its owners) write a call's state, everyone else reads it.
/** Waiter.register: the uuid, owner and deadline. */
export const REGISTER: unique symbol = Symbol('PendingCall.register');
/** Waiter: the call settled; the frame kept for resending is dropped. */
export const SETTLE: unique symbol = Symbol('PendingCall.settle');
/** IOWorker.sendAsync: one more attempt of `frame` to `address`. */
export const ATTEMPT: unique symbol = Symbol('PendingCall.attempt');
/** The connection the frame went out on (undefined: it did not leave). */
export const BIND: unique symbol = Symbol('PendingCall.bind');
/** Waiter.hold: something the call keeps until it settles. */
export const HOLD: unique symbol = Symbol('PendingCall.hold');

/** Something a call holds until it settles (rdma's RDMAControl slot); released exactly once, when it settles. */
export interface CallResource {
  release(): void;
}

/**
 * One outstanding request on the calling side. The same object is the Waiter's entry (matched by uuid, with a
 * deadline) and the tag of its frame in the IOWorker (retried while attempts remain), so a call costs one
 * object rather than one per layer. Subclasses decide what the outcome means; the server package's Client
 * settles a promise.
 *
 * Its state is written only by its owners, the Waiter (uuid, deadline, settled) and the IOWorker (address,
 * frame, attempts, transport); everyone else reads it. A sender of its own binds a call to its connection with
 * `Waiter.bind`.
 */
export abstract class PendingCall {
  /** What is being called, for messages: `Echo.echo`. */
  readonly label: string;
  /** Retries after the first attempt; undefined takes the IOWorker's `sendRetryTimes`. */
  readonly maxRetries: number | undefined;
  #uuid = 0;
  #timeoutMs = 0;
  #address = '';
  #frame: Uint8Array | readonly Uint8Array[] | undefined = undefined;
  #attempts = 0;
  #transport: Transport | undefined = undefined;
  #settled = false;
  #owner: CallOwner | undefined = undefined;
  #held: CallResource | undefined = undefined;
  /** @internal performance.now() at which the call times out (Infinity: never); the Waiter's */
  deadline = Number.POSITIVE_INFINITY;
  /** @internal neighbours in the Waiter's deadline-ordered list of calls with the same timeout */
  prev: PendingCall | undefined = undefined;
  /** @internal */
  next: PendingCall | undefined = undefined;
  /**
   * The schema of the response's value: a 3fs response is decoded with it in the pass over its frame's header
   * (the Processor finds the call by uuid there), an ffnet one is checked against it by the caller.
   */
  responseSchema: Schema | undefined = undefined;

  constructor(label: string, maxRetries?: number) {
    this.label = label;
    this.maxRetries = maxRetries;
  }

  /** Request id, given by Waiter.register (0 before). */
  get uuid(): number {
    return this.#uuid;
  }
  /** Deadline given to Waiter.register, in ms (0 = none). */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }
  /** Destination as given to sendAsync. */
  get address(): string {
    return this.#address;
  }
  /** The encoded frame, kept until the call settles so that a failed send can go out again. */
  get frame(): Uint8Array | readonly Uint8Array[] | undefined {
    return this.#frame;
  }
  /** Send attempts so far. */
  get attempts(): number {
    return this.#attempts;
  }
  /** The connection the frame last went out on; its death fails this call at once. */
  get transport(): Transport | undefined {
    return this.#transport;
  }
  get settled(): boolean {
    return this.#settled;
  }
  /** Whether a Waiter holds the call. */
  get registered(): boolean {
    return this.#owner !== undefined;
  }

  /** Settles the call with `err` unless it already settled; returns whether it did. */
  fail(err: FfnetError): boolean {
    if (this.#settled) return false;
    if (this.#owner) return this.#owner.fail(this, err);
    this[SETTLE]();
    this.onError(err);
    return true;
  }

  /** Whether `owner` holds this call. */
  ownedBy(owner: CallOwner): boolean {
    return this.#owner === owner;
  }

  [REGISTER](owner: CallOwner, uuid: number, timeoutMs: number): void {
    this.#owner = owner;
    this.#uuid = uuid;
    this.#timeoutMs = timeoutMs;
  }

  [SETTLE](): void {
    this.#settled = true;
    this.#frame = undefined;
    const held = this.#held;
    if (held !== undefined) {
      this.#held = undefined;
      held.release();
    }
  }

  /** False when the call has settled or already holds something: the caller keeps (and frees) `resource`. */
  [HOLD](resource: CallResource): boolean {
    if (this.#settled || this.#held !== undefined) return false;
    this.#held = resource;
    return true;
  }

  [ATTEMPT](address: string, frame: Uint8Array | readonly Uint8Array[]): void {
    this.#address = address;
    this.#frame = frame;
    this.#attempts++;
  }

  [BIND](transport: Transport | undefined, address?: string): void {
    this.#transport = transport;
    if (address !== undefined) this.#address = address;
  }

  /** Called once, with the response whose uuid matched. */
  abstract onResponse(pkt: MessagePacket, transport: Transport): void;
  /** Called once, when the call failed (timeout, send failure, lost connection, cancel). */
  abstract onError(err: FfnetError): void;
}
