// `pnpm bench`: every workload x transport, peers alternated inside each repetition so that they
// share the machine's drift, then medians and ffnet's ratios. One JSON line per run on stdout.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type RunResult, runOne } from './harness.js';
import { type Options, USAGE, parseOptions, pendingRequested } from './options.js';
import { formatSummary, summarize } from './summary.js';
import { WORKLOADS } from './workloads.js';

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

function estimateMs(o: Options): number {
  const perRep = o.workloads.reduce((sum, w) => sum + o.warmupMs + measureMs(o, w.measureMs) + RUN_OVERHEAD_MS, 0);
  return perRep * o.transports.length * o.peers.length * o.reps;
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const pending = pendingRequested(argv);
  if (pending.length > 0) {
    for (const p of pending) console.error(p);
    return 2;
  }
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

  const runCount = o.workloads.length * o.transports.length * o.peers.length * o.reps;
  const est = estimateMs(o);
  console.error(
    `bench: ${runCount} runs (${o.workloads.map((w) => w.name).join(',')} x ${o.transports.join(',')} x ${o.peers.join(',')} x ${o.reps} reps), ` +
      `estimated ${(est / 60000).toFixed(1)} min; pinning ${o.pin ? `server CPU ${o.pin.server}, client CPU ${o.pin.client}` : 'off'}`,
  );
  for (const w of WORKLOADS) if (w.kind === 'pending') console.error(`bench: ${w.name} pending: ${w.reason}`);

  const started = Date.now();
  const loadStart = os.loadavg();
  const runs: RunResult[] = [];
  const failures: Failure[] = [];
  for (const w of o.workloads) {
    for (const transport of o.transports) {
      for (let rep = 1; rep <= o.reps; rep++) {
        for (const peer of o.peers) {
          try {
            const r = await runOne({
              peer,
              workload: w,
              transport,
              rep,
              warmupMs: o.warmupMs,
              measureMs: measureMs(o, w.measureMs),
              pin: o.pin,
              ...(o.profileDir === undefined ? {} : { profileDir: o.profileDir }),
            });
            runs.push(r);
            console.log(JSON.stringify(r));
          } catch (err) {
            const error = (err as Error).message;
            failures.push({ peer, workload: w.name, transport, rep, error });
            console.error(`bench: ${peer} ${w.name} ${transport} rep ${rep} failed: ${error}`);
          }
        }
      }
    }
  }

  const summary = summarize(o.workloads, runs);
  const elapsedS = Math.round((Date.now() - started) / 1000);
  console.log(`\n${formatSummary(summary)}`);
  console.log(
    `\n${runs.length} runs in ${elapsedS} s (estimated ${Math.round(est / 1000)} s); load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
  );
  for (const f of failures) console.log(`FAILED: ${f.peer} ${f.workload} ${f.transport} rep ${f.rep}: ${f.error}`);

  const meta = {
    date: new Date(started).toISOString(),
    commit: gitCommit(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? null,
    loadavg: { start: loadStart, end: os.loadavg() },
    pin: o.pin,
    quick: o.quick,
    reps: o.reps,
    warmupMs: o.warmupMs,
    measureMs: Object.fromEntries(o.workloads.map((w) => [w.name, measureMs(o, w.measureMs)])),
    elapsedS,
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
