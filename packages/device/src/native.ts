/**
 * Lazy native loading. Nothing here runs at import time: koffi, libc and libibverbs are loaded on first use,
 * and every failure is remembered and reported as data, so `import '@ffnet/device'` never throws on a machine
 * without koffi's prebuilt binary, without rdma-core, or without kernel RDMA support.
 */
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import type * as KoffiModule from 'koffi';

export type Koffi = typeof KoffiModule;
type Fn = ReturnType<KoffiModule.LibraryHandle['func']>;

let koffiState: { koffi: Koffi } | { error: Error } | undefined;

/** koffi, or the reason it could not be loaded. */
export function tryKoffi(): { koffi: Koffi } | { error: Error } {
  if (!koffiState) {
    try {
      koffiState = { koffi: createRequire(import.meta.url)('koffi') as Koffi };
    } catch (e) {
      koffiState = { error: e instanceof Error ? e : new Error(String(e)) };
    }
  }
  return koffiState;
}

export function koffi(): Koffi {
  const s = tryKoffi();
  if ('error' in s) throw s.error;
  return s.koffi;
}

export interface Libc {
  posix_memalign: Fn;
  free: Fn;
  fcntl: Fn;
}

let libcState: Libc | undefined;

export function libc(): Libc {
  if (!libcState) {
    const k = koffi();
    const lib = k.load('libc.so.6');
    libcState = {
      posix_memalign: lib.func('int posix_memalign(_Out_ void **memptr, size_t alignment, size_t size)'),
      free: lib.func('void free(void *ptr)'),
      fcntl: lib.func('int fcntl(int fd, int cmd, ...)'),
    };
  }
  return libcState;
}

/** The exported libibverbs functions we call directly (the inline ones go through the ops table, see verbs.ts). */
export interface Ibv {
  get_device_list: Fn;
  free_device_list: Fn;
  get_device_name: Fn;
  open_device: Fn;
  close_device: Fn;
  query_device: Fn;
  query_port: Fn;
  query_gid_ex: Fn;
  alloc_pd: Fn;
  dealloc_pd: Fn;
  reg_mr_iova2: Fn;
  dereg_mr: Fn;
  create_comp_channel: Fn;
  destroy_comp_channel: Fn;
  create_cq: Fn;
  destroy_cq: Fn;
  get_cq_event: Fn;
  ack_cq_events: Fn;
  create_qp: Fn;
  modify_qp: Fn;
  query_qp: Fn;
  destroy_qp: Fn;
  get_async_event: Fn;
  ack_async_event: Fn;
  fork_init: Fn;
  wc_status_str: Fn;
  event_type_str: Fn;
}

let ibvState: { ibv: Ibv } | { error: Error; kind: 'koffi' | 'library' } | undefined;

/** libibverbs.so.1, or why it is not usable (koffi missing, or the library / a symbol missing). */
export function tryIbv(): { ibv: Ibv } | { error: Error; kind: 'koffi' | 'library' } {
  if (ibvState) return ibvState;
  const k = tryKoffi();
  if ('error' in k) {
    ibvState = { error: k.error, kind: 'koffi' };
    return ibvState;
  }
  try {
    const lib = k.koffi.load('libibverbs.so.1');
    const f = (d: string) => lib.func(d);
    // Handles are declared `void *` (BigInt in koffi 3); struct arguments are caller-owned byte blocks.
    ibvState = {
      ibv: {
        get_device_list: f('void *ibv_get_device_list(_Out_ int *num_devices)'),
        free_device_list: f('void ibv_free_device_list(void *list)'),
        get_device_name: f('const char *ibv_get_device_name(void *device)'),
        open_device: f('void *ibv_open_device(void *device)'),
        close_device: f('int ibv_close_device(void *context)'),
        query_device: f('int ibv_query_device(void *context, void *device_attr)'),
        query_port: f('int ibv_query_port(void *context, uint8_t port_num, void *port_attr)'),
        query_gid_ex: f('int _ibv_query_gid_ex(void *context, uint32_t port_num, uint32_t gid_index, void *entry, uint32_t flags, size_t entry_size)'),
        alloc_pd: f('void *ibv_alloc_pd(void *context)'),
        dealloc_pd: f('int ibv_dealloc_pd(void *pd)'),
        reg_mr_iova2: f('void *ibv_reg_mr_iova2(void *pd, void *addr, size_t length, uint64_t iova, unsigned int access)'),
        dereg_mr: f('int ibv_dereg_mr(void *mr)'),
        create_comp_channel: f('void *ibv_create_comp_channel(void *context)'),
        destroy_comp_channel: f('int ibv_destroy_comp_channel(void *channel)'),
        create_cq: f('void *ibv_create_cq(void *context, int cqe, void *cq_context, void *channel, int comp_vector)'),
        destroy_cq: f('int ibv_destroy_cq(void *cq)'),
        get_cq_event: f('int ibv_get_cq_event(void *channel, void *cq_out, void *cq_context_out)'),
        ack_cq_events: f('void ibv_ack_cq_events(void *cq, unsigned int nevents)'),
        create_qp: f('void *ibv_create_qp(void *pd, void *qp_init_attr)'),
        modify_qp: f('int ibv_modify_qp(void *qp, void *attr, int attr_mask)'),
        query_qp: f('int ibv_query_qp(void *qp, void *attr, int attr_mask, void *init_attr)'),
        destroy_qp: f('int ibv_destroy_qp(void *qp)'),
        get_async_event: f('int ibv_get_async_event(void *context, void *event)'),
        ack_async_event: f('void ibv_ack_async_event(void *event)'),
        fork_init: f('int ibv_fork_init(void)'),
        wc_status_str: f('const char *ibv_wc_status_str(int status)'),
        event_type_str: f('const char *ibv_event_type_str(int event)'),
      },
    };
  } catch (e) {
    ibvState = { error: e instanceof Error ? e : new Error(String(e)), kind: 'library' };
  }
  return ibvState;
}

export function ibv(): Ibv {
  const s = tryIbv();
  if ('error' in s) throw s.error;
  return s.ibv;
}

/** errno of the last koffi call (valid right after it). */
export function lastErrno(): number {
  return koffi().errno();
}

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(osConstants.errno)) if (!errnoNames.has(value)) errnoNames.set(value, name);

/** `"ENOSYS (38)"`: verbs return errno values directly (post_*) or through errno (everything else). */
export function errnoText(code: number): string {
  return `${errnoNames.get(code) ?? 'errno'} (${code})`;
}

/** Native scratch memory that lives as long as the process: small blocks for out-parameters and attr structs. */
export interface Scratch {
  readonly ptr: bigint;
  readonly view: DataView;
  readonly bytes: Buffer;
  /** Frees the memory; the views must not be used afterwards. */
  free(): void;
}

/**
 * Zeroed native memory (calloc) with DataView/Buffer views over it, for attr structs, out-parameters and
 * preallocated work-request/completion arrays. Native, so its address never moves and it can be handed to C.
 */
export function allocScratch(size: number): Scratch {
  const k = koffi();
  const ptr = k.alloc('uint8_t', size) as unknown as bigint;
  const ab = k.view(ptr, size);
  let freed = false;
  return {
    ptr,
    view: new DataView(ab),
    bytes: Buffer.from(ab),
    free() {
      if (!freed) {
        freed = true;
        k.free(ptr as never);
      }
    },
  };
}
