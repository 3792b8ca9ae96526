import { InvalidArgError, SocketClosedError, TimeoutError } from '@ffnet/serde';
import { type Address, formatAddress, parseAddress } from './address.js';
import type { Backend } from './backend.js';
import { DEFAULT_BACKENDS } from './defaults.js';
import { Transport, type TransportConnectOptions, type TransportHandler } from './transport.js';

export interface TransportPoolOptions {
  /** Connections kept per address (3FS transport_pool.max_connections, default 1); get() round-robins over them. */
  connectionsPerAddress?: number;
  /** Used by get() to fill an empty slot. Default: `Transport.connect(a, handler, { ...connect, backends })` when `handler` is given. */
  create?(addr: Address): Transport;
  /** The handler of the transports the default create dials; without it (and without `create`) get() never dials. */
  handler?: TransportHandler;
  /** Options of the default create's connects (its `backends` is the pool's own); `credentials` reach each backend connect. */
  connect?: Omit<TransportConnectOptions, 'backends' | 'signal'>;
  /**
   * Where the default create finds each address's backend (default `[tcp(), unix()]`): a scheme with none here
   * makes get() throw NotImplementedError, as Transport.connect does.
   */
  backends?: readonly Backend[];
}

interface Slots {
  readonly address: Address;
  readonly list: (Transport | undefined)[];
  next: number;
}

const KEY_CACHE_LIMIT = 1024;

function usable(t: Transport | undefined): t is Transport {
  return t !== undefined && (t.state === 'ready' || t.state === 'connecting');
}

/**
 * Outgoing transports by address, N slots per address, plus the incoming (accepted) ones, which 3FS keeps
 * under a wildcard address: they are never handed out by get() but are dropped and checked like the rest.
 * A transport that closes leaves the pool by itself.
 */
export class TransportPool {
  private readonly perAddress: number;
  private readonly create: ((addr: Address) => Transport) | undefined;
  private readonly outgoing = new Map<string, Slots>();
  private readonly incoming = new Set<Transport>();
  /** Which slot list an outgoing transport sits in (its own address may be spelled differently from the key). */
  private readonly keyOf = new Map<Transport, string>();
  /** Address string as given → canonical key, so a hot get('tcp://…') does not re-parse. */
  private readonly keys = new Map<string, { key: string; address: Address }>();
  /**
   * With one connection per address, the address string of the last get() and its slots: a client calling one
   * server skips both Map lookups. A slots object dropped from `outgoing` only ever empties, so a stale one
   * fails the usable() check and the lookup runs as usual.
   */
  private lastAddr: string | undefined = undefined;
  private lastSlots: Slots | undefined = undefined;

  constructor(opts: TransportPoolOptions = {}) {
    const n = opts.connectionsPerAddress ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgError(`connectionsPerAddress must be a positive integer, got ${n}`);
    this.perAddress = n;
    const { handler } = opts;
    if (opts.create !== undefined) this.create = opts.create;
    else if (handler !== undefined) {
      const connectOpts: TransportConnectOptions = { ...opts.connect, backends: opts.backends ?? DEFAULT_BACKENDS };
      this.create = (addr) => Transport.connect(addr, handler, connectOpts);
    } else this.create = undefined;
  }

  /**
   * The transport for the next slot of `addr` (round robin). An empty or dead slot is filled with
   * create(addr) when a factory was given; without one, any live transport of the address is returned.
   */
  get(addr: Address | string): Transport | undefined {
    if (addr === this.lastAddr) {
      const t = this.lastSlots!.list[0];
      if (usable(t)) return t;
    }
    const { key, address } = this.resolve(addr);
    let slots = this.outgoing.get(key);
    if (!slots) {
      if (!this.create) return undefined;
      slots = { address, list: new Array<Transport | undefined>(this.perAddress).fill(undefined), next: 0 };
      this.outgoing.set(key, slots);
    }
    const i = slots.next;
    slots.next = i + 1 === this.perAddress ? 0 : i + 1;
    const t = slots.list[i];
    if (this.perAddress === 1 && typeof addr === 'string') {
      this.lastAddr = addr;
      this.lastSlots = slots;
    }
    if (usable(t)) return t;
    if (this.create) {
      if (t) this.keyOf.delete(t);
      let fresh: Transport;
      try {
        fresh = this.create(slots.address);
      } catch (e) {
        // A refused address (no backend for its scheme, say) keeps no empty entry: memory stays bounded by dials.
        if (slots.list.every((s) => s === undefined)) this.outgoing.delete(key);
        throw e;
      }
      slots.list[i] = fresh;
      this.keyOf.set(fresh, key);
      this.watch(fresh);
      return fresh;
    }
    for (const other of slots.list) if (usable(other)) return other;
    return undefined;
  }

