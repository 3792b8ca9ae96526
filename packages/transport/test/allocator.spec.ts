import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ALLOCATOR_TUNING, tuneAllocator } from '../src/index.js';

// The malloc settings are process-wide, so each scenario runs in a process of its own (fixtures/allocator-faults.mjs,
// against the built package): 1 MiB frames over a unix Transport pair, page faults counted per frame.
const dir = fileURLToPath(new URL('.', import.meta.url));

interface Outcome {
  before: { tuned: boolean; reason?: string };
  after: { tuned: boolean; reason?: string; settings?: unknown };
  faultsPerFrame: number;
}

function run(env: Record<string, string> = {}): Promise<Outcome> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('MALLOC_') && k !== 'GLIBC_TUNABLES' && k !== 'FFNET_MALLOC_TUNING'),
  );
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['fixtures/allocator-faults.mjs', '600'], { cwd: dir, timeout: 90_000, env: { ...clean, ...env } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`allocator scenario failed: ${error.message}; stderr: ${stderr}`));
      else resolve(JSON.parse(stdout.trim()) as Outcome);
    });
  });
}

describe('malloc tuning (allocator.ts)', () => {
  it('the first Transport keeps freed memory in the process: far fewer page faults per 1 MiB frame than glibc alone', async () => {
    const tuned = await run();
    const off = await run({ FFNET_MALLOC_TUNING: 'off' });
    expect(tuned.before).toEqual({ tuned: false, reason: 'not yet: no Transport has been created' });
    expect(tuned.after).toEqual({ tuned: true, settings: { ...DEFAULT_ALLOCATOR_TUNING } });
    expect(off.after).toEqual({ tuned: false, reason: 'FFNET_MALLOC_TUNING=off' });
    // Measured here: ~2-3 faults per frame tuned, ~30-50 with glibc's dynamic thresholds (which trim the heap
    // each time the collector frees a batch of bodies).
    expect(tuned.faultsPerFrame * 4).toBeLessThan(off.faultsPerFrame);
  });

  it('leaves malloc alone when the environment has its own settings, and says which', async () => {
    const own = await run({ MALLOC_TOP_PAD_: '1048576' });
    expect(own.after).toEqual({ tuned: false, reason: 'the environment sets MALLOC_TOP_PAD_' });
    const tunables = await run({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=1048576' });
    expect(tunables.after.tuned).toBe(false);
    expect(tunables.after.reason).toMatch(/GLIBC_TUNABLES/);
  });

  it('refuses settings glibc would not take, before touching anything', () => {
    expect(() => tuneAllocator({ mmapThresholdBytes: 64 * 1024 * 1024 })).toThrow(RangeError);
    expect(() => tuneAllocator({ trimThresholdBytes: -1 })).toThrow(/trimThresholdBytes/);
    expect(() => tuneAllocator({ topPadBytes: 1.5 })).toThrow(RangeError);
  });

  it('tuneAllocator(false) is recorded before any Transport; explicit settings then still apply', () => {
    // This worker's own process: false first, then an explicit call with settings.
    expect(tuneAllocator(false)).toEqual({ tuned: false, reason: 'turned off by tuneAllocator(false)' });
    const applied = tuneAllocator({ topPadBytes: 8 * 1024 * 1024 });
    expect(applied).toEqual({ tuned: true, settings: { ...DEFAULT_ALLOCATOR_TUNING, topPadBytes: 8 * 1024 * 1024 } });
    // Once applied, false cannot undo it and says so by leaving the state as it is.
    expect(tuneAllocator(false)).toBe(applied);
  });
});
