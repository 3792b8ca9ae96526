import type { TimerHandle, TimerTarget, TimerWheel } from '@ffnet/event';
import { type FfnetError, InvalidArgError, type MessagePacket, TimeoutError } from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';
import { BIND, type CallOwner, type CallResource, HOLD, type PendingCall, REGISTER, SETTLE } from './pending-call.js';
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
const INITIAL_SLOTS = 64;

/**
 * The pending calls that share one timeout, oldest first. Registration times only grow, so the list is in
 * deadline order and only its head needs a wheel entry: a call settling in the middle (the usual case) costs
 * an unlink, not a heap operation, and the entry is re-armed for the new head when it fires.
 */
class DeadlineList implements TimerTarget {
  head: PendingCall | undefined = undefined;
  tail: PendingCall | undefined = undefined;
  timer: TimerHandle | undefined = undefined;
  constructor(
    readonly waiter: Waiter,
    readonly wheel: TimerWheel,
    readonly timeoutMs: number,
  ) {}

  /** The head's deadline passed: time out the calls that are due, then wait for the next. */
  onTimeout(): void {
    this.timer = undefined;
    const now = performance.now();
    try {
      for (let c = this.head; c !== undefined && c.deadline <= now; c = this.head) {
        this.waiter.onTimeout(c);
        if (this.head === c) break;
      }
    } finally {
      // Also after a throwing onError: the calls still waiting keep their deadline.
      const head = this.head;
      if (head !== undefined && this.timer === undefined) this.timer = this.wheel.schedule(head.deadline, this);
    }
  }
}

/**
 * Pending calls of one client, keyed by uuid, each with a deadline on a TimerWheel. Unlike 3FS's process-wide
 * singleton, every client owns one, so clients never see each other's uuids or counters.
 *
 * A response settles the call with the same uuid; one that matches nothing is dropped and counted. When a
 * connection dies, failTransport fails the calls written on it immediately instead of leaving them to time
 * out, as 3FS does.
 *
 * Calls sit in an array indexed by the low bits of their uuid (uuids are issued in sequence, so the calls in
 * flight spread over distinct slots) rather than a Map: a Map under constant insert/delete keeps replacing its
 * hash table, and V8 links each replaced table to its successor, so one table surviving a scavenge drags the
 * chain and every call in it into the old generation.
 */
