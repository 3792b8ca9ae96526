/**
 * `pnpm stress [--profile full|ci] [--seed N] [--no-fuzz-core] [--out report.json]`
 *
 * Starts the server under attack as a child process, measures it unloaded, runs the attacks one after the
 * other from attacker child processes while a healthy client keeps calling, then lets the server settle and
 * measures again. Prints one JSON report and a closing `stress: PASS` / `stress: FAIL <reasons>` line; exits
 * non-zero unless it passed. Every child is killed by pid on the way out, whatever happens.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FfnetError } from '@ffnet/serde';
import { Client } from '@ffnet/server';
import type { Task } from './attacks.js';
import { sleep } from './net.js';
import { fdCount, procMemory, quantile } from './proc.js';
import { PROFILES, type Profile } from './profiles.js';
import type { ServerChildConfig } from './server-config.js';
import { MAX_REPLY_BYTES, StressService } from './service.js';
import { judge, verdictLine } from './verdict.js';

const here = dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;
const children = new Set<ChildProcess>();

function killAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

interface Args {
  profile: Profile;
  seed: number;
  fuzzCore: boolean;
  out: string | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  let profile: Profile = PROFILES.full;
  let seed = (Date.now() ^ (process.pid << 8)) >>> 0;
  let fuzzCore = true;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--profile') {
      const p = argv[++i];
      if (p !== 'full' && p !== 'ci') throw new Error(`--profile must be full or ci, not ${p}`);
      profile = PROFILES[p];
    } else if (a === '--seed') seed = Number(argv[++i]) >>> 0;
    else if (a === '--no-fuzz-core') fuzzCore = false;
    else if (a === '--out') out = argv[++i];
    else throw new Error(`unknown argument ${a}`);
  }
  return { profile, seed, fuzzCore, out };
}

// ---------------------------------------------------------------------------------------------------------------
// The server child

interface ServerHandle {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly addresses: string[];
  /** Set when it exits; `expected` once we asked it to stop. */
  exit: { code: number | null; signal: string | null; expected: boolean; atMs: number } | undefined;
  stopping: boolean;
}

interface MemReply {
  memory: NodeJS.MemoryUsage;
  stats: { connections: number; inFlight: number } & Record<string, unknown>;
  state: string;
}

async function startServer(cfg: ServerChildConfig, t0: number): Promise<ServerHandle> {
  const child = fork(join(here, 'server-child.js'), [JSON.stringify(cfg)], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  const ready = await new Promise<{ pid: number; addresses: string[] }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server child not ready within 30 s')), 30_000);
    child.once('exit', (code) => reject(new Error(`server child exited with ${code} before it was ready`)));
    child.on('message', (m: { type?: string; pid?: number; addresses?: string[] }) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve({ pid: m.pid!, addresses: m.addresses! });
      }
    });
  });
  const h: ServerHandle = { child, pid: ready.pid, addresses: ready.addresses, exit: undefined, stopping: false };
  child.on('exit', (code, signal) => {
    h.exit = { code, signal, expected: h.stopping, atMs: Math.round(performance.now() - t0) };
  });
  return h;
}

function alive(s: ServerHandle): boolean {
  return s.exit === undefined;
}

/** Asks the server child for process.memoryUsage() after a full GC. */
function serverMem(s: ServerHandle): Promise<MemReply | undefined> {
  if (!alive(s) || !s.child.connected) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      s.child.off('message', onMsg);
      resolve(undefined);
    }, 15_000);
    const onMsg = (m: { type?: string } & MemReply) => {
      if (m.type !== 'mem') return;
      clearTimeout(timer);
      s.child.off('message', onMsg);
      resolve(m);
    };
    s.child.on('message', onMsg);
    s.child.send({ type: 'mem' });
  });
}

/** Asks the server to stop; resolves with whether it exited within `boundMs` (else it is killed). */
async function stopServer(s: ServerHandle, boundMs: number): Promise<boolean> {
  if (!alive(s)) return true;
  s.stopping = true;
  const exited = new Promise<void>((r) => s.child.once('exit', () => r()));
  if (s.child.connected) s.child.send({ type: 'stop' });
  const timer = new Promise<false>((r) => setTimeout(() => r(false), boundMs));
  const ok = await Promise.race([exited.then(() => true as const), timer]);
  if (!ok) {
    process.kill(s.pid, 'SIGKILL');
    await exited;
  }
  return ok;
}

