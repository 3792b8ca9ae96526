// `pnpm bench`: every workload x transport, peers alternated inside each repetition so that they
// share the machine's drift, then medians and ffnet's ratios. One JSON line per run on stdout.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32cImplementation } from '@ffnet/serde';
import { type RunResult, runOne } from './harness.js';
import { gitCommit, machine, machineLine } from './machine.js';
import type { PeerName, TransportName } from './names.js';
import { type Options, parseOptions, rdmaRefusal, repOrder, USAGE } from './options.js';
import type { ContaminationReason } from './run.js';
import { formatSummary, summarize } from './summary.js';
import { attemptUntilClean, RowSpeeds } from './trust.js';
import { type RpcWorkload, skipReason } from './workloads.js';

/** Process start-up, connect and teardown per run, on top of warm-up and measuring (measured ~0.5-1 s). */
const RUN_OVERHEAD_MS = 900;

interface Failure {
  peer: string;
  workload: string;
  transport: string;
  rep: number;
  error: string;
}

function measureMs(o: Options, defaultMs: number): number {
  return o.measureMs ?? defaultMs;
}

interface Planned {
  w: RpcWorkload;
  transport: TransportName;
  peers: PeerName[];
}

/** Every (workload, transport) with the peers that can run it; the others are named once, as notes. */
function planned(o: Options): Planned[] {
  const plan: Planned[] = [];
  for (const w of o.workloads) {
    for (const transport of o.transports) {
      const peers: PeerName[] = [];
      for (const peer of o.peers) {
        const why = skipReason(peer, w, transport);
        if (why === undefined) peers.push(peer);
        else console.error(`bench: skipping ${peer} ${w.name} ${transport}: ${why}`);
      }
      if (peers.length > 0) plan.push({ w, transport, peers });
    }
  }
  return plan;
}

function estimateMs(o: Options, plan: Planned[]): number {
  const perRep = plan.reduce((sum, p) => sum + (o.warmupMs + measureMs(o, p.w.measureMs) + RUN_OVERHEAD_MS) * p.peers.length, 0);
  return perRep * o.reps;
}

