// Which runs a table may be built from. A run is contaminated when other processes kept more than
// `--max-other-cpu` cores busy during its measuring window, or when a pinned core ran slower than usual
// (core-probe.ts): more than `--max-slowdown` times its row's median window (or, when set, more than
// `--max-core-slowdown` times the core's best); it is rerun, kept in the results and left out of the medians. A
// row without a clean majority of repetitions is untrusted as a whole.
import type { ContaminationReason, RunResult } from './run.js';
import { median } from './stats.js';

/**
 * Cores of other work above which a window is contaminated. Measured on this kind of machine (2 cores,
 * children pinned one per core): an idle machine shows 0.00-0.03 cores of other work per window (kernel
 * threads, the VM agent); one busy neighbour process shows 0.5-1.0; 0.15 sits well above the idle noise
 * and below a neighbour that takes a tenth of one child's core (README, "Trusting a run").
 */
export const DEFAULT_MAX_OTHER_CPU = 0.15;
/**
 * Core slowdown against the row's median window (`rowSlowdown`) above which a window is contaminated. It was chosen
 * when windows were judged against the core's best sample (core-probe.ts), on an idle 2-core VM: 100 pairs of 3 s
 * windows on both cores read medians of 1.01-1.16 (typically 1.06-1.08: the reference is the single fastest
 * sample) outside one 40 s stretch at 1.17-1.31 on one core; the episodes this is for read 1.7-1.9 (a spin loop
 * at ~3.1 against 1.66 ns an iteration). 1.15 would reject about one quiet window in ten; 1.2 keeps them and sits
 * far below an episode (README, "Trusting a run").
 */
export const DEFAULT_MAX_SLOWDOWN = 1.2;
/**
 * Core slowdown against the core's best sample (`coreSlowdown`) above which a window is contaminated whatever its
 * row did; off by default. A workload slows the probe on its own core, and by as much as the episodes the probe is
 * for (1.7-1.9): in `results/reference-issue15-s24-full.json` (machine 9523ae91) every peer's W4 client core,
 * raw-net's included, read 1.47-1.85 against its idle best.
 * No single figure tells a workload's own load from a neighbour's; the row does (RowSpeeds).
 */
export const DEFAULT_MAX_CORE_SLOWDOWN: number | null = null;
export const DEFAULT_RETRIES = 2;

/** What a run is judged against; null judges nothing by that measure (`off`). */
export interface Limits {
  maxOtherCpu: number | null;
  /** Judges `rowSlowdown`. */
  maxSlowdown: number | null;
  /** Judges `coreSlowdown`; absent is `off`. */
  maxCoreSlowdown?: number | null;
}

/** The slower side of a per-side reading, or undefined without one. */
function worse(s: { server: number; client: number } | undefined): number | undefined {
  return s === undefined ? undefined : Math.max(s.server, s.client);
}

/** The slower of a run's two pinned cores, or undefined when the run was not probed. */
export function worstSlowdown(r: RunResult): number | undefined {
  return worse(r.coreSlowdown);
}

/** The (workload, transport, peer) a run repeats: its row of the table. */
function rowOf(r: RunResult): string {
  return `${r.workload}|${r.transport}|${r.peer}`;
}

const ratio = (x: number, ref: number) => Math.round((x / ref) * 100) / 100;

/**
 * Each row's probe readings per side. A window is judged against the median window of its own row, which put the
 * same load on the same cores: what a workload does to the probe on its own core is then not counted against it,
 * and a window that ran slower than its row's others still is. The median, not the best: a row's windows spread
 * by themselves (one W4 client read 1.13 where its row's others read 1.38-1.47, reference-issue15-s24-full-4.json),
 * and against its single fastest window every other one looked slow.
 */
export class RowSpeeds {
  readonly #seen = new Map<string, { server: number[]; client: number[] }>();

  /** Takes `r`'s probe reading into its row and sets `r.rowSlowdown` against the row's median so far (`r` included). */
  see(r: RunResult): void {
    const s = r.coreSlowdown;
    if (s === undefined) return;
    const key = rowOf(r);
    let row = this.#seen.get(key);
    if (row === undefined) {
      row = { server: [], client: [] };
      this.#seen.set(key, row);
    }
    row.server.push(s.server);
    row.client.push(s.client);
    r.rowSlowdown = against(s, row);
  }

