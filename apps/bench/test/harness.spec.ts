// Runs the real CLI (dist/, built by `tsc -b` / turbo before tests) in short smoke runs and checks
// what it reports. Functional only: no assertion on how fast anything is.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32cImplementation } from '@ffnet/serde';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * These runs count their result lines exactly, so contaminated runs must not be rerun here: the shared test
 * machine would add lines. Contamination and reruns have their own tests (trust.spec.ts, and the zeromq smoke
 * below, which judges every run).
 */
const EXACT = ['--max-other-cpu', 'off', '--max-slowdown', 'off', '--max-core-slowdown', 'off'];
const CLI_TIMEOUT_MS = 120_000;

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ffnet-bench-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Cli {
  code: number | null;
  lines: Record<string, unknown>[];
  stdout: string;
  stderr: string;
  out: string;
}

function cli(args: string[]): Promise<Cli> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build apps/bench first (npx tsc -b)`);
  const out = join(dir, `${args.join('_').replace(/[^\w]+/g, '-')}.json`);
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args, '--out', out], { timeout: CLI_TIMEOUT_MS }, (err, stdout, stderr) => {
      const lines = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, lines, stdout, stderr, out });
    });
  });
}

function expectRunShape(r: Record<string, unknown>, workload: string, transport: string): void {
  expect(r).toMatchObject({ workload, transport });
  for (const k of ['calls', 'seconds', 'callsPerSec', 'p50Us', 'p99Us']) expect(typeof r[k]).toBe('number');
  expect(r.calls as number).toBeGreaterThan(0);
  expect(r.seconds as number).toBeGreaterThan(0.5);
  expect(r.p99Us as number).toBeGreaterThanOrEqual(r.p50Us as number);
  const cpu = r.cpu as Record<string, Record<string, number>>;
  for (const side of ['client', 'server']) {
    expect(typeof cpu[side]?.userMs).toBe('number');
    expect(typeof cpu[side]?.sysMs).toBe('number');
    expect(cpu[side]!.userMs! + cpu[side]!.sysMs!).toBeGreaterThan(0);
  }
  const rss = r.rssPeakMB as Record<string, number>;
  expect(rss.client).toBeGreaterThan(10);
  expect(rss.server).toBeGreaterThan(10);
  expect('pin' in r).toBe(true);
  // Where it ran and what else ran: a line read alone names its machine.
  expect(r.machine).toMatch(/^[0-9a-f]{8}$/);
  expect(r.attempt).toBe(1);
  expect(r.otherCpu as number).toBeGreaterThanOrEqual(0);
  expect((r.busyPerCore as number[]).length).toBe(cpus().length);
  // Pinned runs carry the core-speed probe's verdict per side; unpinned ones nothing (core-probe.spec.ts).
  if (r.pin === null) {
    expect('coreSlowdown' in r).toBe(false);
  } else {
    const slow = r.coreSlowdown as Record<string, number>;
    for (const side of ['server', 'client']) {
      expect(slow[side]).toBeGreaterThanOrEqual(1);
      expect(slow[side]).toBeLessThan(10);
    }
    expect(r.probeCpuMs as number).toBeGreaterThan(0);
  }
}

// Each test starts several pairs of Node processes: on the shared 2-core machine (load 9-12 with other
// engineers' builds, benches and a qemu VM) a 4-run test took over 30 s. Generous, and no speed is asserted.
describe('bench CLI', { timeout: 2 * CLI_TIMEOUT_MS }, () => {
  it('W1 over tcp: one JSON line per peer, a summary with ratios and a results file', async () => {
    const peers = ['ffnet', 'raw-net'];
    const r = await cli(['--quick', '--workloads', 'W1', '--transports', 'tcp', '--peers', peers.join(','), ...EXACT]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines.map((l) => l.peer)).toEqual(peers);
    for (const line of r.lines) {
      expectRunShape(line, 'W1', 'tcp');
      expect(line).toMatchObject({ inflight: 1, reqBytes: 64, rspBytes: 64 });
      expect('mbPerSec' in line).toBe(false);
    }
    expect(r.stdout).toContain('Medians');

    const file = JSON.parse(readFileSync(r.out, 'utf8'));
    expect(file.runs).toEqual(r.lines);
    expect(file.failures).toEqual([]);
    expect(file.meta).toMatchObject({ quick: true, reps: 1, warmupMs: 300, measureMs: { W1: 1000 }, maxOtherCpu: null, retries: 2 });
    expect(file.meta.machine).toMatchObject({ id: r.lines[0]!.machine, cpus: cpus().length, kernel: expect.any(String), hostname: expect.any(String) });
    expect(file.meta.machine.totalMemMB).toBeGreaterThan(0);
    expect(file.meta.crc32c).toEqual(crc32cImplementation());
    expect(r.stdout).toContain(`machine: ${file.meta.machine.id} = `);
    // Not judged (--max-other-cpu off): no run is marked either way, and none was rerun.
    for (const line of r.lines) expect('contaminated' in line).toBe(false);
    expect(file.summary.medians.map((m: { peer: string }) => m.peer)).toEqual(peers);
    // ffnet ran next to raw-net, so there is exactly one ratio row, judged against the W1 target.
    expect(file.summary.ratios).toHaveLength(1);
    expect(file.summary.ratios[0].against[0]).toMatchObject({ peer: 'raw-net', target: { ratio: 1.1, op: '<=', source: 'issue 15' } });
    expect(r.stdout).toMatch(/W1\s+tcp\s+raw-net\s+p50Us/);
  });

  it('W4 over unix reports MB/s of the 1 MiB responses', async () => {
    const r = await cli([
      '--workloads',
      'W4',
      '--transports',
      'unix',
      '--peers',
      'ffnet,raw-net',
      '--reps',
      '1',
      '--warmup',
      '0.1',
      '--measure',
      '0.6',
      ...EXACT,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines.map((l) => l.peer)).toEqual(['ffnet', 'raw-net']);
    for (const line of r.lines) {
      expectRunShape(line, 'W4', 'unix');
      expect(line).toMatchObject({ inflight: 8, rspBytes: 1024 * 1024 });
      expect(line.mbPerSec as number).toBeCloseTo(((line.calls as number) * 1024 * 1024) / (line.seconds as number) / 1e6, -1);
    }
  });

  it('--baseline runs the ffnet of another built checkout beside this one and compares them', async () => {
    // This checkout is built (dist/ is what the suite runs), so it serves as its own baseline: the mechanism
    // (the other checkout's child, its own packages, the comparison table) is what is under test, not a speed.
    const self = fileURLToPath(new URL('../../..', import.meta.url));
    const r = await cli(['--quick', '--workloads', 'W2', '--transports', 'tcp', '--peers', 'ffnet', '--baseline', self, '--reps', '2', ...EXACT]);
    expect(r.code, r.stderr).toBe(0);
    // ABBA: the second repetition runs the baseline first.
    expect(r.lines.map((l) => `${l.peer}#${l.rep}`)).toEqual(['ffnet#1', 'ffnet@baseline#1', 'ffnet@baseline#2', 'ffnet#2']);
    for (const line of r.lines) expectRunShape(line, 'W2', 'tcp');
    const file = JSON.parse(readFileSync(r.out, 'utf8'));
    expect(file.meta.baseline.dir).toBe(self.replace(/\/$/, ''));
    expect(file.summary.baseline).toHaveLength(1);
    expect(file.summary.baseline[0]).toMatchObject({ workload: 'W2', transport: 'tcp', metric: 'callsPerSec', reps: 2 });
    expect(file.summary.baseline[0].ratio).toBeGreaterThan(0);
    expect(r.stdout).toContain('ffnet against ffnet@baseline');
  });

  it('W2 and W4 over tls: ffnet, raw-tls and grpc-js with one throw-away CA, judged by the tls targets', async () => {
    const tlsDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith('ffnet-bench-tls-'));
    const before = new Set(tlsDirs());
    const r = await cli(['--workloads', 'W2,W4', '--transports', 'tls', '--reps', '1', '--warmup', '0.3', '--measure', '1.5', ...EXACT]);
    expect(r.code, r.stderr).toBe(0);
    // raw-net is a default peer but not a tls one: it is skipped with a note, never run.
    expect(r.stderr).toMatch(/skipping raw-net W2 tls: over tls the raw peer is raw-tls/);
    expect(r.lines.map((l) => `${l.workload}:${l.peer}`)).toEqual(['W2:ffnet', 'W2:raw-tls', 'W2:grpc-js', 'W4:ffnet', 'W4:raw-tls', 'W4:grpc-js']);
    for (const line of r.lines) expectRunShape(line, line.workload as string, 'tls');
    for (const line of r.lines.filter((l) => l.workload === 'W4')) {
      expect(line).toMatchObject({ inflight: 8, rspBytes: 1024 * 1024 });
      expect(line.mbPerSec as number).toBeGreaterThan(0);
    }
    const file = JSON.parse(readFileSync(r.out, 'utf8'));
    expect(file.failures).toEqual([]);
    const against = (w: string) => file.summary.ratios.find((x: { workload: string }) => x.workload === w).against;
    expect(against('W2')).toEqual([expect.objectContaining({ peer: 'grpc-js', target: expect.objectContaining({ ratio: 30, op: '>=' }) })]);
    expect(against('W4')).toEqual([expect.objectContaining({ peer: 'raw-tls', target: expect.objectContaining({ ratio: 0.8, op: '>=' }) })]);
    // The certificates (keys included) are gone once the harness has exited.
    expect(tlsDirs().filter((d) => !before.has(d))).toEqual([]);
  });

  it("--baseline over tls runs this harness's child with the other checkout's @ffnet packages", async () => {
    const self = fileURLToPath(new URL('../../..', import.meta.url));
    // Only this run's own directories count: other runs on the machine may hold theirs meanwhile.
    const baselineDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith('ffnet-bench-baseline-'));
    const before = new Set(baselineDirs());
    const r = await cli(['--quick', '--workloads', 'W1', '--transports', 'tls', '--peers', 'ffnet', '--baseline', self, '--reps', '2', ...EXACT]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines.map((l) => `${l.peer}#${l.rep}`)).toEqual(['ffnet#1', 'ffnet@baseline#1', 'ffnet@baseline#2', 'ffnet#2']);
    for (const line of r.lines) expectRunShape(line, 'W1', 'tls');
    const file = JSON.parse(readFileSync(r.out, 'utf8'));
    expect(file.summary.baseline[0]).toMatchObject({ workload: 'W1', transport: 'tls', metric: 'p50Us', reps: 2 });
    expect(baselineDirs().filter((d) => !before.has(d))).toEqual([]);
  });

  it('zeromq W2 over tcp and unix: every run judged for contamination, replies checked, calls counted', async () => {
    const r = await cli(['--quick', '--workloads', 'W2', '--transports', 'tcp,unix', '--peers', 'zeromq', '--retries', '0']);
    // A reply of the wrong size fails the run, which would show as FAILED and exit status 1.
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('FAILED');
    expect(r.lines.map((l) => `${l.peer}:${l.transport}`)).toEqual(['zeromq:tcp', 'zeromq:unix']);
    for (const line of r.lines) {
      expectRunShape(line, 'W2', line.transport as string);
      expect(line).toMatchObject({ inflight: 128, reqBytes: 64, rspBytes: 64 });
      expect(typeof line.contaminated).toBe('boolean');
      const slow = line.coreSlowdown as { server: number; client: number } | undefined;
      const row = line.rowSlowdown as { server: number; client: number } | undefined;
      // Each row ran one window here: against its row it is its own best.
      if (slow !== undefined) expect(row).toEqual({ server: 1, client: 1 });
      // Against the core's own best nothing is judged by default (--max-core-slowdown off).
      const slowCore = row !== undefined && Math.max(row.server, row.client) > 1.2;
      expect(line.contaminated).toBe((line.otherCpu as number) > 0.15 || slowCore);
      expect(line.contaminatedBy ?? []).toEqual([...((line.otherCpu as number) > 0.15 ? ['otherCpu'] : []), ...(slowCore ? ['slowCore'] : [])]);
    }
    expect(JSON.parse(readFileSync(r.out, 'utf8')).meta).toMatchObject({ maxOtherCpu: 0.15, maxSlowdown: 1.2, maxCoreSlowdown: null });
    expect(r.stdout).toMatch(/W2\s+tcp\s+zeromq\s+\d\/1\s/);
    expect(r.stdout).toMatch(/W2\s+unix\s+zeromq\s+\d\/1\s/);
  });

  it('--pin off: no probe, no core slowdown, nothing judged by it', async () => {
    const r = await cli(['--quick', '--workloads', 'W2', '--transports', 'tcp', '--peers', 'ffnet', '--pin', 'off', '--max-other-cpu', 'off']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines).toHaveLength(1);
    expectRunShape(r.lines[0]!, 'W2', 'tcp');
    expect(r.lines[0]).toMatchObject({ pin: null });
    for (const k of ['coreSlowdown', 'coreSlowdownMax', 'probeCpuMs', 'contaminated']) expect(k in r.lines[0]!).toBe(false);
    expect(r.stdout).toMatch(/W2\s+tcp\s+ffnet\s+1\/1\s.*\s-\s+\d+\/\d+\s+ok/);
  });

  it('zeromq runs over tcp and unix only', async () => {
    const r = await cli(['--quick', '--workloads', 'W1', '--transports', 'tls', '--peers', 'zeromq', ...EXACT]);
    expect(r.stderr).toMatch(/skipping zeromq W1 tls: zeromq runs over tcp and unix \(ipc:\/\/\) only/);
    expect(r.lines).toHaveLength(0);
  });

  it('refuses W5 and rdma:// without a verbs device instead of faking them, and rejects unknown flags', async () => {
    // This suite runs outside the rxe VM (the VM runs them through pnpm bench:rdma), where verbs have no device.
    for (const args of [
      ['--workloads', 'W5'],
      ['--transports', 'rdma'],
    ]) {
      const r = await cli(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/needs? a verbs \(RDMA\) device.*pnpm bench:rdma/);
      expect(r.lines).toHaveLength(0);
    }
    const bad = await cli(['--peers', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown peer 'nope'/);
  });
});
