// Workload catalogue: what each run does and which figure decides it. The numbers mirror
// shared/bench/WORKLOADS.md; everything else (harness, summary) reads them from here.

export type WorkloadName = 'W1' | 'W2' | 'W3' | 'W4' | 'W5';
export type Metric = 'p50Us' | 'callsPerSec' | 'mbPerSec';

export interface Target {
  /** ffnet / peer, compared with `op`. */
  ratio: number;
  op: '<=' | '>=';
}

/** A request/response workload run over a byte-stream transport (tcp, unix). */
export interface RpcWorkload {
  kind: 'rpc';
  name: WorkloadName;
  title: string;
  reqSize: number;
  rspSize: number;
  inflight: number;
  /** Default measuring time; `--measure` and `--quick` override it. */
  measureMs: number;
  metric: Metric;
  /** Which side's payload counts towards MB/s (W3 the request, W4 the response). */
  payload?: 'req' | 'rsp';
  targets: { 'raw-net': Target; 'grpc-js': Target };
}

/**
 * A workload that needs machinery which does not exist yet. It is listed so that the CLI can say
 * why it does not run, and so that adding its runner means filling in a kind, not restructuring.
 */
export interface PendingWorkload {
  kind: 'pending';
  name: WorkloadName;
  title: string;
  reason: string;
}

export type Workload = RpcWorkload | PendingWorkload;

const MiB = 1024 * 1024;

export const WORKLOADS: readonly Workload[] = [
  {
    kind: 'rpc',
    name: 'W1',
    title: 'latency: 64 B request / 64 B response, 1 in flight',
    reqSize: 64,
    rspSize: 64,
    inflight: 1,
    measureMs: 5000,
    metric: 'p50Us',
    targets: { 'raw-net': { ratio: 1.15, op: '<=' }, 'grpc-js': { ratio: 0.35, op: '<=' } },
  },
  {
    kind: 'rpc',
    name: 'W2',
    title: 'small throughput: 64 B calls, 128 in flight on one connection',
    reqSize: 64,
    rspSize: 64,
    inflight: 128,
    measureMs: 3000,
    metric: 'callsPerSec',
    targets: { 'raw-net': { ratio: 0.6, op: '>=' }, 'grpc-js': { ratio: 40, op: '>=' } },
  },
  {
    kind: 'rpc',
    name: 'W3',
    title: 'bulk request: 1 MiB request / 64 B response, 8 in flight',
    reqSize: MiB,
    rspSize: 64,
    inflight: 8,
    measureMs: 3000,
    metric: 'mbPerSec',
    payload: 'req',
    targets: { 'raw-net': { ratio: 0.9, op: '>=' }, 'grpc-js': { ratio: 8, op: '>=' } },
  },
  {
    kind: 'rpc',
    name: 'W4',
    title: 'bulk response: 64 B request / 1 MiB response, 8 in flight',
    reqSize: 64,
    rspSize: MiB,
    inflight: 8,
    measureMs: 3000,
    metric: 'mbPerSec',
    payload: 'rsp',
    targets: { 'raw-net': { ratio: 0.9, op: '>=' }, 'grpc-js': { ratio: 8, op: '>=' } },
  },
  {
    kind: 'pending',
    name: 'W5',
    title: 'one-sided: server RDMA-writes into 1 MiB client buffers, 8 in flight, vs ib_write_bw',
    reason:
      'needs the RDMA transport (packages/device, connect, transport) and runs inside the rxe VM; not implemented yet',
  },
];

export function workload(name: string): Workload | undefined {
  return WORKLOADS.find((w) => w.name === name);
}

/** Fills a payload with a non-constant pattern so that nothing along the way can shortcut zeros. */
export function payload(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

/**
 * The server side of every peer answers the same way: echo when request and response have the same
 * size (W1, W2), otherwise a prepared response of the workload's size (W3, W4).
 */
export function responder(w: RpcWorkload): (req: Buffer) => Buffer {
  if (w.reqSize === w.rspSize) return echo;
  const rsp = payload(w.rspSize);
  return () => rsp;
}

function echo(req: Buffer): Buffer {
  return req;
}
