// Which runs a table may be built from. A run is contaminated when other processes kept more than
// `--max-other-cpu` cores busy during its measuring window, or when a pinned core ran more than `--max-slowdown`
// times slower than its best (core-probe.ts); it is rerun, kept in the results and left out of the medians. A row
// without a clean majority of repetitions is untrusted as a whole.
import type { ContaminationReason, RunResult } from './run.js';

/**
 * Cores of other work above which a window is contaminated. Measured on this kind of machine (2 cores,
 * children pinned one per core): an idle machine shows 0.00-0.03 cores of other work per window (kernel
 * threads, the VM agent); one busy neighbour process shows 0.5-1.0; 0.15 sits well above the idle noise
 * and below a neighbour that takes a tenth of one child's core (README, "Trusting a run").
 */
export const DEFAULT_MAX_OTHER_CPU = 0.15;
/**
 * Core slowdown (a window's median probe sample over the core's best, core-probe.ts) above which a window is
 * contaminated. Measured on this 2-core VM: 100 pairs of 3 s windows on both cores read medians of 1.01-1.16
 * (typically 1.06-1.08: the reference is the single fastest sample) outside one 40 s stretch at 1.17-1.31 on one
 * core; the episodes this is for read 1.7-1.9 (a spin loop at ~3.1 against 1.66 ns an iteration). 1.15 would
 * reject about one quiet window in ten; 1.2 keeps them and sits far below an episode (README, "Trusting a run").
 */
export const DEFAULT_MAX_SLOWDOWN = 1.2;
export const DEFAULT_RETRIES = 2;

/** What a run is judged against; null judges nothing by that measure (`off`). */
export interface Limits {
  maxOtherCpu: number | null;
  maxSlowdown: number | null;
}

/** The slower of a run's two pinned cores, or undefined when the run was not probed. */
export function worstSlowdown(r: RunResult): number | undefined {
  return r.coreSlowdown === undefined ? undefined : Math.max(r.coreSlowdown.server, r.coreSlowdown.client);
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
  const slow = worstSlowdown(r);
  if (slow !== undefined && limits.maxSlowdown !== null) {
    judged = true;
    if (slow > limits.maxSlowdown) by.push('slowCore');
  }
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
  onRun: (r: RunResult, rerun: boolean) => void,
): Promise<RunResult[]> {
  const out: RunResult[] = [];
  for (let n = 1; ; n++) {
    const r = judge(await attempt(n), o);
    out.push(r);
    const again = shouldRerun(r, o.retries);
    onRun(r, again);
    if (!again) return out;
  }
}
