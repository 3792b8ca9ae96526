import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { verbsAvailable } from '@ffnet/device';
import { PROBE_INTERVAL_MS } from './core-probe.js';
import { baselineChild, defaultPinning, type Pinning } from './harness.js';
import { BASELINE_PEER, DEFAULT_PEERS, DEFAULT_TRANSPORTS, PEER_NAMES, type PeerName, TRANSPORT_NAMES, type TransportName } from './names.js';
import { DEFAULT_MAX_CORE_SLOWDOWN, DEFAULT_MAX_OTHER_CPU, DEFAULT_MAX_SLOWDOWN, DEFAULT_RETRIES } from './trust.js';
import { type RpcWorkload, WORKLOADS, workload } from './workloads.js';

export interface Options {
  quick: boolean;
  workloads: RpcWorkload[];
  transports: TransportName[];
  peers: PeerName[];
  reps: number;
  warmupMs: number;
  /** Overrides every workload's own measuring time when set. */
  measureMs: number | null;
  pin: Pinning | null;
  out: string;
  profileDir?: string;
  /** A built checkout whose ffnet runs as the `ffnet@baseline` peer. */
  baselineDir?: string;
  /** Cores of other work above which a run is contaminated; null: never judged (`--max-other-cpu off`). */
  maxOtherCpu: number | null;
  /** Core slowdown (core-probe.ts) above which a pinned run is contaminated; null: never judged (`--max-slowdown off`). */
  maxSlowdown: number | null;
  /** Core slowdown against the core's best, whatever ran on it; null: never judged (`--max-core-slowdown off`). */
  maxCoreSlowdown: number | null;
  /** Reruns of a contaminated run before its repetition is left contaminated. */
  retries: number;
}

export const USAGE = `usage: node dist/main.js [options]
  --quick               smoke run: 0.3 s warm-up, 1 s measure, 1 repetition (unless --reps)
  --workloads W1,W2     workloads to run (default: W1,W2,W3,W4, and W5 with --transports rdma)
  --transports tcp,unix,tls,rdma,shm  transports (default: tcp,unix; tls makes a throw-away CA with openssl;
                        rdma needs a verbs device: pnpm bench:rdma; shm is @ffnet/shm, ffnet only)
  --peers ffnet,raw-net,raw-tls,grpc-js,zeromq,ib_write_bw,ffnet-3fs   peers, alternated in this order
                        (default: the first five; raw-net and zeromq run over tcp and unix, raw-tls over tls;
                        ffnet-3fs is ffnet with envelope '3fs', run on W2)
  --reps N              repetitions per workload x transport (default 3)
  --warmup S            warm-up seconds (default 1)
  --measure S           measuring seconds for every workload (default: W1 5, others 3)
  --pin S,C | off       taskset CPU for server and client (default 0,1 when taskset works)
  --out FILE            results file (default apps/bench/results/latest.json)
  --profile DIR         run both children under --cpu-prof, profiles written to DIR
  --max-other-cpu X | off   a run during which other processes kept more than X cores busy is contaminated:
                        rerun, kept in the results, left out of the medians (default ${DEFAULT_MAX_OTHER_CPU})
  --max-slowdown X | off    a pinned run during which the server's or the client's core ran more than X times
                        slower than its best in this bench (a probe pinned to each core times a fixed loop in its
                        own CPU time every ${PROBE_INTERVAL_MS} ms) is contaminated, as above (default ${DEFAULT_MAX_SLOWDOWN})
  --retries N           reruns of a contaminated run (default ${DEFAULT_RETRIES})
  --baseline DIR        also run ffnet from DIR (a built checkout of another commit) as peer ffnet@baseline,
                        alternated with ffnet, and print current/baseline ratios
  --help`;

function list<T extends string>(raw: string | undefined, all: readonly T[], what: string, defaults: readonly T[] = all): T[] {
  if (raw === undefined) return [...defaults];
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const item of items) {
    if (!(all as readonly string[]).includes(item)) throw new Error(`unknown ${what} '${item}' (known: ${all.join(', ')})`);
  }
  if (items.length === 0) throw new Error(`--${what}s needs at least one value`);
  return items as T[];
}

function seconds(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined) return undefined;
  const s = Number(raw);
  if (!Number.isFinite(s) || s < 0) throw new Error(`--${name} needs a number of seconds, got '${raw}'`);
  return Math.round(s * 1000);
}