// ---------------------------------------------------------------------------------------------------------------
// Sampling

class Sampler {
  peakRss = 0;
  peakHwm = 0;
  peakFds = 0;
  readonly #timer: NodeJS.Timeout;
  constructor(private readonly pid: number) {
    this.#timer = setInterval(() => this.sample(), 100);
  }
  sample(): void {
    const m = procMemory(this.pid);
    if (m) {
      this.peakRss = Math.max(this.peakRss, m.rss);
      this.peakHwm = Math.max(this.peakHwm, m.hwm);
    }
    const f = fdCount(this.pid);
    if (f !== undefined) this.peakFds = Math.max(this.peakFds, f);
  }
  stop(): void {
    this.sample();
    clearInterval(this.#timer);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The healthy client

class Healthy {
  readonly client: Client;
  readonly latencies: number[] = [];
  failures = 0;
  readonly errors: Record<string, number> = {};
  lastOkAt = performance.now();
  #running = false;
  #loop: Promise<void> = Promise.resolve();
  constructor(
    private readonly addresses: readonly string[],
    timeoutMs: number,
  ) {
    this.client = new Client({ timeoutMs });
  }
  /** One call, alternating tcp and unix; its latency in ms, or undefined if it failed. */
  async call(i: number): Promise<number | undefined> {
    const stub = this.client.stub(StressService, this.addresses[i % this.addresses.length]!);
    const t = performance.now();
    try {
      const r = await stub.echo({ s: 'healthy' });
      if (r.s !== 'healthy') throw new Error('wrong echo');
      this.lastOkAt = performance.now();
      return this.lastOkAt - t;
    } catch (e) {
      this.failures++;
      const key = FfnetError.is(e) ? `${e.code} ${e.name}` : String(e);
      this.errors[key] = (this.errors[key] ?? 0) + 1;
      return undefined;
    }
  }
  /** Calls every `intervalMs` until stop(); one call at a time, so a slow answer delays the next one. */
  start(intervalMs: number): void {
    this.#running = true;
    this.lastOkAt = performance.now();
    this.#loop = (async () => {
      for (let i = 0; this.#running; i++) {
        const ms = await this.call(i);
        if (ms !== undefined) this.latencies.push(ms);
        await sleep(intervalMs);
      }
    })();
  }
  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Attackers

interface Finished<R> {
  result: R | undefined;
  /** Set when the attacker overran its bound (killed) or died without a result. */
  error: string | undefined;
  ms: number;
}

function spawnAttacker(task: Task): ChildProcess {
  const child = fork(join(here, 'attacker.js'), [JSON.stringify(task)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function runAttacker<R>(task: Task, boundMs: number): Promise<Finished<R>> {
  const t = performance.now();
  const child = spawnAttacker(task);
  return new Promise((resolve) => {
    let result: R | undefined;
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, boundMs);
    child.on('message', (m: { type?: string; result?: R }) => {
      if (m.type === 'result') result = m.result;
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const ms = Math.round(performance.now() - t);
      const error =
        result === undefined
          ? `${task.attack} attacker ended without a result (code ${code}, signal ${signal}, after ${ms} ms, bound ${boundMs} ms)`
          : undefined;
      resolve({ result, error, ms });
    });
  });
}

/** Real clients making calls, SIGKILLed once they are mid-flight. */
async function kill9(
  addresses: readonly string[],
  p: Profile['kill9'],
  rng: () => number,
): Promise<{ killed: number; callsBeforeKill: number; errors: string[] }> {
  const out = { killed: 0, callsBeforeKill: 0, errors: [] as string[] };
  for (let round = 0; round < p.rounds; round++) {
    const batch = Array.from({ length: p.clientsPerRound }, () => {
      const task: Task = {
        attack: 'calls',
        addresses,
        calls: 10_000_000,
        concurrency: 64,
        bytesEvery: 8,
        bytesSize: 64 * 1024,
        timeLimitMs: 60_000,
        timeoutMs: 5_000,
      };
      const child = spawnAttacker(task);
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      // Mid-flight: once it has finished 1000 calls (64 more are in the air), plus a random moment up to 300 ms.
      const inFlight = new Promise<number>((resolve) => {
        const timer = setTimeout(() => resolve(0), 15_000);
        child.on('message', (m: { type?: string; done?: number }) => {
          if (m.type === 'progress') {
            clearTimeout(timer);
            resolve(m.done ?? 0);
          }
        });
      });
      return { child, exited, inFlight };
    });
    for (const b of batch) {
      const done = await b.inFlight;
      if (done === 0) out.errors.push(`kill9 round ${round}: a client made no progress within 15 s`);
      out.callsBeforeKill += done;
      await sleep(Math.floor(rng() * 300));
      if (b.child.pid !== undefined && b.child.exitCode === null) {
        process.kill(b.child.pid, 'SIGKILL');
        out.killed++;
      }
      await b.exited;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

async function run(args: Args): Promise<number> {
  const p = args.profile;
  const t0 = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'ffnet-stress-'));
  const harnessErrors: string[] = [];
  const phases: Record<string, unknown> = {};
  let rngState = args.seed || 1;
  const rng = (): number => {
    rngState = (Math.imul(rngState, 1664525) + 1013904223) >>> 0;
    return rngState / 0x1_0000_0000;
  };
  const cfg: ServerChildConfig = { unixPath: join(dir, 'server.sock'), ...p.server };
  const server = await startServer(cfg, t0);
  const sampler = new Sampler(server.pid);
  const [tcp, unix] = [server.addresses.find((a) => a.startsWith('tcp://'))!, server.addresses.find((a) => a.startsWith('unix://'))!];
  const both = [tcp, unix];
  let hangs = 0;
  const hangEvents: string[] = [];
  const healthy = new Healthy(both, p.healthy.timeoutMs);
  let hangMonitor: NodeJS.Timeout | undefined;
  let hangOpen = false;
  let memBefore: MemReply | undefined;
  let fdsBefore = 0;
  let rssBefore = 0;
  let peakRss = 0;
  const unloaded: number[] = [];

  const watchdog = setTimeout(() => {
    harnessErrors.push(`watchdog: the run passed ${p.watchdogMs} ms`);
    finish().then(
      (code) => process.exit(code),
      () => process.exit(1),
    );
  }, p.watchdogMs);
  watchdog.unref();

  // Warm-up: every path the attacks reach, a little, so the baseline includes what is created once (compiled
  // code, lazily opened loop resources) and the comparison afterwards is about what the attacks left behind.
  const warm = await runAttacker(
    { attack: 'fuzz', address: tcp, frames: 4096, framesPerWrite: 256, concurrency: 2, seed: args.seed ^ 0x5a5a, fuzzCore: false, timeLimitMs: 60_000 },
    90_000,
  );
  const warmCalls = await runAttacker(
    { attack: 'calls', addresses: both, calls: 2000, concurrency: 16, bytesEvery: 100, bytesSize: MAX_REPLY_BYTES, timeLimitMs: 60_000, timeoutMs: 5000 },
    90_000,
  );
  for (const w of [warm, warmCalls]) if (w.error) harnessErrors.push(`warm-up: ${w.error}`);
  await sleep(1000);
  memBefore = await serverMem(server);
  await sleep(200);
  fdsBefore = fdCount(server.pid) ?? 0;
  rssBefore = procMemory(server.pid)?.rss ?? 0;
  peakRss = rssBefore;

  // The healthy client: unloaded first (after one call per address, which connects), then throughout.
  for (let i = 0; i < both.length; i++) await healthy.call(i);
  for (let i = 0; i < p.healthy.unloadedCalls; i++) {
    const ms = await healthy.call(i);
    if (ms !== undefined) unloaded.push(ms);
    await sleep(p.healthy.intervalMs);
  }
  unloaded.sort((a, b) => a - b);
  healthy.start(p.healthy.intervalMs);
  hangMonitor = setInterval(() => {
    const quiet = performance.now() - healthy.lastOkAt;
    if (quiet > p.healthy.hangMs && !hangOpen) {
      hangOpen = true;
      hangs++;
      hangEvents.push(`no healthy answer for ${Math.round(quiet)} ms at ${Math.round(performance.now() - t0)} ms (server ${alive(server) ? 'alive' : 'gone'})`);
    } else if (quiet <= p.healthy.hangMs) hangOpen = false;
  }, 250);

  const phase = async (name: string, fn: () => Promise<unknown>): Promise<void> => {
    if (!alive(server)) {
      phases[name] = { skipped: 'server process gone' };
      return;
    }
    // A server that has stopped answering (a hang is already counted) would only make every attack wait out
    // its bounds.
    if (hangOpen) {
      phases[name] = { skipped: 'server not answering the healthy client' };
      return;
    }
    const t = performance.now();
    const rssAt = procMemory(server.pid)?.rss ?? 0;
    sampler.peakRss = 0;
    const firstCall = healthy.latencies.length;
    try {
      const r = await fn();
      sampler.sample();
      // The healthy client's latency while this attack alone ran: the whole-run p99 mixes attacks that only
      // take CPU (a million calls) with those that take memory.
      const lat = healthy.latencies.slice(firstCall).sort((a, b) => a - b);
      const healthyDuring = { calls: lat.length, p50Ms: +quantile(lat, 0.5).toFixed(2), p99Ms: +quantile(lat, 0.99).toFixed(2) };
      phases[name] = {
        ms: Math.round(performance.now() - t),
        peakRssMiB: +(sampler.peakRss / MiB).toFixed(1),
        rssAtStartMiB: +(rssAt / MiB).toFixed(1),
        healthy: healthyDuring,
        ...(r as object),
      };
    } catch (e) {
      harnessErrors.push(`${name}: ${String(e)}`);
      phases[name] = { error: String(e) };
    }
    peakRss = Math.max(peakRss, sampler.peakRss);
  };

  const attackerResult = async <R extends object>(task: Task, boundMs: number): Promise<R | { error: string }> => {
    const f = await runAttacker<R>(task, boundMs);
    if (f.error) {
      harnessErrors.push(f.error);
      return { error: f.error };
    }
    return f.result as R;
  };

  await phase('fuzz', async () => {
    const per = Math.ceil(p.fuzz.frames / 2);
    const bound = p.fuzz.timeLimitMs + 60_000;
    const [a, b] = await Promise.all(
      both.map((address, i) =>
        attackerResult<{ framesSent: number; byKind: Record<string, number>; responses: number; connections: number; gaveUp: boolean }>(
          {
            attack: 'fuzz',
            address,
            frames: per,
            framesPerWrite: p.fuzz.framesPerWrite,
            concurrency: p.fuzz.concurrency,
            seed: (args.seed + i * 7919) >>> 0,
            fuzzCore: args.fuzzCore,
            timeLimitMs: p.fuzz.timeLimitMs,
          },
          bound,
        ),
      ),
    );
    for (const [name, r] of [
      ['tcp', a],
      ['unix', b],
    ] as const) {
      if (r && 'gaveUp' in r && r.gaveUp) harnessErrors.push(`fuzz over ${name}: the server refused 200 connections in a row`);
    }
    return { tcp: a, unix: b };
  });

  await phase('lying', async () => {
    const stages = [];
    for (const s of p.lying.stages) {
      stages.push({
        connections: s.connections,
        partBytes: s.partBytes,
        ...(await attackerResult<object>(
          { attack: 'lying', addresses: both, connections: s.connections, claimBytes: p.lying.claimBytes, partBytes: s.partBytes, holdMs: p.lying.holdMs },
          p.lying.holdMs + 120_000,
        )),
      });
    }
    return { claimBytes: p.lying.claimBytes, holdMs: p.lying.holdMs, stages };
  });

  await phase('amplify', () =>
    attackerResult(
      {
        attack: 'amplify',
        addresses: both,
        connections: p.amplify.connections,
        requests: p.amplify.requests,
        replyBytes: MAX_REPLY_BYTES,
        holdMs: p.amplify.holdMs,
      },
      p.amplify.holdMs + 120_000,
    ),
  );

  await phase('slowloris', () =>
    attackerResult(
      {
        attack: 'slowloris',
        addresses: both,
        silent: p.slowloris.silent,
        dribble: p.slowloris.dribble,
        intervalMs: 10,
        dribbleBodyBytes: 4096,
        holdMs: p.slowloris.holdMs,
      },
      p.slowloris.holdMs + 120_000,
    ),
  );

  await phase('kill9', async () => {
    const r = await kill9(both, p.kill9, rng);
    for (const e of r.errors) harnessErrors.push(e);
    return r;
  });

  await phase('calls', async () => {
    const per = Math.ceil(p.calls.calls / p.calls.processes);
    const results = await Promise.all(
      Array.from({ length: p.calls.processes }, () =>
        attackerResult<{ ok: number; failed: number; errorsByCode: Record<string, number>; timedOut: boolean }>(
          {
            attack: 'calls',
            addresses: both,
            calls: per,
            concurrency: p.calls.concurrency,
            bytesEvery: 0,
            bytesSize: 0,
            timeLimitMs: p.calls.timeLimitMs,
            timeoutMs: 10_000,
          },
          p.calls.timeLimitMs + 60_000,
        ),
      ),
    );
    let ok = 0;
    let failed = 0;
    for (const r of results) {
      if ('ok' in r) {
        ok += r.ok;
        failed += r.failed;
        if (r.timedOut) harnessErrors.push(`calls: time limit reached after ${r.ok + r.failed} calls`);
      }
    }
    return { ok, failed, processes: results };
  });

  await phase('churn', async () => {
    const r = await attackerResult<{ ok: number; failed: number; timedOut: boolean }>(
      { attack: 'churn', addresses: both, connections: p.churn.connections, concurrency: p.churn.concurrency, timeLimitMs: p.churn.timeLimitMs },
      p.churn.timeLimitMs + 60_000,
    );
    if ('timedOut' in r && r.timedOut) harnessErrors.push(`churn: time limit reached after ${r.ok + r.failed} connections`);
    return r;
  });

  return finish();

  async function finish(): Promise<number> {
    clearTimeout(watchdog);
    clearInterval(hangMonitor);
    await healthy.stop();
    await healthy.client.stop();
    // Settle: every attacker is gone; wait for the server's fds to come back (bounded), then measure.
    const settleStart = performance.now();
    while (alive(server) && performance.now() - settleStart < p.settleMs && (fdCount(server.pid) ?? 0) > fdsBefore) await sleep(200);
    await sleep(1000);
    const fdsAfter = alive(server) ? fdCount(server.pid) : undefined;
    const memAfter = await serverMem(server);
    sampler.stop();
    peakRss = Math.max(peakRss, sampler.peakRss);
    const crashedBeforeStop = server.exit !== undefined && !server.exit.expected;
    const stoppedInBound = await stopServer(server, p.stopBoundMs);
    if (!stoppedInBound) {
      hangs++;
      hangEvents.push(`server did not stop within ${p.stopBoundMs} ms`);
    }
    const crashes = crashedBeforeStop ? 1 : 0;
    const lat = [...healthy.latencies].sort((a, b) => a - b);
    const peak = Math.max(peakRss, sampler.peakHwm);
    const verdict = judge(
      { ...p.caps, receiveBudgetBytes: p.server.receiveBudgetBytes, outputBudgetBytes: p.server.outputBudgetBytes },
      {
        crashes,
        hangs,
        healthyFailures: healthy.failures,
        baselineRssBytes: rssBefore,
        peakRssBytes: peak,
        fdsBefore,
        fdsAfter,
        heapBefore: memBefore?.memory.heapUsed ?? 0,
        heapAfter: memAfter?.memory.heapUsed,
        stalledPeersLeftOpen: stalledLeftOpen(phases),
        harnessErrors,
      },
    );
    const fuzz = phases.fuzz as
      | { tcp?: { framesSent?: number; byKind?: Record<string, number> }; unix?: { framesSent?: number; byKind?: Record<string, number> } }
      | undefined;
    const framesSent = (fuzz?.tcp?.framesSent ?? 0) + (fuzz?.unix?.framesSent ?? 0);
    const report = {
      profile: p.name,
      seed: args.seed,
      fuzzCore: args.fuzzCore,
      durationS: Math.round((performance.now() - t0) / 1000),
      framesSent,
      // Everything but the correct requests mixed in to keep connections reading.
      hostileFramesSent: framesSent - (fuzz?.tcp?.byKind?.valid ?? 0) - (fuzz?.unix?.byKind?.valid ?? 0),
      stalledPeersLeftOpen: stalledLeftOpen(phases),
      crashes,
      hangs,
      hangEvents,
      serverExit: server.exit,
      server: {
        options: p.server,
        rss: {
          baselineMiB: +(rssBefore / MiB).toFixed(1),
          peakMiB: +(peak / MiB).toFixed(1),
          capMiB: +(verdict.rssCapBytes / MiB).toFixed(1),
          slackMiB: p.caps.rssSlackBytes / MiB,
        },
        fds: { before: fdsBefore, after: fdsAfter ?? null, peak: sampler.peakFds, slack: p.caps.fdSlack },
        heap: {
          beforeMiB: memBefore ? +(memBefore.memory.heapUsed / MiB).toFixed(2) : null,
          afterMiB: memAfter ? +(memAfter.memory.heapUsed / MiB).toFixed(2) : null,
          toleranceMiB: +(verdict.heapToleranceBytes / MiB).toFixed(2),
          externalBeforeMiB: memBefore ? +(memBefore.memory.external / MiB).toFixed(2) : null,
          externalAfterMiB: memAfter ? +(memAfter.memory.external / MiB).toFixed(2) : null,
          arrayBuffersAfterMiB: memAfter ? +(memAfter.memory.arrayBuffers / MiB).toFixed(2) : null,
        },
        statsAfter: memAfter ? { state: memAfter.state, connections: memAfter.stats.connections, inFlight: memAfter.stats.inFlight } : null,
      },
      healthy: {
        calls: healthy.latencies.length + healthy.failures,
        failures: healthy.failures,
        errors: healthy.errors,
        p50Ms: +quantile(lat, 0.5).toFixed(2),
        p99Ms: +quantile(lat, 0.99).toFixed(2),
        maxMs: +(lat[lat.length - 1] ?? 0).toFixed(2),
        unloadedP50Ms: +quantile(unloaded, 0.5).toFixed(2),
        unloadedP99Ms: +quantile(unloaded, 0.99).toFixed(2),
      },
      attacks: phases,
      verdict: { pass: verdict.pass, reasons: verdict.reasons },
    };
    const json = JSON.stringify(report, null, 2);
    console.log(json);
    if (args.out) writeFileSync(args.out, `${json}\n`);
    console.log(verdictLine(verdict));
    killAll();
    rmSync(dir, { recursive: true, force: true });
    return verdict.pass ? 0 : 1;
  }
}

interface Held {
  opened?: number;
  closedByServer?: number;
}

/** Lying and slow-loris connections the server left open through their whole hold. */
function stalledLeftOpen(phases: Record<string, unknown>): number {
  const held: Held[] = [];
  const lying = phases.lying as { stages?: Held[] } | undefined;
  for (const s of lying?.stages ?? []) held.push(s);
  const loris = phases.slowloris as { silent?: Held; dribble?: Held } | undefined;
  if (loris?.silent) held.push(loris.silent);
  if (loris?.dribble) held.push(loris.dribble);
  let n = 0;
  for (const h of held) n += Math.max(0, (h.opened ?? 0) - (h.closedByServer ?? 0));
  return n;
}

let parsed: Args;
try {
  parsed = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(String(e));
  process.exit(2);
}
run(parsed).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error('stress: harness error:', e);
    console.log(`stress: FAIL harness error: ${String(e)}`);
    killAll();
    process.exit(1);
  },
);
