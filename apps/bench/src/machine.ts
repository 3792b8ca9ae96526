// Where a run happened and what else the machine was doing while it ran. Pure parsing and arithmetic are
// exported for the tests; the readers return null where /proc is not there (then nothing is judged).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
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

/**
 * The commit checked out at `cwd` (short unless `full`), with "+uncommitted" when tracked files differ from it: a
 * results file then does not pass off a working tree's figures as the commit's. Null outside a git checkout.
 */
export function gitCommit(cwd?: string, full = false): string | null {
  const git = (args: string[]): string => execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  let commit: string;
  try {
    commit = git(full ? ['rev-parse', 'HEAD'] : ['rev-parse', '--short', 'HEAD']);
  } catch {
    return null;
  }
  try {
    return git(['status', '--porcelain', '--untracked-files=no']) === '' ? commit : `${commit}+uncommitted`;
  } catch {
    return commit;
  }
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
  /** Ticks the hypervisor gave to someone else (part of busy). */
  steal: number;
  cores: { busy: number; total: number; steal: number }[];
}

/** Cores' worth of steal between two samples (a neighbour VM on the host counts as other work). */
export function stealCpu(before: CpuSample, after: CpuSample): number {
  const elapsed = (after.total - before.total) / Math.max(1, before.cores.length);
  return elapsed > 0 ? round3(Math.max(0, after.steal - before.steal) / elapsed) : 0;
}

function fields(line: string): { busy: number; total: number; steal: number } {
  // user nice system idle iowait irq softirq steal guest guest_nice: guest time is already inside user and
  // nice, so it is not added again; idle and iowait are the only not-busy columns.
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const at = (i: number) => (Number.isFinite(v[i]) ? v[i]! : 0);
  const busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
  return { busy, total: busy + at(3) + at(4), steal: at(7) };
}

export function parseProcStat(text: string): CpuSample {
  let all: { busy: number; total: number; steal: number } | undefined;
  const cores: { busy: number; total: number; steal: number }[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('cpu ')) all = fields(line);
    else if (/^cpu\d+ /.test(line)) cores[Number(line.slice(3, line.indexOf(' ')))] = fields(line);
  }
  if (all === undefined) throw new Error('/proc/stat: no aggregate cpu line');
  return { ...all, cores: Array.from(cores, (c) => c ?? { busy: 0, total: 0, steal: 0 }) };
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
  /**
   * Cores kept busy by anything but this run's processes, on average over the window (1 = one whole core): from
   * the other tasks' own times (otherTaskCpu) when /proc lists them, else from the machine-wide columns.
   */
  otherCpu: number;
  /** The machine-wide estimate (/proc/stat busy less the run's processes), for reference: see readTaskTicks. */
  machineOtherCpu?: number;
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

/**
 * utime + stime of every task on the machine but `exclude`, by pid, from /proc/PID/stat; null without /proc.
 * Per-task times are what the scheduler measured for each task, so they agree with the children's own figures.
 * The machine-wide /proc/stat columns do not: they are sampled at the tick, and a core that sleeps and wakes tens
 * of thousands of times a second (W1's ping-pong) gets its ticks mostly while awake, which reads as up to a whole
 * core of phantom busy time. Kernel threads (ksoftirqd, kworkers) are tasks and are counted; interrupt time is not.
 */
export function readTaskTicks(exclude: ReadonlySet<number>): Map<number, number> | null {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return null;
  }
  const out = new Map<number, number>();
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(name);
    if (exclude.has(pid)) continue;
    const t = readPidTicks(pid);
    // A task that exited between readdir and read is simply not there.
    if (t !== null) out.set(pid, t);
  }
  return out;
}

/**
 * Cores other tasks kept busy between two readTaskTicks samples `seconds` apart. A task only in the second sample
 * started inside the window and counts whole; one only in the first ended inside it and its last part is lost, as
 * is a task that both started and ended inside the window (a fork of a few ms: too small to matter here).
 */
export function otherTaskCpu(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>, seconds: number): number {
  if (!(seconds > 0)) return 0;
  let ticks = 0;
  for (const [pid, t1] of after) {
    const t0 = before.get(pid);
    ticks += t0 === undefined ? t1 : Math.max(0, t1 - t0);
  }
  return round3(ticks / TICKS_PER_SEC / seconds);
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
