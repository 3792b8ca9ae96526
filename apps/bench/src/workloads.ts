// Workload catalogue: what each run does and which figure decides it. The numbers mirror
// shared/bench/WORKLOADS.md; everything else (harness, summary) reads them from here.

import type { PeerName, TransportName } from './names.js';

export type WorkloadName = 'W1' | 'W2' | 'W3' | 'W4' | 'W5';
export type Metric = 'p50Us' | 'callsPerSec' | 'mbPerSec';

/**
 * Transports a target can name. `shm` (same-host shared memory, issue 15) is named here before the bench can run
 * it, so that its target needs no change when the transport arrives; until then no run has it and its row does
 * not print.
 */
export type TargetTransport = TransportName | 'shm';

/**
 * One target: ffnet over `transport` against peer `vs` over `vsTransport` (the same transport when absent),
 * ffnet / peer on the workload's metric compared with `op` to `ratio`. `source` names where the figure is set.
 */
export interface Target {
  workload: WorkloadName;
  transport: TargetTransport;
  vs: Exclude<PeerName, 'ffnet'>;
  vsTransport?: TargetTransport;
  op: '<=' | '>=';
  ratio: number;
  source: string;
}

/** A request/response workload; W5's payload moves by one-sided RDMA WRITE instead of in the messages. */
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
  /** Which payload counts towards MB/s (W3 the request, W4 the response, W5 the RDMA-written buffer). */
  payload?: 'req' | 'rsp' | 'rdma';
  /** W5: bytes the server RDMA-writes into the client's registered buffer per call. */
  rdmaSize?: number;
  /** Transports it runs over, when not all of them. */
  transports?: readonly TransportName[];
}

const ISSUE15 = 'issue 15';
const WORKLOADS_MD = 'WORKLOADS.md';
const ISSUE12 = 'issue 12 (WORKLOADS.md, W1-W4 over TLS)';

function both(t: Omit<Target, 'transport'>): Target[] {
  return [
    { ...t, transport: 'tcp' },
    { ...t, transport: 'unix' },
  ];
}

/**
 * Every target the tables judge. Over tcp and unix, issue 15's ratios to raw-net and zeromq.js replace
 * WORKLOADS.md's older raw-net ones (W1 <= 1.15x, W2 >= 0.6x); the grpc-js ratios stay WORKLOADS.md's. Over
 * tls only the TLS targets apply. The shm rows compare ffnet over shared memory with raw-net over unix.
 */
export const TARGETS: readonly Target[] = [
  ...both({ workload: 'W1', vs: 'raw-net', op: '<=', ratio: 1.1, source: ISSUE15 }),
  ...both({ workload: 'W1', vs: 'grpc-js', op: '<=', ratio: 0.35, source: WORKLOADS_MD }),
  ...both({ workload: 'W2', vs: 'raw-net', op: '>=', ratio: 0.75, source: ISSUE15 }),
  ...both({ workload: 'W2', vs: 'grpc-js', op: '>=', ratio: 40, source: WORKLOADS_MD }),
  // issue 14 asks the 3fs envelope for at least 0.9x the ffnet envelope, i.e. ffnet / ffnet-3fs <= 1.11 (1/0.9).
  ...both({ workload: 'W2', vs: 'ffnet-3fs', op: '<=', ratio: 1.11, source: 'issue 14' }),
  { workload: 'W2', transport: 'tls', vs: 'grpc-js', op: '>=', ratio: 30, source: ISSUE12 },
  ...(['W3', 'W4'] as const).flatMap((workload) => [
    ...both({ workload, vs: 'raw-net', op: '>=', ratio: 0.9, source: ISSUE15 }),
    ...both({ workload, vs: 'zeromq', op: '>=', ratio: 1.2, source: ISSUE15 }),
    ...both({ workload, vs: 'grpc-js', op: '>=', ratio: 8, source: WORKLOADS_MD }),
    { workload, transport: 'tls', vs: 'raw-tls', op: '>=', ratio: 0.8, source: ISSUE12 } satisfies Target,
    { workload, transport: 'shm', vs: 'raw-net', vsTransport: 'unix', op: '>=', ratio: 2, source: ISSUE15 } satisfies Target,
  ]),
  { workload: 'W5', transport: 'rdma', vs: 'ib_write_bw', op: '>=', ratio: 0.8, source: `${WORKLOADS_MD}, issue 15` },
];

/** The targets that judge ffnet running `w` over `transport`. */
export function targetsFor(w: RpcWorkload, transport: string): Target[] {
  return TARGETS.filter((t) => t.workload === w.name && t.transport === transport);
}

export type Workload = RpcWorkload;

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
  },
  {
    kind: 'rpc',
    name: 'W5',
    title: 'one-sided: server RDMA-writes into 1 MiB client buffers, 8 in flight, vs ib_write_bw',
    reqSize: 0,
    rspSize: 0,
    rdmaSize: MiB,
    inflight: 8,
    measureMs: 3000,
    metric: 'mbPerSec',
    payload: 'rdma',
    transports: ['rdma'],
  },
];

/** Why `peer` does not run `w` over `transport` (printed as a note, not a failure), or undefined when it does. */
export function skipReason(peer: PeerName, w: RpcWorkload, transport: TransportName): string | undefined {
  if (w.transports !== undefined && !w.transports.includes(transport)) return `${w.name} runs over ${w.transports.join(',')} only`;
  if (peer === 'ib_write_bw') return w.name === 'W5' ? undefined : 'ib_write_bw is the W5 reference only';
  if (transport === 'rdma' && peer !== 'ffnet' && peer !== 'ffnet@baseline') return `${peer} has no rdma transport`;
  // Same-host shared memory is @ffnet/shm's: the other peers (and a baseline from before it) have no shm transport.
  if (transport === 'shm' && peer !== 'ffnet') return `${peer} has no shm transport`;
  if (peer === 'ffnet-3fs' && w.name !== 'W2') return 'ffnet-3fs is measured on W2 (issue 14)';
  if (peer === 'raw-tls' && transport !== 'tls') return 'raw-tls runs over tls only (raw-net is the raw peer of tcp and unix)';
  if (peer === 'raw-net' && transport === 'tls') return 'over tls the raw peer is raw-tls';
  if (peer === 'zeromq' && transport !== 'tcp' && transport !== 'unix') return 'zeromq runs over tcp and unix (ipc://) only';
  return undefined;
}

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
