// Where a run happened and what else the machine was doing while it ran. Pure parsing and arithmetic are
// exported for the tests; the readers return null where /proc is not there (then nothing is judged).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';

export interface Machine {
  /** Short hash of hostname, CPU model and kernel: a run line read alone says where it came from. */
  id: string;
  hostname: string;
  kernel: string;
  cpus: number;
  cpuModel: string | null;
  totalMemMB: number;
  node: string;
}

export function machineId(hostname: string, cpuModel: string | null, kernel: string): string {
  return createHash('sha256')
    .update(`${hostname}\0${cpuModel ?? ''}\0${kernel}`)
    .digest('hex')
    .slice(0, 8);
}

export function machine(): Machine {
  const hostname = os.hostname();
  const kernel = os.release();
  const cpuModel = os.cpus()[0]?.model?.trim() ?? null;
  return {
    id: machineId(hostname, cpuModel, kernel),
    hostname,
    kernel,
    cpus: os.cpus().length,
    cpuModel,
    totalMemMB: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
  };
}

export function machineLine(m: Machine): string {
  return `machine: ${m.id} = ${m.hostname}, ${m.cpus} x ${m.cpuModel ?? 'unknown CPU'}, ${(m.totalMemMB / 1024).toFixed(1)} GiB, Linux ${m.kernel}, Node ${m.node}`;
}

/** Busy and total jiffies of the whole machine and of each core, from one read of /proc/stat. */
export interface CpuSample {
  busy: number;
  total: number;
  cores: { busy: number; total: number }[];
}

function fields(line: string): { busy: number; total: number } {
  // user nice system idle iowait irq softirq steal guest guest_nice: guest time is already inside user and
  // nice, so it is not added again; idle and iowait are the only not-busy columns.
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const at = (i: number) => (Number.isFinite(v[i]) ? v[i]! : 0);
  const busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
  return { busy, total: busy + at(3) + at(4) };
}

export function parseProcStat(text: string): CpuSample {
  let all: { busy: number; total: number } | undefined;
  const cores: { busy: number; total: number }[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('cpu ')) all = fields(line);
    else if (/^cpu\d+ /.test(line)) cores[Number(line.slice(3, line.indexOf(' ')))] = fields(line);
  }
  if (all === undefined) throw new Error('/proc/stat: no aggregate cpu line');
  return { ...all, cores: Array.from(cores, (c) => c ?? { busy: 0, total: 0 }) };
}

export function readCpuSample(): CpuSample | null {
  try {
    return parseProcStat(readFileSync('/proc/stat', 'utf8'));
  } catch {
    return null;
  }
}

/** utime + stime of one process in clock ticks (fields 14 and 15 of /proc/PID/stat), or null. */
export function parsePidStat(text: string): number | null {
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? utime + stime : null;
}

export function readPidTicks(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    return parsePidStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** /proc/stat counts in USER_HZ, which Linux fixes at 100 for user space on every architecture. */
export const TICKS_PER_SEC = 100;

export interface OtherCpu {
  /** Cores kept busy by anything but this run's processes, on average over the window (1 = one whole core). */
  otherCpu: number;
  /** Busy share of each core over the window, everything included (the children are pinned to some of them). */
  busyPerCore: number[];
}

/**
 * Other processes' CPU over a window: the machine's busy jiffies between two samples, less what the run's own
 * processes used over the same window (`oursTicks`, in the same clock ticks), over the window's length.
 * Jiffy accounting is sampled, so a quiet window can come out a little below zero; it is clamped at 0.
 */
export function otherCpu(before: CpuSample, after: CpuSample, oursTicks: number): OtherCpu {
  const elapsed = (after.total - before.total) / Math.max(1, before.cores.length);
  const busy = after.busy - before.busy;
  const cores = elapsed > 0 ? (busy - oursTicks) / elapsed : 0;
  const busyPerCore = before.cores.map((c, i) => {
    const a = after.cores[i];
    const t = a === undefined ? 0 : a.total - c.total;
    return t > 0 && a !== undefined ? round3((a.busy - c.busy) / t) : 0;
  });
  return { otherCpu: round3(Math.max(0, cores)), busyPerCore };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
