/**
 * Page-aligned native blocks and their registrations. A block is plain memory from posix_memalign plus one
 * MemoryRegion per device it was registered on. The rule everything here keeps: memory is freed only after
 * every MR over it has been deregistered; if a deregistration fails, the block is leaked on purpose, because
 * the device may still DMA into it.
 */
import { IBInitFailedError, InvalidArgError } from '@ffnet/common';
import { Access } from './layout.js';
import { errnoText, koffi, libc, tryKoffi } from './native.js';
import type { MemoryRegion, ProtectionDomain } from './verbs.js';

/**
 * LOCAL_WRITE | MW_BIND | RELAXED_ORDERING: RDMABuf memory carries no remote rights of its own. A peer reaches it
 * only through a type-2 memory window that one connection binds for one call (IBSocket.expose), so an rkey is
 * good on that queue pair only, and only until the window is invalidated when the call settles.
 */
export const RDMABUF_ACCESS = Access.LOCAL_WRITE | Access.MW_BIND | Access.RELAXED_ORDERING;

/**
 * What 3FS registers RDMABuf memory with (plus MW_BIND): remote read and write on the MR itself, so its rkey works
 * from every QP on the device's protection domain, for as long as the memory stays registered (pooled buffers:
 * across calls). Unsafe against a hostile peer; an explicit opt-out (`RDMABuf.allocate(n, { access })`) only.
 */
export const RDMABUF_DEVICE_SCOPE_ACCESS = RDMABUF_ACCESS | Access.REMOTE_WRITE | Access.REMOTE_READ;

/** A device that memory can be registered on (IBDevice implements it). */
export interface MrOwner {
  readonly id: number;
  readonly name: string;
  readonly pd: ProtectionDomain;
  /** MRs registered on this device and not yet deregistered: the device deregisters them when it closes. */
  readonly liveMrs: Set<MemoryRegion>;
}

export interface BlockMr {
  readonly devId: number;
  readonly mr: MemoryRegion;
  readonly owner: MrOwner;
}

/** What a FinalizationRegistry may hold for a block: addresses and handles only, never a JS view of the memory. */
export interface NativeBlock {
  readonly ptr: bigint;
  readonly size: number;
  readonly mrs: readonly BlockMr[];
  freed: boolean;
  /**
   * Set only when koffi itself cannot load: the memory is then a JS ArrayBuffer and `ptr` a synthetic,
   * page-aligned, process-unique address that no native code ever sees (there is nothing to register on).
   */
  readonly js?: ArrayBuffer;
}

let nextSyntheticAddress = 0x7e00_0000_0000n;

let pageSize = 0;

export function getPageSize(): number {
  if (pageSize === 0) {
    // sysconf(_SC_PAGESIZE); 4096 on every x86-64 Linux, but asking costs one call per process.
    pageSize = Number(koffi().load('libc.so.6').func('long sysconf(int name)')(30)) || 4096;
  }
  return pageSize;
}

/** The block's bytes as an ArrayBuffer (an external one over the native memory: no copy). */
export function blockMemory(block: NativeBlock): ArrayBuffer {
  return block.js ?? koffi().view(block.ptr, block.size);
}

/** Allocates `size` bytes aligned to a page and registers them on every device in `owners`. */
export function allocBlock(size: number, owners: readonly MrOwner[], access = RDMABUF_ACCESS): NativeBlock {
  if (!Number.isSafeInteger(size) || size <= 0) throw new InvalidArgError(`RDMA buffer size must be a positive integer, got ${size}`);
  if (owners.length === 0 && 'error' in tryKoffi()) {
    const ptr = nextSyntheticAddress;
    nextSyntheticAddress += BigInt(Math.ceil(size / 4096) * 4096);
    return { ptr, size, mrs: [], freed: false, js: new ArrayBuffer(size) };
  }
  const c = libc();
  const out: [bigint | null] = [null];
  const rc = c.posix_memalign(out, getPageSize(), size) as number;
  if (rc !== 0 || out[0] === null) throw new InvalidArgError(`cannot allocate ${size} bytes of page-aligned memory: ${errnoText(rc)}`);
  const ptr = out[0];
  const mrs: BlockMr[] = [];
  try {
    for (const owner of owners) {
      const mr = owner.pd.registerMemory(ptr, size, access);
      owner.liveMrs.add(mr);
      mrs.push({ devId: owner.id, mr, owner });
    }
  } catch (e) {
    const block: NativeBlock = { ptr, size, mrs, freed: false };
    freeBlock(block);
    const hint = ' (registered memory is pinned: check `ulimit -l` / RLIMIT_MEMLOCK)';
    throw e instanceof IBInitFailedError ? new IBInitFailedError(e.message + hint, { cause: e }) : e;
  }
  return { ptr, size, mrs, freed: false };
}

/**
 * Deregisters every MR of the block, then frees it. Returns false, leaving the memory allocated, when any
 * deregistration failed. Idempotent.
 */
export function freeBlock(block: NativeBlock): boolean {
  if (block.freed) return true;
  let ok = true;
  for (const { mr, owner } of block.mrs) {
    if (mr.deregister()) owner.liveMrs.delete(mr);
    else ok = false;
  }
  if (!ok) return false;
  block.freed = true;
  if (!block.js) libc().free(block.ptr);
  return true;
}

/**
 * The safety net for blocks whose owner was collected without release(). The target is whatever keeps the
 * memory reachable from JS (see buf.ts); the held value is the block record, so the registry never keeps the
 * memory's views alive and the callback still knows what to deregister and free.
 */
export const blockFinalizer = new FinalizationRegistry<NativeBlock>((block) => {
  freeBlock(block);
});

let defaultOwners: () => readonly MrOwner[] = () => [];

/** @internal set by the process-wide DeviceManager: the devices RDMABuf registers on by default. */
export function setDefaultOwners(get: () => readonly MrOwner[]): void {
  defaultOwners = get;
}

export function getDefaultOwners(): readonly MrOwner[] {
  return defaultOwners();
}
