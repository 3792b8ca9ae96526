/**
 * RDMABuf: registered, page-aligned native memory seen from JS as a Buffer (no copy), with 3FS's range
 * semantics (subrange/first/last/takeFirst/takeLast/advance/subtract). RDMABufPool: a bounded set of such
 * buffers, with an async allocate that waits for one to be freed.
 *
 * Lifetime. `release()` is the normal path: it deregisters and frees (or returns the buffer to its pool).
 * Every RDMABuf cut from the same allocation shares it, so releasing any of them releases all of them.
 * The FinalizationRegistry safety net covers buffers that are dropped without release():
 * - a standalone allocation is watched through its ArrayBuffer, which every Buffer view handed out keeps
 *   alive, so the memory is freed only once no JS object can reach it (and only after deregistration);
 * - a pool buffer's memory belongs to the pool; a dropped lease is returned to the pool when the last
 *   RDMABuf of that lease is collected.
 * Buffer views taken from `.buffer` must not be used after release(): the memory is freed or reused.
 */
import { type Disposer, InvalidArgError, onAbort, RDMANoBufError, TimeoutError } from '@ffnet/common';
import { allocBlock, blockFinalizer, blockMemory, freeBlock, getDefaultOwners, type MrOwner, type NativeBlock } from './memory.js';
import { RDMARemoteBuf, type RKey } from './remote.js';

/** One allocation (or one pool lease): shared by every RDMABuf cut from it. */
interface Allocation {
  readonly block: NativeBlock;
  readonly ab: ArrayBuffer;
  readonly pool: PoolCore | null;
  released: boolean;
}

export interface RDMABufAllocateOptions {
  /** Devices to register on; default: the devices opened by `IBManager` (none → plain memory, no MRs). */
  devices?: readonly MrOwner[];
  /**
   * ibv access flags for the registration; default RDMABUF_ACCESS (local write, memory-window binding, relaxed
   * ordering: peers reach it only through per-call windows). RDMABUF_DEVICE_SCOPE_ACCESS is the unsafe opt-out
   * that puts remote rights on the MR itself, reachable from any connection for as long as it stays registered.
   */
  access?: number;
}

export class RDMABuf {
  readonly #a: Allocation;
  #begin: number;
  #length: number;
  #view: Buffer | null = null;

  private constructor(a: Allocation, begin: number, length: number) {
    this.#a = a;
    this.#begin = begin;
    this.#length = length;
  }

  /**
   * Allocates `size` bytes of page-aligned memory and registers it on every device (RDMABUF_ACCESS: LOCAL_WRITE |
   * MW_BIND | RELAXED_ORDERING, no remote rights). With no devices open this is plain aligned memory.
   */
  static allocate(size: number, options: RDMABufAllocateOptions = {}): RDMABuf {
    const block = allocBlock(size, options.devices ?? getDefaultOwners(), options.access);
    const ab = blockMemory(block);
    const a: Allocation = { block, ab, pool: null, released: false };
    // Target: the ArrayBuffer (kept alive by every view); token: the allocation (unregistered on release()).
    blockFinalizer.register(ab, block, a);
    return new RDMABuf(a, 0, size);
  }

  /** @internal a lease of a pool slot. */
  static lease(pool: PoolCore, slot: PoolSlot): RDMABuf {
    const a: Allocation = { block: slot.block, ab: slot.ab, pool, released: false };
    leaseFinalizer.register(a, { pool, slot }, a);
    return new RDMABuf(a, 0, slot.block.size);
  }

  /** False once released (by this or any RDMABuf sharing the allocation). */
  get valid(): boolean {
    return !this.#a.released;
  }

  /** The current range as a Buffer over the native memory (no copy). */
  get buffer(): Buffer {
    this.#check();
    this.#view ??= Buffer.from(this.#a.ab, this.#begin, this.#length);
    return this.#view;
  }

  /** Bytes in the current range. */
  get length(): number {
    return this.#length;
  }

  /** Size of the whole underlying allocation. */
  get capacity(): number {
    return this.#a.block.size;
  }

  /** Offset of the current range inside the allocation. */
  get offset(): number {
    return this.#begin;
  }

  /** Native address of the current range's first byte (for SGEs and remote descriptors). */
  get address(): bigint {
    return this.#a.block.ptr + BigInt(this.#begin);
  }

  /** Registrations of the allocation, one per device. */
  get mrs(): readonly { readonly devId: number; readonly lkey: number; readonly rkey: number }[] {
    return this.#a.block.mrs.map((m) => ({ devId: m.devId, lkey: m.mr.lkey, rkey: m.mr.rkey }));
  }

