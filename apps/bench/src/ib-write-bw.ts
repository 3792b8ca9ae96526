// W5's reference: perftest's ib_write_bw, server and client as separate processes on rxe0 (GID index 1, as
// tools/rxe-vm sets it up), 1 MiB writes, the same 8 in flight as ffnet's W5. Its "BW average" is MiB/s
// (2^20 B, perftest's own help says so); the result line carries 10^6 B like every other MB/s here.
import { type ChildProcess, spawn } from 'node:child_process';
import type { RunOptions, RunResult } from './run.js';
import { round } from './stats.js';

const DEVICE = process.env.FFNET_RDMA_DEVICE ?? 'rxe0';
const GID_INDEX = process.env.FFNET_RDMA_GID_INDEX ?? '1';
const BASE_PORT = 18_515;
let runSeq = 0;

interface Proc {
  proc: ChildProcess;
  out: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function start(args: string[]): Proc {
  const proc = spawn('ib_write_bw', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    proc.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    proc.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    proc.on('error', (e) => reject(new Error(`ib_write_bw: ${e.message} (is perftest on PATH?)`, { cause: e })));
    proc.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { proc, out };
}

/** The result row of ib_write_bw's report: bytes, iterations, peak and average MiB/s. */
export function parseIbWriteBw(text: string): { bytes: number; iterations: number; peakMiBs: number; avgMiBs: number } {
  const m = /^\s*(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+[\d.]+\s*$/m.exec(text);
  if (m === null) throw new Error(`ib_write_bw: no result row in its output:\n${text.slice(-800)}`);
  return { bytes: Number(m[1]), iterations: Number(m[2]), peakMiBs: Number(m[3]), avgMiBs: Number(m[4]) };
}

export async function runIbWriteBw(o: RunOptions): Promise<RunResult> {
  const w = o.workload;
  const size = w.rdmaSize ?? 0;
  // Duration mode (-D) measures for the same time as the node peers; perftest adds its own warm-up margin.
  const secs = String(Math.max(1, Math.round(o.measureMs / 1000)));
  const common = ['-d', DEVICE, '-x', GID_INDEX, '-s', String(size), '-t', String(w.inflight), '-D', secs, '-F', '-p', String(BASE_PORT + (++runSeq % 100))];
  const server = start(common);
  let client: Proc | null = null;
  try {
    // The server must be listening on its port before the client connects; it prints nothing useful until then.
    await new Promise((r) => setTimeout(r, 1500));
    client = start([...common, '127.0.0.1']);
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`ib_write_bw: no result within ${o.measureMs + 60_000} ms`)), o.measureMs + 60_000).unref(),
    );
    const [c, s] = await Promise.race([Promise.all([client.out, server.out]), timeout]);
    if (c.code !== 0 || s.code !== 0)
      throw new Error(`ib_write_bw exited with client ${c.code}, server ${s.code}: ${(c.stderr + s.stderr).trim().slice(-800)}`);
    const r = parseIbWriteBw(c.stdout);
    if (r.bytes !== size) throw new Error(`ib_write_bw: reported ${r.bytes}-byte messages, expected ${size}`);
    const mbPerSec = (r.avgMiBs * 1024 * 1024) / 1e6;
    const seconds = (r.iterations * size) / 1e6 / mbPerSec;
    const zero = { userMs: Number.NaN, sysMs: Number.NaN };
    return {
      peer: 'ib_write_bw',
      workload: w.name,
      transport: o.transport,
      rep: o.rep,
      inflight: w.inflight,
      reqBytes: w.reqSize,
      rspBytes: w.rspSize,
      calls: r.iterations,
      seconds: round(seconds, 3),
      callsPerSec: Math.round(r.iterations / seconds),
      mbPerSec: round(mbPerSec, 1),
      // perftest reports neither per-write latency nor CPU nor RSS in this mode.
      p50Us: Number.NaN,
      p99Us: Number.NaN,
      cpu: { client: zero, server: zero },
      rssPeakMB: { client: Number.NaN, server: Number.NaN },
      pin: null,
      machine: o.machineId,
      attempt: o.attempt,
    };
  } finally {
    for (const p of [client, server]) if (p !== null && p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
  }
}
