/**
 * The pass/fail rules of a stress run, kept apart from the run so they can be tested on their own.
 */

export interface Caps {
  readonly receiveBudgetBytes: number;
  readonly outputBudgetBytes: number;
  /** Allowed on top of baseline + both budgets: the runtime's own growth under load (see README). */
  readonly rssSlackBytes: number;
  /** |fds after - fds before| may be at most this. */
  readonly fdSlack: number;
  /** |heap after - heap before| may be at most max(fraction × before, floor). */
  readonly heapFraction: number;
  readonly heapFloorBytes: number;
}

export interface Observed {
  readonly crashes: number;
  readonly hangs: number;
  readonly healthyFailures: number;
  readonly baselineRssBytes: number;
  readonly peakRssBytes: number;
  readonly fdsBefore: number;
  /** undefined when the server could not be asked (it died). */
  readonly fdsAfter: number | undefined;
  readonly heapBefore: number;
  readonly heapAfter: number | undefined;
  /**
   * Lying-header and slow-loris connections the server had not closed when their hold ended. Each hold lasts
   * longer than the server's frame timeout, so a server that enforces it closes every one.
   */
  readonly stalledPeersLeftOpen: number;
  /** Problems of the harness itself (an attack that overran its bound, the watchdog): they fail the run too. */
  readonly harnessErrors: readonly string[];
}

export interface Verdict {
  readonly pass: boolean;
  readonly reasons: string[];
  readonly rssCapBytes: number;
  readonly heapToleranceBytes: number;
}

const MiB = 1024 * 1024;
const mib = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;

export function rssCap(caps: Caps, baselineRssBytes: number): number {
  return baselineRssBytes + caps.receiveBudgetBytes + caps.outputBudgetBytes + caps.rssSlackBytes;
}

export function judge(caps: Caps, o: Observed): Verdict {
  const reasons: string[] = [];
  if (o.crashes > 0) reasons.push(`${o.crashes} crash(es)`);
  if (o.hangs > 0) reasons.push(`${o.hangs} hang(s)`);
  if (o.healthyFailures > 0) reasons.push(`${o.healthyFailures} healthy-client failure(s)`);
  const cap = rssCap(caps, o.baselineRssBytes);
  if (o.peakRssBytes > cap) reasons.push(`peak RSS ${mib(o.peakRssBytes)} above cap ${mib(cap)}`);
  if (o.fdsAfter === undefined) reasons.push('fds after: server unavailable');
  else if (Math.abs(o.fdsAfter - o.fdsBefore) > caps.fdSlack) reasons.push(`fds ${o.fdsBefore} before, ${o.fdsAfter} after (slack ${caps.fdSlack})`);
  const tol = Math.max(caps.heapFraction * o.heapBefore, caps.heapFloorBytes);
  if (o.heapAfter === undefined) reasons.push('heap after: server unavailable');
  else if (Math.abs(o.heapAfter - o.heapBefore) > tol) reasons.push(`heap ${mib(o.heapBefore)} before, ${mib(o.heapAfter)} after (tolerance ${mib(tol)})`);
  if (o.stalledPeersLeftOpen > 0) reasons.push(`${o.stalledPeersLeftOpen} stalled peer(s) still open after their hold`);
  for (const e of o.harnessErrors) reasons.push(e);
  return { pass: reasons.length === 0, reasons, rssCapBytes: cap, heapToleranceBytes: tol };
}

/** The closing line CI reads. */
export function verdictLine(v: Verdict): string {
  return v.pass ? 'stress: PASS' : `stress: FAIL ${v.reasons.join('; ')}`;
}
