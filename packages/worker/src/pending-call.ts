import type { FfnetError, MessagePacket } from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';
import type { Waiter } from './waiter.js';

/**
 * One outstanding request on the calling side. The same object is the Waiter's entry (matched by uuid, with a
 * deadline) and the tag of its frame in the IOWorker (retried while attempts remain), so a call costs one
 * object rather than one per layer. Subclasses decide what the outcome means; the server package's Client
 * settles a promise.
 *
 * Fields are written by the Waiter (uuid, deadline) and the IOWorker (address, frame, attempts, transport);
 * callers only read them.
 */
export abstract class PendingCall {
  /** Request id, given by Waiter.register. */
  uuid = 0;
  /** What is being called, for messages: `Echo.echo`. */
  readonly label: string;
  /** Retries after the first attempt; undefined takes the IOWorker's `sendRetryTimes`. */
  maxRetries: number | undefined;
  /** Deadline given to Waiter.register, in ms (0 = none). */
  timeoutMs = 0;
  /** Destination as given to sendAsync. */
  address = '';
  /** The encoded frame, kept until the call settles so that a failed send can go out again. */
  frame: Uint8Array | readonly Uint8Array[] | undefined = undefined;
  /** Send attempts so far. */
  attempts = 0;
  /** The connection the frame last went out on; its death fails this call at once. */
  transport: Transport | undefined = undefined;
  settled = false;
  /** @internal */
  waiter: Waiter | undefined = undefined;
  /** @internal performance.now() at which the call times out (Infinity: never). */
  deadline = Number.POSITIVE_INFINITY;
  /** @internal neighbours in the Waiter's deadline-ordered list of calls with the same timeout */
  prev: PendingCall | undefined = undefined;
  /** @internal */
  next: PendingCall | undefined = undefined;

  constructor(label: string, maxRetries?: number) {
    this.label = label;
    this.maxRetries = maxRetries;
  }

  /** Settles the call with `err` unless it already settled; returns whether it did. */
  fail(err: FfnetError): boolean {
    if (this.settled) return false;
    if (this.waiter) return this.waiter.fail(this, err);
    this.settled = true;
    this.frame = undefined;
    this.onError(err);
    return true;
  }

  /** Called once, with the response whose uuid matched. */
  abstract onResponse(pkt: MessagePacket, transport: Transport): void;
  /** Called once, when the call failed (timeout, send failure, lost connection, cancel). */
  abstract onError(err: FfnetError): void;
}
