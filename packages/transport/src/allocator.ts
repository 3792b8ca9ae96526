// glibc malloc tuning for processes that receive large frames. A large frame's body is a fresh allocation of its full
// size (FrameDecoder), freed when the garbage collector drops it, many at a time. glibc then finds a large free
// block at the top of its heap and gives it back to the kernel (trimming), so the next bodies land on pages the
// kernel must fault in and zero again, one 4 KiB page at a time. On the VM this was measured on, W4's receiver took
// 5.8-24 faults per 1 MiB response without the tuning below and 0.1-0.7 with it, at 0.63-0.64x and 1.5x raw-net's
// throughput (apps/bench README, "What mattered"). Keeping freed memory in the process (bounded by the trim
// threshold) removes them.
//
// mallopt is process-wide, so it is done once, on the first Transport, and never when the application has chosen
// its own malloc settings (MALLOC_*_ variables or glibc.malloc tunables) or opted out with tuneAllocator(false) or
// FFNET_MALLOC_TUNING=off. Where it cannot be done (not glibc, no koffi) nothing changes and allocatorState()
// says why.
import { libc } from './libc.js';

export interface AllocatorTuning {
  /** Free memory at the top of the heap kept instead of returned to the kernel (M_TRIM_THRESHOLD; default 64 MiB). */
  trimThresholdBytes: number;
  /** Extra room the heap grows by, so a large body does not need a fresh mapping (M_TOP_PAD; default 16 MiB). */
  topPadBytes: number;
  /**
   * Allocations from this size on get a mapping of their own, returned to the kernel when freed (M_MMAP_THRESHOLD;
   * default 32 MiB, glibc's largest dynamic value: setting any of these turns glibc's own adjustment off).
   */
  mmapThresholdBytes: number;
}

export const DEFAULT_ALLOCATOR_TUNING: Readonly<AllocatorTuning> = Object.freeze({
  trimThresholdBytes: 64 * 1024 * 1024,
  topPadBytes: 16 * 1024 * 1024,
  mmapThresholdBytes: 32 * 1024 * 1024,
});

export interface AllocatorState {
  /** Whether this process's malloc settings are ffnet's (`settings`). */
  tuned: boolean;
  settings?: Readonly<AllocatorTuning>;
  /** Why the settings were not applied, or not yet decided ('not yet: no Transport has been created'). */
  reason?: string;
}

// glibc's mallopt parameter numbers (malloc.h).
const M_TRIM_THRESHOLD = -1;
const M_TOP_PAD = -2;
const M_MMAP_THRESHOLD = -3;
/** glibc caps M_MMAP_THRESHOLD at HEAP_MAX_SIZE / 2: 32 MiB on 64-bit. */
const MAX_MMAP_THRESHOLD = 32 * 1024 * 1024;

let state: AllocatorState = { tuned: false, reason: 'not yet: no Transport has been created' };
let decided = false;

/** What the application's environment already says about malloc, which ffnet then leaves alone. */
function environmentChoice(env: NodeJS.ProcessEnv): string | undefined {
  const own = ['MALLOC_TRIM_THRESHOLD_', 'MALLOC_TOP_PAD_', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_MMAP_MAX_'].filter((k) => env[k] !== undefined);
  if (own.length > 0) return `the environment sets ${own.join(', ')}`;
  if (env.GLIBC_TUNABLES?.includes('glibc.malloc.') === true) return 'the environment sets glibc.malloc tunables (GLIBC_TUNABLES)';
  const flag = env.FFNET_MALLOC_TUNING;
  if (flag !== undefined && ['off', '0', 'false', 'no'].includes(flag.toLowerCase())) return `FFNET_MALLOC_TUNING=${flag}`;
  return undefined;
}

function checkSettings(s: AllocatorTuning): void {
  for (const [k, v] of Object.entries(s)) {
    if (!Number.isSafeInteger(v) || v < 0 || v > 0x7fffffff) throw new RangeError(`tuneAllocator: ${k} must be an integer in 0..2^31-1, got ${v}`);
  }
  if (s.mmapThresholdBytes > MAX_MMAP_THRESHOLD) throw new RangeError(`tuneAllocator: mmapThresholdBytes must be at most ${MAX_MMAP_THRESHOLD} (glibc's cap)`);
}

/**
 * Applies ffnet's malloc settings to this process now (`settings` overriding the defaults), or with `false`
 * records that ffnet must not apply them. The first Transport applies the defaults unless the environment has
 * its own malloc settings, so an application that wants glibc's behaviour calls `tuneAllocator(false)` before its
 * first Client or Server, or sets FFNET_MALLOC_TUNING=off; `false` cannot undo settings already applied. An explicit
 * call with settings always applies them. Throws RangeError on a setting glibc would refuse.
 */
export function tuneAllocator(settings?: Partial<AllocatorTuning> | false): AllocatorState {
  if (settings === false) {
    decided = true;
    // Settings already applied stay: glibc has no way back to its dynamic thresholds.
    if (!state.tuned) state = { tuned: false, reason: 'turned off by tuneAllocator(false)' };
    return state;
  }
  const s: AllocatorTuning = { ...DEFAULT_ALLOCATOR_TUNING, ...settings };
  checkSettings(s);
  decided = true;
  state = apply(s);
  return state;
}

/** Called by every Transport: the first one decides, from the environment, whether ffnet's defaults apply. */
export function autoTuneAllocator(): void {
  if (decided) return;
  decided = true;
  const why = environmentChoice(process.env);
  state = why === undefined ? apply(DEFAULT_ALLOCATOR_TUNING) : { tuned: false, reason: why };
}

/** Whether ffnet's malloc settings are in force, and which, or why not. */
export function allocatorState(): AllocatorState {
  return state;
}

function apply(s: AllocatorTuning): AllocatorState {
  const c = libc();
  if (typeof c === 'string') return { tuned: false, reason: c };
  let mallopt: (param: number, value: number) => number;
  try {
    // gnu_get_libc_version exists only in glibc: musl's mallopt accepts and ignores everything.
    c.lib.func('const char *gnu_get_libc_version()');
    mallopt = c.lib.func('int mallopt(int param, int value)') as (param: number, value: number) => number;
  } catch {
    return { tuned: false, reason: 'the C library is not glibc' };
  }
  // Order matters: M_MMAP_THRESHOLD first, so no allocation in between takes the dynamic path it turns off.
  const failed: string[] = [];
  if (mallopt(M_MMAP_THRESHOLD, s.mmapThresholdBytes) !== 1) failed.push('M_MMAP_THRESHOLD');
  if (mallopt(M_TRIM_THRESHOLD, s.trimThresholdBytes) !== 1) failed.push('M_TRIM_THRESHOLD');
  if (mallopt(M_TOP_PAD, s.topPadBytes) !== 1) failed.push('M_TOP_PAD');
  if (failed.length > 0) return { tuned: false, reason: `glibc refused ${failed.join(', ')}` };
  return { tuned: true, settings: Object.freeze({ ...s }) };
}
