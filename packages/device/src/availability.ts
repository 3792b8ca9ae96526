import { errnoText, ibv, koffi, tryIbv } from './native.js';

const ENOSYS = 38;

export type VerbsUnavailableReason = 'no-library' | 'no-kernel-support' | 'no-devices';

export interface VerbsAvailability {
  /** libibverbs loaded and at least one device is listed. */
  available: boolean;
  /** Number of verbs devices `ibv_get_device_list` returned. */
  devices: number;
  /**
   * Why not, when unavailable:
   * - `no-library`: koffi's native binary or libibverbs.so.1 could not be loaded (install rdma-core / libibverbs1);
   * - `no-kernel-support`: the library loaded but the kernel has no uverbs support (ibv_get_device_list → ENOSYS);
   * - `no-devices`: verbs works but no device exists (no HCA, no rxe/siw link configured).
   */
  reason?: VerbsUnavailableReason;
  /** One human-readable sentence: the error behind the reason, or the device names. */
  detail: string;
}

/** Device names from ibv_get_device_list, or the failure (with errno) when the list itself is unavailable. */
export function listDeviceNames(): { names: string[] } | { errno: number } {
  const v = ibv();
  const k = koffi();
  const n = [0];
  k.errno(0);
  const list = v.get_device_list(n) as bigint | null;
  if (list === null) return { errno: k.errno() };
  try {
    const names: string[] = [];
    for (let i = 0; i < n[0]!; i++) names.push(String(v.get_device_name(k.decode(list, i * 8, 'void *'))));
    return { names };
  } finally {
    v.free_device_list(list);
  }
}

/** Whether RDMA verbs can be used here, and if not, why. Never throws; re-checks devices on every call. */
export function verbsAvailable(): VerbsAvailability {
  const lib = tryIbv();
  if ('error' in lib) {
    const what = lib.kind === 'koffi' ? 'the koffi FFI module could not be loaded' : 'libibverbs.so.1 could not be loaded';
    return { available: false, devices: 0, reason: 'no-library', detail: `${what}: ${lib.error.message}` };
  }
  try {
    const r = listDeviceNames();
    if ('errno' in r) {
      if (r.errno === ENOSYS || r.errno === 0) {
        return {
          available: false,
          devices: 0,
          reason: 'no-kernel-support',
          detail: `ibv_get_device_list failed with ${errnoText(r.errno || ENOSYS)}: the kernel has no RDMA (uverbs) support`,
        };
      }
      return { available: false, devices: 0, reason: 'no-devices', detail: `ibv_get_device_list failed with ${errnoText(r.errno)}` };
    }
    if (r.names.length === 0) {
      return { available: false, devices: 0, reason: 'no-devices', detail: 'libibverbs and kernel support are present but no RDMA device exists' };
    }
    return { available: true, devices: r.names.length, detail: `RDMA devices: ${r.names.join(', ')}` };
  } catch (e) {
    return { available: false, devices: 0, reason: 'no-library', detail: `calling libibverbs failed: ${(e as Error).message}` };
  }
}
