// Which runs a table may be built from. A run is contaminated when other processes kept more than
// `--max-other-cpu` cores busy during its measuring window; it is rerun, kept in the results and left
// out of the medians. A row without a clean majority of repetitions is untrusted as a whole.
import type { RunResult } from './run.js';

/**
 * Cores of other work above which a window is contaminated. Measured on this kind of machine (2 cores,
 * children pinned one per core): an idle machine shows 0.00-0.03 cores of other work per window (kernel
 * threads, the VM agent); one busy neighbour process shows 0.5-1.0; 0.15 sits well above the idle noise
 * and below a neighbour that takes a tenth of one child's core (README, "Trusting a run").
 */
export const DEFAULT_MAX_OTHER_CPU = 0.15;
export const DEFAULT_RETRIES = 2;

/** Marks `r` contaminated or clean; a run whose other CPU could not be read is neither (no field). */
export function judge(r: RunResult, maxOtherCpu: number | null): RunResult {
  if (r.otherCpu !== undefined && maxOtherCpu !== null) r.contaminated = r.otherCpu > maxOtherCpu;
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
  o: { maxOtherCpu: number | null; retries: number },
  onRun: (r: RunResult, rerun: boolean) => void,
): Promise<RunResult[]> {
  const out: RunResult[] = [];
  for (let n = 1; ; n++) {
    const r = judge(await attempt(n), o.maxOtherCpu);
    out.push(r);
    const again = shouldRerun(r, o.retries);
    onRun(r, again);
    if (!again) return out;
  }
}