export function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      workloads: { type: 'string' },
      transports: { type: 'string' },
      peers: { type: 'string' },
      reps: { type: 'string' },
      warmup: { type: 'string' },
      measure: { type: 'string' },
      pin: { type: 'string' },
      out: { type: 'string' },
      profile: { type: 'string' },
      baseline: { type: 'string' },
      'max-other-cpu': { type: 'string' },
      'max-slowdown': { type: 'string' },
      'max-core-slowdown': { type: 'string' },
      retries: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) return 'help';
  const quick = values.quick === true;

  const transports = list(values.transports, TRANSPORT_NAMES, 'transport', DEFAULT_TRANSPORTS);
  const all = WORKLOADS.map((w) => w.name);
  const names = list(values.workloads, all, 'workload', transports.includes('rdma') ? all : all.filter((n) => n !== 'W5'));
  const workloads = names.map((n) => workload(n) as RpcWorkload);
  const reps = values.reps === undefined ? (quick ? 1 : 3) : Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps needs a positive integer, got '${values.reps}'`);

  let pin: Pinning | null;
  if (values.pin === undefined) pin = defaultPinning();
  else if (values.pin === 'off') pin = null;
  else {
    const [server, client, extra] = values.pin.split(',');
    if (!server || !client || extra !== undefined) throw new Error(`--pin needs 'S,C' (CPU lists for taskset) or 'off'`);
    pin = { server, client };
  }

  const peers = list(values.peers, PEER_NAMES, 'peer', DEFAULT_PEERS);
  let baselineDir: string | undefined;
  if (values.baseline !== undefined) {
    baselineDir = resolve(values.baseline);
    if (!existsSync(baselineChild(baselineDir))) {
      throw new Error(
        `--baseline ${values.baseline}: ${baselineChild(baselineDir)} is missing; DIR must be a built checkout ` +
          '(git worktree add DIR <commit> && cd DIR && pnpm install --offline && pnpm build)',
      );
    }
    // Right after ffnet, so the two builds run back to back and share the machine's drift.
    if (!peers.includes(BASELINE_PEER)) peers.splice(peers.indexOf('ffnet') + 1, 0, BASELINE_PEER);
  } else if (peers.includes(BASELINE_PEER)) {
    throw new Error(`peer ${BASELINE_PEER} needs --baseline DIR`);
  }

  const maxOtherCpu = limit(values['max-other-cpu'], DEFAULT_MAX_OTHER_CPU, 0, "--max-other-cpu needs a number of cores (e.g. 0.15) or 'off'");
  const maxSlowdown = limit(values['max-slowdown'], DEFAULT_MAX_SLOWDOWN, 1, "--max-slowdown needs a factor of at least 1 (e.g. 1.2) or 'off'");
  const maxCoreSlowdown = limit(
    values['max-core-slowdown'],
    DEFAULT_MAX_CORE_SLOWDOWN,
    1,
    "--max-core-slowdown needs a factor of at least 1 (e.g. 1.5) or 'off'",
  );
  const retries = values.retries === undefined ? DEFAULT_RETRIES : Number(values.retries);
  if (!Number.isInteger(retries) || retries < 0) throw new Error(`--retries needs a whole number >= 0, got '${values.retries}'`);

  const opts: Options = {
    quick,
    workloads,
    transports,
    peers,
    reps,
    warmupMs: seconds(values.warmup, 'warmup') ?? (quick ? 300 : 1000),
    measureMs: seconds(values.measure, 'measure') ?? (quick ? 1000 : null),
    pin,
    out: values.out ?? fileURLToPath(new URL('../results/latest.json', import.meta.url)),
    maxOtherCpu,
    maxSlowdown,
    maxCoreSlowdown,
    retries,
  };
  if (values.profile !== undefined) opts.profileDir = values.profile;
  if (baselineDir !== undefined) opts.baselineDir = baselineDir;
  return opts;
}

/**
 * rdma:// and W5 need a verbs device, which only the rxe VM (`pnpm bench:rdma`) has here: without one they are
 * refused with the reason, never faked. Returns the refusal, or undefined when they can run (or are not asked for).
 */
export function rdmaRefusal(o: Options): string | undefined {
  const wants = [...(o.transports.includes('rdma') ? ['--transports rdma'] : []), ...(o.workloads.some((w) => w.name === 'W5') ? ['W5'] : [])];
  if (wants.length === 0) return undefined;
  const v = verbsAvailable();
  if (v.available) return undefined;
  return `bench: ${wants.join(' and ')} ${wants.length > 1 ? 'need' : 'needs'} a verbs (RDMA) device, and this machine has none (${v.reason}${v.detail ? `: ${v.detail}` : ''}); run them in the Soft-RoCE VM with \`pnpm bench:rdma\``;
}

/**
 * With a baseline, ffnet and ffnet@baseline swap places on every other repetition (ABBA): whichever runs second
 * inherits the first one's heat (CPU frequency, page cache, a neighbour's burst), so neither build always gets it.
 */
export function repOrder(peers: PeerName[], rep: number): PeerName[] {
  const a = peers.indexOf('ffnet');
  const b = peers.indexOf(BASELINE_PEER);
  if (rep % 2 === 1 || a < 0 || b < 0) return peers;
  const order = [...peers];
  order[a] = BASELINE_PEER;
  order[b] = 'ffnet';
  return order;
}

/** A judging limit: `off` (null), absent (the default), or a number of at least `min`. */
function limit(raw: string | undefined, fallback: number | null, min: number, usage: string): number | null {
  if (raw === 'off') return null;
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v < min) throw new Error(`${usage}, got '${raw}'`);
  return v;
}