  /** Outgoing: into a free slot of t.address (false when all are taken by live transports). Incoming: kept apart. */
  add(t: Transport): boolean {
    if (t.state === 'closed') return false;
    if (t.incoming) {
      if (this.incoming.has(t)) return true;
      this.incoming.add(t);
      this.watch(t);
      return true;
    }
    const key = formatAddress(t.address);
    let slots = this.outgoing.get(key);
    if (!slots) {
      slots = { address: t.address, list: new Array<Transport | undefined>(this.perAddress).fill(undefined), next: 0 };
      this.outgoing.set(key, slots);
    }
    if (slots.list.includes(t)) return true;
    const free = slots.list.findIndex((s) => !usable(s));
    if (free < 0) return false;
    const old = slots.list[free];
    if (old) this.keyOf.delete(old);
    slots.list[free] = t;
    this.keyOf.set(t, key);
    this.watch(t);
    return true;
  }

  /** Forgets a transport without closing it. */
  remove(t: Transport): boolean {
    if (this.incoming.delete(t)) return true;
    const key = this.keyOf.get(t);
    if (key === undefined) return false;
    this.keyOf.delete(t);
    const slots = this.outgoing.get(key);
    if (!slots) return false;
    const i = slots.list.indexOf(t);
    if (i < 0) return false;
    slots.list[i] = undefined;
    if (slots.list.every((s) => s === undefined)) this.outgoing.delete(key);
    return true;
  }

  /**
   * Invalidates and forgets the outgoing transports of `addr`, or every outgoing one when no address is
   * given; `incoming: true` includes the accepted ones. Returns how many were dropped.
   */
  drop(addr?: Address | string, opts: { incoming?: boolean } = {}): number {
    let victims: Transport[];
    if (addr === undefined) {
      victims = this.outgoingList();
      if (opts.incoming) victims.push(...this.incoming);
    } else {
      const slots = this.outgoing.get(this.resolve(addr).key);
      victims = slots ? slots.list.filter((t): t is Transport => t !== undefined) : [];
    }
    for (const t of victims) {
      this.remove(t);
      t.invalidate(new SocketClosedError('connection dropped from the transport pool', { peer: t.peer }));
    }
    return victims.length;
  }

  /**
   * Invalidates and forgets transports idle for at least idleMs (0 disables the idle check) and closed ones;
   * with `frame`, also those whose frame in progress is overdue (Transport.checkFrame).
   */
  check(idleMs: number, now: number = Date.now(), frame?: { timeoutMs: number; minBytesPerSec: number }): number {
    let dropped = 0;
    for (const t of this.all()) {
      if (t.state === 'closed') {
        this.remove(t);
        continue;
      }
      if (frame !== undefined && t.checkFrame(now, frame.timeoutMs, frame.minBytesPerSec)) {
        this.remove(t);
        dropped++;
        continue;
      }
      if (idleMs > 0 && now - t.lastActiveAt >= idleMs) {
        this.remove(t);
        t.invalidate(new TimeoutError(`connection idle for ${now - t.lastActiveAt} ms (limit ${idleMs} ms)`, { peer: t.peer }));
        dropped++;
      }
    }
    return dropped;
  }

  all(): Transport[] {
    const out = this.outgoingList();
    for (const t of this.incoming) out.push(t);
    return out;
  }

  get size(): number {
    let n = this.incoming.size;
    for (const slots of this.outgoing.values()) for (const t of slots.list) if (t) n++;
    return n;
  }

  /** Gracefully closes every transport and empties the pool. */
  async close(opts: { signal?: AbortSignal } = {}): Promise<void> {
    const list = this.all();
    this.outgoing.clear();
    this.lastAddr = undefined;
    this.lastSlots = undefined;
    this.incoming.clear();
    this.keyOf.clear();
    await Promise.all(list.map((t) => t.close(opts)));
  }

  private outgoingList(): Transport[] {
    const out: Transport[] = [];
    for (const slots of this.outgoing.values()) for (const t of slots.list) if (t) out.push(t);
    return out;
  }

  /** One closure per connection, not per message: a closed transport removes itself. */
  private watch(t: Transport): void {
    t.closed.then(() => this.remove(t));
  }

  private resolve(addr: Address | string): { key: string; address: Address } {
    if (typeof addr !== 'string') return { key: formatAddress(addr), address: addr };
    let hit = this.keys.get(addr);
    if (!hit) {
      const address = parseAddress(addr);
      hit = { key: formatAddress(address), address };
      if (this.keys.size >= KEY_CACHE_LIMIT) this.keys.clear();
      this.keys.set(addr, hit);
    }
    return hit;
  }
}
