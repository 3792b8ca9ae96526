// Runs one (peer, workload, transport): a server child and a client child, each pinned to its own
// core, and turns their reports into one result line.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import * as os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { coreProbes } from './core-probe.js';
import { type CpuSample, type OtherCpu, otherCpu, otherTaskCpu, readCpuSample, readPidTicks, readTaskTicks, stealCpu, TICKS_PER_SEC } from './machine.js';
import { BASELINE_PEER } from './names.js';
import type { Endpoint } from './peers/types.js';
import type { ChildConfig, ChildMessage } from './protocol.js';
import type { Pinning, RunOptions, RunResult } from './run.js';
import { round } from './stats.js';
import { makeTlsDir, TLS_DIR_ENV } from './tls-certs.js';

export type { Pinning, RunOptions, RunResult } from './run.js';

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));

/**
 * The bench child of another checkout: it loads that checkout's own @ffnet packages (its node_modules), so the
 * same harness, pinning and load loop drive two builds of ffnet. The child protocol (protocol.ts) is what
 * both sides must agree on; it has not changed since the harness was written.
 */
export function baselineChild(dir: string): string {
  return join(dir, 'apps', 'bench', 'dist', 'child.js');
}

let shims: Map<string, string> | undefined;
/**
 * Over tls, `ffnet@baseline` is this harness's own child loading DIR's @ffnet packages: DIR's child may predate the
 * tls rows, and what a tls row compares is the packages (the transport's tls backend), not the bench peer code.
 * A copy of this dist/ next to a node_modules that links to DIR's makes Node resolve @ffnet/* (and grpc-js) there.
 */
export function baselineShimChild(dir: string): string {
  shims ??= new Map();
  let shim = shims.get(dir);
  if (shim === undefined) {
    const root = mkdtempSync(`${os.tmpdir()}/ffnet-bench-baseline-`);
    process.once('exit', () => rmSync(root, { recursive: true, force: true }));
    const dist = dirname(CHILD);
    const copy = (from: string, to: string): void => {
      mkdirSync(to, { recursive: true });
      for (const e of readdirSync(from, { withFileTypes: true })) {
        if (e.isDirectory()) copy(join(from, e.name), join(to, e.name));
        else if (e.name.endsWith('.js')) copyFileSync(join(from, e.name), join(to, e.name));
      }
    };
    copy(dist, join(root, 'dist'));
    copyFileSync(join(dist, '..', 'package.json'), join(root, 'package.json'));
    symlinkSync(join(dir, 'apps', 'bench', 'node_modules'), join(root, 'node_modules'));
    shim = join(root, 'dist', 'child.js');
    shims.set(dir, shim);
  }
  return shim;
}

// Starting a child under TCG emulation on a busy host can take longer: rdma-in-vm.sh raises it there.
const START_TIMEOUT_MS = Number(process.env.FFNET_BENCH_START_TIMEOUT_MS) > 0 ? Number(process.env.FFNET_BENCH_START_TIMEOUT_MS) : 20_000;
const SLACK_MS = 20_000;

/** Server on CPU 0 and client on CPU 1 (WORKLOADS.md), when taskset works and there are two CPUs. */
export function defaultPinning(): Pinning | null {
  if (os.availableParallelism() < 2) return null;
  const probe = spawnSync('taskset', ['-c', '1', 'true'], { stdio: 'ignore' });
  return probe.status === 0 ? { server: '0', client: '1' } : null;
}

type Msg<T extends ChildMessage['t']> = Extract<ChildMessage, { t: T }>;

