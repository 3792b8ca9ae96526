import { readdirSync, readFileSync } from 'node:fs';

export interface ProcMemory {
  /** Resident set now, and its high-water mark since the process started (the kernel's own peak), bytes. */
  rss: number;
  hwm: number;
}

/** VmRSS and VmHWM of `pid` from /proc/<pid>/status; undefined once the process is gone. */
export function procMemory(pid: number): ProcMemory | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  return { rss: statusKiB(text, 'VmRSS') * 1024, hwm: statusKiB(text, 'VmHWM') * 1024 };
}

/** A `Name:   1234 kB` line of /proc/<pid>/status, in KiB (0 when absent). */
export function statusKiB(status: string, name: string): number {
  const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
  return m ? Number(m[1]) : 0;
}

/** Open fds of `pid` (entries of /proc/<pid>/fd); undefined once the process is gone. */
export function fdCount(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

/** The q-quantile (0..1) of `sorted` (ascending), nearest rank; 0 for an empty list. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}