  /**
   * Judges every run again against its row's median over the whole bench, now that later windows are in: a row's
   * first window had only itself to go by. Returns the runs whose verdict changed (they are not rerun).
   */
  rejudge(runs: readonly RunResult[], limits: Limits): RunResult[] {
    const changed: RunResult[] = [];
    for (const r of runs) {
      const row = this.#seen.get(rowOf(r));
      if (r.coreSlowdown === undefined || row === undefined) continue;
      const was = r.contaminated;
      r.rowSlowdown = against(r.coreSlowdown, row);
      delete r.contaminated;
      delete r.contaminatedBy;
      judge(r, limits);
      if (r.contaminated !== was) changed.push(r);
    }
    return changed;
  }
}

function against(s: { server: number; client: number }, row: { server: number[]; client: number[] }): { server: number; client: number } {
  return { server: ratio(s.server, median(row.server)), client: ratio(s.client, median(row.client)) };
}

/**
 * Marks `r` contaminated (with the reasons) or clean; a run with neither measure to judge by (no other CPU read, not
 * probed, or both limits off) is neither (no field).
 */
export function judge(r: RunResult, limits: Limits): RunResult {
  const by: ContaminationReason[] = [];
  let judged = false;
  if (r.otherCpu !== undefined && limits.maxOtherCpu !== null) {
    judged = true;
    if (r.otherCpu > limits.maxOtherCpu) by.push('otherCpu');
  }
  let slowCore = false;
  const rowSlow = worse(r.rowSlowdown);
  if (rowSlow !== undefined && limits.maxSlowdown !== null) {
    judged = true;
    slowCore = rowSlow > limits.maxSlowdown;
  }
  const coreSlow = worstSlowdown(r);
  if (coreSlow !== undefined && limits.maxCoreSlowdown !== undefined && limits.maxCoreSlowdown !== null) {
    judged = true;
    slowCore ||= coreSlow > limits.maxCoreSlowdown;
  }
  if (slowCore) by.push('slowCore');
  if (judged) r.contaminated = by.length > 0;
  if (by.length > 0) r.contaminatedBy = by;
  return r;
}

/** Whether a finished attempt is tried again: contaminated, and retries left (attempt 1 is not a retry). */
export function shouldRerun(r: RunResult, retries: number): boolean {
  return r.contaminated === true && r.attempt <= retries;
}

export interface Counted {
  /** One run per repetition: its clean attempt, or when none stayed clean its last attempt. */
  runs: RunResult[];
  /** Repetitions that had a clean attempt (or could not be judged): the ones a median counts. */
  clean: RunResult[];
  reps: number;
  /** No strict majority of the repetitions clean: the row's figures are shown but judge nothing. */
  untrusted: boolean;
}

/** Groups the attempts of one (workload, transport, peer) row into repetitions. */
export function countReps(attempts: readonly RunResult[]): Counted {
  const byRep = new Map<number, RunResult[]>();
  for (const r of attempts) {
    const list = byRep.get(r.rep);
    if (list === undefined) byRep.set(r.rep, [r]);
    else list.push(r);
  }
  const runs: RunResult[] = [];
  const clean: RunResult[] = [];
  for (const list of byRep.values()) {
    const ok = list.find((r) => r.contaminated !== true);
    if (ok !== undefined) {
      runs.push(ok);
      clean.push(ok);
    } else {
      runs.push(list.reduce((a, b) => (b.attempt > a.attempt ? b : a)));
    }
  }
  const reps = runs.length;
  return { runs, clean, reps, untrusted: reps > 0 && clean.length * 2 <= reps };
}

/**
 * Runs one repetition: `attempt(n)` until it comes back clean, cannot be judged, or has used up `retries`
 * reruns. Every attempt is returned (and reported through `onRun`), the contaminated ones included.
 */
export async function attemptUntilClean(
  attempt: (n: number) => Promise<RunResult>,
  o: Limits & { retries: number },
  rows: RowSpeeds,
  onRun: (r: RunResult, rerun: boolean) => void,
): Promise<RunResult[]> {
  const out: RunResult[] = [];
  for (let n = 1; ; n++) {
    const r = await attempt(n);
    rows.see(r);
    judge(r, o);
    out.push(r);
    const again = shouldRerun(r, o.retries);
    onRun(r, again);
    if (!again) return out;
  }
}