class Child {
  private readonly proc: ChildProcess;
  private readonly inbox: ChildMessage[] = [];
  private waiter: { t: ChildMessage['t']; resolve: (m: ChildMessage) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  readonly exited: Promise<void>;

  constructor(
    private readonly role: 'server' | 'client',
    cfg: ChildConfig,
    cpu: string | undefined,
    nodeFlags: string[],
    script: string = CHILD,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    const nodeArgs = [...nodeFlags, script, JSON.stringify(cfg)];
    const [cmd, args] = cpu === undefined ? [process.execPath, nodeArgs] : ['taskset', ['-c', cpu, process.execPath, ...nodeArgs]];
    // Children's stdout goes to our stderr: our stdout carries only result lines and the table.
    this.proc = spawn(cmd, args, { stdio: ['ignore', 2, 'inherit', 'ipc'], env });
    this.proc.on('message', (m: ChildMessage) => this.onMessage(m));
    this.proc.on('error', (err) => this.fail(new Error(`bench ${role}: ${err.message}`, { cause: err })));
    this.exited = new Promise((resolve) => {
      // 'close' (not 'exit') comes after the IPC channel is drained, so a report is never lost.
      this.proc.on('close', (code, signal) => {
        if (code !== 0) this.fail(new Error(`bench ${role} exited with ${code ?? signal}`));
        else this.fail(new Error(`bench ${role} exited before reporting`));
        resolve();
      });
    });
  }

  expect<T extends ChildMessage['t']>(t: T, timeoutMs: number): Promise<Msg<T>> {
    const i = this.inbox.findIndex((m) => m.t === t);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0] as Msg<T>);
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`bench ${this.role}: no '${t}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        t,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Msg<T>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  send(m: { t: 'mark' } | { t: 'report' }): void {
    if (this.proc.connected) this.proc.send(m);
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }

  private onMessage(m: ChildMessage): void {
    if (m.t === 'error') {
      this.fail(new Error(`bench ${this.role}: ${m.message}`));
      return;
    }
    const w = this.waiter;
    if (w !== null && w.t === m.t) {
      this.waiter = null;
      w.resolve(m);
    } else {
      this.inbox.push(m);
    }
  }

  private fail(err: Error): void {
    if (this.failure !== null) return;
    this.failure = err;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(err);
  }
}

let socketSeq = 0;
/** ffnet listeners refuse socket paths in a directory others can write to, such as /tmp itself. */
let socketDir: string | undefined;
function socketPath(): string {
  if (socketDir === undefined) {
    const d = mkdtempSync(`${os.tmpdir()}/ffnet-bench-`);
    process.once('exit', () => rmSync(d, { recursive: true, force: true }));
    socketDir = d;
  }
  return `${socketDir}/s${process.pid}-${++socketSeq}.sock`;
}

let tlsDir: string | undefined;
/** The bench CA and server certificate, made at the first tls run and removed when the harness exits. */
function tlsEnv(): NodeJS.ProcessEnv {
  if (tlsDir === undefined) {
    const d = makeTlsDir();
    process.once('exit', () => rmSync(d, { recursive: true, force: true }));
    tlsDir = d;
  }
  return { ...process.env, [TLS_DIR_ENV]: tlsDir };
}

/**
 * The machine's CPU over the measuring window as the harness sees it: /proc/stat and both children's
 * /proc/PID/stat when the client starts measuring, and again when its window ends (a timer of the same
 * length, since the client reports only after draining and closing, which is not measured). Reading the
 * children's own ticks at the same instants keeps their CPU and the machine's on one clock. The core-speed probes
 * (core-probe.ts) are passed in with the children: their CPU is the run's own, not other work.
 */
class WindowSampler {
  private readonly start: CpuSample | null;
  private readonly pidsStart: (number | null)[];
  private readonly ours: Set<number>;
  private readonly tasksStart: Map<number, number> | null;
  private readonly t0 = performance.now();
  private readonly self0 = process.cpuUsage();
  private end: {
    sample: CpuSample | null;
    pids: (number | null)[];
    self: NodeJS.CpuUsage;
    tasks: Map<number, number> | null;
    seconds: number;
  } | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pids: (number | undefined)[],
    measureMs: number,
  ) {
    this.ours = new Set([process.pid, ...pids.filter((p): p is number => p !== undefined)]);
    this.tasksStart = readTaskTicks(this.ours);
    this.start = readCpuSample();
    this.pidsStart = pids.map(readPidTicks);
    // Unref'd: a run that fails before its window ends must not keep the harness waiting for this timer.
    this.timer = setTimeout(() => this.take(), measureMs).unref();
  }

  private take(): void {
    if (this.end !== null) return;
    const sample = readCpuSample();
    const pids = this.pids.map(readPidTicks);
    const self = process.cpuUsage(this.self0);
    const seconds = (performance.now() - this.t0) / 1000;
    this.end = { sample, pids, self, seconds, tasks: readTaskTicks(this.ours) };
  }

  /** null when /proc is missing or a child's ticks could not be read (nothing is then judged). */
  finish(): OtherCpu | null {
    clearTimeout(this.timer);
    this.take();
    const end = this.end!;
    if (this.start === null || end.sample === null) return null;
    let ours = ((end.self.user + end.self.system) / 1e6) * TICKS_PER_SEC;
    for (const [i, t0] of this.pidsStart.entries()) {
      const t1 = end.pids[i];
      if (t0 === null || t1 === null || t1 === undefined) return null;
      ours += t1 - t0;
    }
    const machineWide = otherCpu(this.start, end.sample, ours);
    if (this.tasksStart === null || end.tasks === null) return machineWide;
    return {
      otherCpu: Math.round((otherTaskCpu(this.tasksStart, end.tasks, end.seconds) + stealCpu(this.start, end.sample)) * 1000) / 1000,
      machineOtherCpu: machineWide.otherCpu,
      busyPerCore: machineWide.busyPerCore,
    };
  }
}

/** rdma:// needs an address on the interface rxe0 sits on: the VM's dummy0 (tools/rxe-vm/init). */
export const RDMA_HOST = process.env.FFNET_RDMA_HOST ?? '10.0.2.15';

export async function runOne(o: RunOptions): Promise<RunResult> {
  if (o.peer === 'ib_write_bw') return (await import('./ib-write-bw.js')).runIbWriteBw(o);
  const w = o.workload;
  const listen: Endpoint =
    o.transport === 'unix' || o.transport === 'shm'
      ? { transport: o.transport, path: socketPath() }
      : { transport: o.transport, host: o.transport === 'rdma' ? RDMA_HOST : '127.0.0.1', port: 0 };
  if ('path' in listen) rmSync(listen.path, { force: true });
  let script = CHILD;
  if (o.peer === BASELINE_PEER) {
    if (o.baselineDir === undefined) throw new Error(`${BASELINE_PEER} needs --baseline DIR`);
    script = o.transport === 'tls' ? baselineShimChild(o.baselineDir) : baselineChild(o.baselineDir);
  }
  const env = o.transport === 'tls' ? tlsEnv() : process.env;
  // The baseline's child knows itself as plain ffnet.
  const peer = o.peer === BASELINE_PEER ? 'ffnet' : o.peer;
  const base = { peer, workload: w.name, warmupMs: o.warmupMs, measureMs: o.measureMs };
  const profileName = o.peer.replace('@', '-');
  const flags = (role: string) =>
    o.profileDir === undefined
      ? []
      : ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`, `--cpu-prof-name=${profileName}-${w.name}-${o.transport}-${o.rep}-${role}.cpuprofile`];

  // Started (once) before the server, so their calibration does not compete with it.
  const probes = o.pin === null ? null : await coreProbes(o.pin);
  const server = new Child('server', { ...base, role: 'server', endpoint: listen }, o.pin?.server, flags('server'), script, env);
  let client: Child | null = null;
  try {
    const ready = await server.expect('ready', START_TIMEOUT_MS);
    client = new Child('client', { ...base, role: 'client', endpoint: ready.endpoint }, o.pin?.client, flags('client'), script, env);
    await client.expect('mark', START_TIMEOUT_MS + o.warmupMs);
    server.send({ t: 'mark' });
    const window = new WindowSampler([server.pid, client.pid, ...(probes?.pids ?? [])], o.measureMs);
    const speed = probes?.window(o.measureMs);
    const res = await client.expect('result', o.measureMs + SLACK_MS);
    const other = window.finish();
    const slow = (await speed) ?? null;
    server.send({ t: 'report' });
    const srv = await server.expect('report', SLACK_MS);
    await Promise.all([client.exited, server.exited]);

    const payloadBytes = w.payload === 'req' ? w.reqSize : w.payload === 'rsp' ? w.rspSize : (w.rdmaSize ?? 0);
    const result: RunResult = {
      peer: o.peer,
      workload: w.name,
      transport: o.transport,
      rep: o.rep,
      inflight: w.inflight,
      reqBytes: w.reqSize,
      rspBytes: w.rspSize,
      calls: res.calls,
      seconds: round(res.seconds, 3),
      callsPerSec: Math.round(res.calls / res.seconds),
      p50Us: round(res.p50Us, 1),
      p99Us: round(res.p99Us, 1),
      cpu: { client: res.cpu, server: srv.cpu },
      rssPeakMB: { client: res.rssPeakMB, server: srv.rssPeakMB },
      pin: o.pin,
      machine: o.machineId,
      attempt: o.attempt,
    };
    if (other !== null) {
      result.otherCpu = other.otherCpu;
      if (other.machineOtherCpu !== undefined) result.machineOtherCpu = other.machineOtherCpu;
      result.busyPerCore = other.busyPerCore;
    }
    if (slow !== null) Object.assign(result, slow);
    if (payloadBytes > 0) result.mbPerSec = round((res.calls * payloadBytes) / res.seconds / 1e6, 1);
    return result;
  } finally {
    client?.kill();
    server.kill();
    if ('path' in listen) rmSync(listen.path, { force: true });
  }
}