  /** Local key on device `devId`, or undefined when not registered there. */
  lkey(devId: number): number | undefined {
    for (const m of this.#a.block.mrs) if (m.devId === devId) return m.mr.lkey;
    return undefined;
  }

  /** @internal the ibv_mr of the allocation on device `devId` (what a memory window is bound over). */
  mrPtr(devId: number): bigint | undefined {
    for (const m of this.#a.block.mrs) if (m.devId === devId) return m.mr.ptr;
    return undefined;
  }

  /**
   * The MR's own rkey on `devId`. With the default access (RDMABUF_ACCESS) it grants no remote access: share a
   * window's rkey instead (IBSocket.expose).
   */
  rkey(devId: number): number | undefined {
    for (const m of this.#a.block.mrs) if (m.devId === devId) return m.mr.rkey;
    return undefined;
  }

  /** Drops the first `n` bytes of the range. False (and unchanged) if `n` > length. */
  advance(n: number): boolean {
    if (!(n >= 0 && n <= this.#length)) return false;
    this.#begin += n;
    this.#length -= n;
    this.#view = null;
    return true;
  }

  /** Drops the last `n` bytes of the range. False (and unchanged) if `n` > length. */
  subtract(n: number): boolean {
    if (!(n >= 0 && n <= this.#length)) return false;
    this.#length -= n;
    this.#view = null;
    return true;
  }

  /** [offset, offset+length) of the current range, sharing the allocation; null if out of range. */
  subrange(offset: number, length: number): RDMABuf | null {
    if (!(offset >= 0 && length >= 0 && offset + length <= this.#length) || this.#a.released) return null;
    return new RDMABuf(this.#a, this.#begin + offset, length);
  }

  first(n: number): RDMABuf | null {
    return this.subrange(0, n);
  }

  last(n: number): RDMABuf | null {
    return this.subrange(this.#length - n, n);
  }

  /** `first(n)`, and advances this range past it. */
  takeFirst(n: number): RDMABuf | null {
    const b = this.first(n);
    if (b) this.advance(n);
    return b;
  }

  /** `last(n)`, and shrinks this range to exclude it. */
  takeLast(n: number): RDMABuf | null {
    const b = this.last(n);
    if (b) this.subtract(n);
    return b;
  }

  /** Back to the whole allocation. */
  resetRange(): void {
    this.#begin = 0;
    this.#length = this.#a.block.size;
    this.#view = null;
  }

  /** Whether [addr, addr+len) lies inside the current range. */
  contains(addr: bigint, len: number): boolean {
    const start = this.address;
    return addr >= start && addr + BigInt(len) <= start + BigInt(this.#length);
  }

  /**
   * The descriptor of the current range with the MRs' own rkeys (one per device). Those grant remote access only
   * when the memory was registered with RDMABUF_DEVICE_SCOPE_ACCESS; by default, expose it through a connection
   * (IBSocket.expose, or exposeOn / withExposed in @ffnet/rdma) and send that descriptor instead.
   */
  toRemoteBuf(): RDMARemoteBuf {
    this.#check();
    const rkeys: RKey[] = this.#a.block.mrs.map((m) => ({ rkey: m.mr.rkey, devId: m.devId }));
    return new RDMARemoteBuf(this.address, this.#length, rkeys);
  }

  /**
   * Releases the allocation: a pool buffer goes back to its pool; otherwise every MR is deregistered and the
   * memory freed. Idempotent; affects every RDMABuf sharing the allocation.
   */
  release(): void {
    const a = this.#a;
    if (a.released) return;
    a.released = true;
    if (a.pool) {
      leaseFinalizer.unregister(a);
      a.pool.giveBack(a.block);
    } else {
      blockFinalizer.unregister(a);
      freeBlock(a.block);
    }
  }

  #check(): void {
    if (this.#a.released) throw new InvalidArgError('RDMABuf used after release()');
  }
}

/** One buffer of a pool: its block and the single ArrayBuffer every lease of it views. */
interface PoolSlot {
  readonly block: NativeBlock;
  readonly ab: ArrayBuffer;
}

const leaseFinalizer = new FinalizationRegistry<{ pool: PoolCore; slot: PoolSlot }>(({ pool, slot }) => {
  pool.giveBack(slot.block);
});

interface Waiter {
  resolve(b: RDMABuf): void;
  reject(e: Error): void;
  cleanup(): void;
}

/** Pool state that outlives the RDMABufPool object, so leases can come back after the pool is dropped. */
class PoolCore {
  readonly bufSize: number;
  readonly count: number;
  readonly #devices: readonly MrOwner[] | undefined;
  readonly #access: number | undefined;
  readonly slots = new Map<bigint, PoolSlot>();
  readonly free: PoolSlot[] = [];
  readonly waiters: Waiter[] = [];
  closed = false;

  constructor(bufSize: number, count: number, devices: readonly MrOwner[] | undefined, access: number | undefined) {
    this.bufSize = bufSize;
    this.count = count;
    this.#devices = devices;
    this.#access = access;
  }

  /** A free slot, creating one while under `count`; null when all are leased. */
  take(): PoolSlot | null {
    const s = this.free.pop();
    if (s) return s;
    if (this.slots.size >= this.count) return null;
    // Default devices are looked up per buffer, so a pool made before IBManager.start() registers on its devices.
    const block = allocBlock(this.bufSize, this.#devices ?? getDefaultOwners(), this.#access);
    const slot: PoolSlot = { block, ab: blockMemory(block) };
    this.slots.set(block.ptr, slot);
    return slot;
  }

  giveBack(block: NativeBlock): void {
    const slot = this.slots.get(block.ptr);
    if (!slot) return;
    if (this.closed) {
      this.slots.delete(block.ptr);
      freeBlock(block);
      return;
    }
    const w = this.waiters.shift();
    if (w) {
      w.cleanup();
      w.resolve(RDMABuf.lease(this, slot));
    } else {
      this.free.push(slot);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) {
      w.cleanup();
      w.reject(new RDMANoBufError(`RDMABufPool(${this.bufSize} × ${this.count}) closed while waiting for a buffer`));
    }
    for (const s of this.free.splice(0)) {
      this.slots.delete(s.block.ptr);
      freeBlock(s.block);
    }
  }
}

const poolFinalizer = new FinalizationRegistry<PoolCore>((core) => core.close());

export interface PoolAllocateOptions {
  /** Give up after this long with RDMANoBufError (default: wait until a buffer is freed or the signal aborts). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * `count` buffers of `bufSize` bytes, created and registered on first use and reused after release().
 * 3FS's RDMABufPool (semaphore + freelist); a timed-out allocate is an RDMANoBufError instead of an invalid buffer.
 */
export class RDMABufPool {
  readonly #core: PoolCore;

  constructor(bufSize: number, count: number, options: RDMABufAllocateOptions = {}) {
    if (!Number.isSafeInteger(bufSize) || bufSize <= 0) throw new InvalidArgError(`RDMABufPool: bad buffer size ${bufSize}`);
    if (!Number.isSafeInteger(count) || count <= 0) throw new InvalidArgError(`RDMABufPool: bad buffer count ${count}`);
    this.#core = new PoolCore(bufSize, count, options.devices, options.access);
    poolFinalizer.register(this, this.#core, this);
  }

  get bufSize(): number {
    return this.#core.bufSize;
  }

  /** Maximum number of buffers. */
  get count(): number {
    return this.#core.count;
  }

  /** Buffers that can be handed out right now without waiting (free plus not yet created). */
  get available(): number {
    const c = this.#core;
    return c.closed ? 0 : c.free.length + (c.count - c.slots.size);
  }

  /** Buffers currently leased out. */
  get inUse(): number {
    return this.#core.slots.size - this.#core.free.length;
  }

  /** Callers waiting in allocate(). */
  get waiting(): number {
    return this.#core.waiters.length;
  }

  /** A buffer now, or null if all are in use. */
  tryAllocate(): RDMABuf | null {
    const c = this.#core;
    if (c.closed) throw new RDMANoBufError(`RDMABufPool(${c.bufSize} × ${c.count}) is closed`);
    const slot = c.waiters.length === 0 ? c.take() : null;
    return slot ? RDMABuf.lease(c, slot) : null;
  }

  /** A buffer, waiting (FIFO) for one to be released if all are in use. */
  allocate(options: PoolAllocateOptions = {}): Promise<RDMABuf> {
    const c = this.#core;
    const { timeoutMs, signal } = options;
    try {
      const b = this.tryAllocate();
      if (b) return Promise.resolve(b);
    } catch (e) {
      return Promise.reject(e);
    }
    if (signal?.aborted) return Promise.reject(aborted(c, signal));
    if (timeoutMs !== undefined && timeoutMs <= 0) return Promise.reject(timedOut(c, 0));
    return new Promise<RDMABuf>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let offAbort: Disposer | undefined;
      const w: Waiter = {
        resolve,
        reject,
        cleanup() {
          if (timer) clearTimeout(timer);
          offAbort?.();
        },
      };
      const remove = () => {
        w.cleanup();
        const i = c.waiters.indexOf(w);
        if (i >= 0) c.waiters.splice(i, 1);
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          remove();
          reject(timedOut(c, timeoutMs));
        }, timeoutMs);
      }
      // Not aborted yet (checked above), so this only registers.
      offAbort = onAbort(signal, () => {
        remove();
        reject(aborted(c, signal!));
      });
      c.waiters.push(w);
    });
  }

  /**
   * Frees the idle buffers and fails pending allocate() calls; buffers still leased are freed when released.
   * Idempotent.
   */
  close(): void {
    poolFinalizer.unregister(this);
    this.#core.close();
  }
}

function timedOut(c: PoolCore, ms: number): RDMANoBufError {
  return new RDMANoBufError(`no free RDMA buffer within ${ms} ms (pool of ${c.count} × ${c.bufSize} bytes, all in use)`, {
    cause: new TimeoutError(`allocate timed out after ${ms} ms`),
  });
}

function aborted(c: PoolCore, signal: AbortSignal): RDMANoBufError {
  return new RDMANoBufError(`RDMA buffer allocation aborted (pool of ${c.count} × ${c.bufSize} bytes)`, { cause: signal.reason });
}