export class Waiter implements TimerTarget<PendingCall>, CallOwner {
  #slots: (PendingCall | undefined)[] = new Array<PendingCall | undefined>(INITIAL_SLOTS).fill(undefined);
  #mask = INITIAL_SLOTS - 1;
  #size = 0;
  /** Deadline lists by timeout; holds the non-empty ones and the last one used. */
  readonly #lists = new Map<number, DeadlineList>();
  #lastList: DeadlineList | undefined = undefined;
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
    return this.#size;
  }

  get stats(): WaiterStats {
    return {
      pending: this.#size,
      unknownResponses: this.#unknown,
      lateResponses: this.#late,
      timeouts: this.#timeouts,
      connectionFailures: this.#connectionFailures,
    };
  }

  /** Whether a call with this uuid is waiting. */
  has(uuid: number): boolean {
    return this.#find(uuid) !== undefined;
  }

  /** The call waiting for this uuid, if any. */
  get(uuid: number): PendingCall | undefined {
    return this.#find(uuid);
  }

  /**
   * Gives the call a fresh uuid and starts its deadline: after `timeoutMs` (> 0) it fails with TimeoutError.
   * A timeout of 0 or less waits indefinitely. Returns the uuid.
   */
  register(call: PendingCall, timeoutMs: number): number {
    if (call.registered || call.settled) throw new InvalidArgError(`call ${call.label} is already registered or settled`);
    let uuid = this.#nextUuid;
    // A taken slot holds a call still pending from many uuids ago (or from before the counter wrapped): skip
    // that uuid, or make room when the table is half full. A free slot also means no pending call has this uuid.
    while (this.#slots[uuid & this.#mask] !== undefined) {
      if (this.#size * 2 >= this.#slots.length) this.#grow();
      else uuid = uuid === MAX_UUID ? 1 : uuid + 1;
    }
    this.#nextUuid = uuid === MAX_UUID ? 1 : uuid + 1;
    this.#slots[uuid & this.#mask] = call;
    this.#size++;
    call[REGISTER](this, uuid, Math.max(timeoutMs, 0));
    if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
      call.deadline = performance.now() + timeoutMs;
      this.#append(this.#list(timeoutMs), call);
    }
    return uuid;
  }

  /** Delivers a response. Returns false (and counts it) when no call waits for its uuid. */
  post(pkt: MessagePacket, transport: Transport): boolean {
    const call = this.#find(pkt.uuid);
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
    if (call.settled || !call.ownedBy(this)) return false;
    this.#settle(call);
    call.onError(err);
    return true;
  }

  /**
   * Records that a call of this waiter went out on `transport` by a sender of its own (not the IOWorker), so
   * that the connection's death fails it at once. False when the call is not waiting here.
   */
  bind(call: PendingCall, transport: Transport): boolean {
    if (call.settled || !call.ownedBy(this)) return false;
    call[BIND](transport, transport.peer);
    return true;
  }

  /**
   * Lets the waiting call `uuid` keep `resource` until it settles, when the Waiter releases it (RDMAControl: a
   * transmission slot held while the server writes into the caller's memory). False when no such call waits here
   * or it already holds one: the caller still owns `resource` then.
   */
  hold(uuid: number, resource: CallResource): boolean {
    const call = this.#find(uuid);
    return call?.[HOLD](resource) === true;
  }

  /** Fails a waiting call by uuid. */
  failUuid(uuid: number, err: FfnetError): boolean {
    const call = this.#find(uuid);
    return call ? this.fail(call, err) : false;
  }

  /**
   * Fails every call whose frame went out on `transport` with `err`. Calls whose frame never left are not
   * bound to it any more (the IOWorker retries those), so only calls the peer may have seen fail here.
   */
  failTransport(transport: Transport, err: FfnetError): number {
    const calls = this.#pending((c) => c.transport === transport);
    for (const call of calls) {
      this.#settle(call);
      call.onError(err);
    }
    this.#connectionFailures += calls.length;
    return calls.length;
  }

  /** Fails every waiting call, e.g. when the client stops. */
  failAll(err: FfnetError): number {
    const calls = this.#pending(() => true);
    for (const call of calls) this.fail(call, err);
    return calls.length;
  }

  /** TimerTarget: a call's deadline passed. */
  onTimeout(call: PendingCall): void {
    if (call.settled) return;
    this.#timeouts++;
    const t = call.transport;
    const err = new TimeoutError(`${call.label} got no response within ${call.timeoutMs} ms (uuid ${call.uuid})`, { peer: call.address || undefined });
    this.fail(call, err);
    // The backend decides whether the connection is still trusted (rdma closes it, as 3FS's closeIB after kTimeout).
    t?.callTimedOut(err);
  }

  #find(uuid: number): PendingCall | undefined {
    const call = this.#slots[uuid & this.#mask];
    return call !== undefined && call.uuid === uuid ? call : undefined;
  }

  /** Pending calls matching `pick`, in uuid order (the order they were registered in). */
  #pending(pick: (c: PendingCall) => boolean): PendingCall[] {
    const out: PendingCall[] = [];
    for (const c of this.#slots) if (c !== undefined && pick(c)) out.push(c);
    return out.sort((a, b) => a.uuid - b.uuid);
  }

  #grow(): void {
    const slots = new Array<PendingCall | undefined>(this.#slots.length * 2).fill(undefined);
    const mask = slots.length - 1;
    // Uuids distinct modulo n are distinct modulo 2n: the move never collides.
    for (const c of this.#slots) if (c !== undefined) slots[c.uuid & mask] = c;
    this.#slots = slots;
    this.#mask = mask;
  }

  #list(timeoutMs: number): DeadlineList {
    const last = this.#lastList;
    if (last !== undefined && last.timeoutMs === timeoutMs) return last;
    let list = this.#lists.get(timeoutMs);
    if (list === undefined) {
      list = new DeadlineList(this, this.#wheel, timeoutMs);
      this.#lists.set(timeoutMs, list);
    }
    // The list used last stays in the map while empty, so a client with one timeout never re-creates it.
    if (last !== undefined && last.head === undefined) this.#lists.delete(last.timeoutMs);
    this.#lastList = list;
    return list;
  }

  #append(list: DeadlineList, call: PendingCall): void {
    const tail = list.tail;
    call.prev = tail;
    if (tail === undefined) {
      list.head = call;
      if (list.timer === undefined) list.timer = this.#wheel.schedule(call.deadline, list);
    } else {
      tail.next = call;
    }
    list.tail = call;
  }

  #unlink(call: PendingCall): void {
    const last = this.#lastList;
    const list = last !== undefined && last.timeoutMs === call.timeoutMs ? last : this.#lists.get(call.timeoutMs);
    if (list === undefined) return;
    const { prev, next } = call;
    if (prev === undefined) list.head = next;
    else prev.next = next;
    if (next === undefined) list.tail = prev;
    else next.prev = prev;
    call.prev = undefined;
    call.next = undefined;
    if (list.head === undefined) {
      // Nothing left to time out: drop the entry so that a ref'd wheel does not hold the process open for it.
      if (list.timer !== undefined) {
        this.#wheel.cancel(list.timer);
        list.timer = undefined;
      }
      if (list !== this.#lastList) this.#lists.delete(list.timeoutMs);
    }
  }

  #settle(call: PendingCall): void {
    call[SETTLE]();
    const slot = call.uuid & this.#mask;
    if (this.#slots[slot] === call) {
      this.#slots[slot] = undefined;
      this.#size--;
    }
    if (call.deadline !== Number.POSITIVE_INFINITY) this.#unlink(call);
  }
}