/** Why a run was judged `slowCore`: its cores against its row's median window and against their own best. */
function slowCoreWhy(r: RunResult, o: Options): string {
  const row = r.rowSlowdown === undefined ? '' : `${r.rowSlowdown.server}x/${r.rowSlowdown.client}x its row's median (limit ${o.maxSlowdown}x), `;
  const core =
    r.coreSlowdown === undefined
      ? ''
      : `${r.coreSlowdown.server}x/${r.coreSlowdown.client}x their own best (${o.maxCoreSlowdown === null ? 'not judged' : `limit ${o.maxCoreSlowdown}x`})`;
  return `cores ran ${row}${core}, server/client`;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let opts: Options | 'help';
  try {
    opts = parseOptions(argv);
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (opts === 'help') {
    console.log(USAGE);
    return 0;
  }
  const o = opts;
  const refusal = rdmaRefusal(o);
  if (refusal !== undefined) {
    console.error(refusal);
    return 2;
  }

  const plan = planned(o);
  // Read once, before the runs: the code they measure, not whatever the tree holds when they end.
  const commit = gitCommit();
  const baselineCommit = o.baselineDir === undefined ? undefined : gitCommit(o.baselineDir);
  const runCount = plan.reduce((n, p) => n + p.peers.length, 0) * o.reps;
  const est = estimateMs(o, plan);
  console.error(
    `bench: ${runCount} runs (${o.workloads.map((w) => w.name).join(',')} x ${o.transports.join(',')} x ${o.peers.join(',')} x ${o.reps} reps), ` +
      `estimated ${(est / 60000).toFixed(1)} min; pinning ${o.pin ? `server CPU ${o.pin.server}, client CPU ${o.pin.client}` : 'off'}` +
      (o.baselineDir === undefined ? '' : `; baseline ${o.baselineDir} (${baselineCommit ?? 'commit unknown'})`),
  );

  const host = machine();
  console.error(`bench: ${machineLine(host)}`);
  const started = Date.now();
  const loadStart = os.loadavg();
  const runs: RunResult[] = [];
  const failures: Failure[] = [];
  const rows = new RowSpeeds();
  for (const { w, transport, peers } of plan) {
    for (let rep = 1; rep <= o.reps; rep++) {
      for (const peer of repOrder(peers, rep)) {
        try {
          await attemptUntilClean(
            (attempt) =>
              runOne({
                peer,
                workload: w,
                transport,
                rep,
                attempt,
                machineId: host.id,
                warmupMs: o.warmupMs,
                measureMs: measureMs(o, w.measureMs),
                pin: o.pin,
                ...(o.profileDir === undefined ? {} : { profileDir: o.profileDir }),
                ...(o.baselineDir === undefined ? {} : { baselineDir: o.baselineDir }),
              }),
            o,
            rows,
            (r, again) => {
              runs.push(r);
              console.log(JSON.stringify(r));
              if (r.contaminated !== true) return;
              const why = [
                ...(r.contaminatedBy?.includes('otherCpu') ? [`other processes kept ${r.otherCpu} cores busy (limit ${o.maxOtherCpu})`] : []),
                ...(r.contaminatedBy?.includes('slowCore') ? [slowCoreWhy(r, o)] : []),
              ];
              console.error(
                `bench: ${peer} ${w.name} ${transport} rep ${rep} attempt ${r.attempt} contaminated: ${why.join('; ')}; ` +
                  `${again ? 'rerunning' : 'no retries left, the repetition stays contaminated'}`,
              );
            },
          );
        } catch (err) {
          // A failed attempt ends the repetition (it is not retried): the earlier attempts stay in the results.
          const error = (err as Error).message;
          failures.push({ peer, workload: w.name, transport, rep, error });
          console.error(`bench: ${peer} ${w.name} ${transport} rep ${rep} failed: ${error}`);
        }
      }
    }
  }

  // A row's first windows were judged against fewer of its windows than its last: judge them all again.
  for (const r of rows.rejudge(runs, o)) {
    console.error(
      r.contaminated === true
        ? `bench: ${r.peer} ${r.workload} ${r.transport} rep ${r.rep} attempt ${r.attempt} contaminated against its row's median of the whole bench: ` +
            `${slowCoreWhy(r, o)}; left out of the medians (not rerun)`
        : `bench: ${r.peer} ${r.workload} ${r.transport} rep ${r.rep} attempt ${r.attempt} clean against its row's median of the whole bench; counted`,
    );
  }
  const summary = summarize(o.workloads, runs);
  const elapsedS = Math.round((Date.now() - started) / 1000);
  console.log(`\n${machineLine(host)}\n\n${formatSummary(summary)}`);
  const contaminated = runs.filter((r) => r.contaminated === true).length;
  if (contaminated > 0) {
    const by = (reason: ContaminationReason) => runs.filter((r) => r.contaminatedBy?.includes(reason)).length;
    console.log(
      `\n${contaminated} of ${runs.length} runs contaminated (${by('otherCpu')} by other processes above ${o.maxOtherCpu} cores, ` +
        `${by('slowCore')} by a core slower than ${o.maxSlowdown}x its row's median${o.maxCoreSlowdown === null ? '' : ` or ${o.maxCoreSlowdown}x its own`}), left out of the medians`,
    );
  }
  console.log(
    `\n${runs.length} runs in ${elapsedS} s (estimated ${Math.round(est / 1000)} s); load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  for (const f of failures) console.log(`FAILED: ${f.peer} ${f.workload} ${f.transport} rep ${f.rep}: ${f.error}`);

  const meta = {
    date: new Date(started).toISOString(),
    commit,
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? null,
    machine: host,
    // Which CRC-32C the bulk figures paid for (three crc32 streams, or a VPCLMULQDQ fold): machines differ here.
    crc32c: crc32cImplementation(),
    maxOtherCpu: o.maxOtherCpu,
    maxSlowdown: o.maxSlowdown,
    maxCoreSlowdown: o.maxCoreSlowdown,
    retries: o.retries,
    loadavg: { start: loadStart, end: os.loadavg() },
    pin: o.pin,
    quick: o.quick,
    reps: o.reps,
    warmupMs: o.warmupMs,
    measureMs: Object.fromEntries(o.workloads.map((w) => [w.name, measureMs(o, w.measureMs)])),
    elapsedS,
    ...(o.baselineDir === undefined ? {} : { baseline: { dir: o.baselineDir, commit: baselineCommit } }),
  };
  mkdirSync(path.dirname(o.out), { recursive: true });
  writeFileSync(o.out, `${JSON.stringify({ meta, runs, failures, summary }, null, 2)}\n`);
  console.error(`bench: results written to ${o.out}`);
  return failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);
