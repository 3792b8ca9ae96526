import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type AuthRequest, Client, CoreService, EchoService, implement, Server, type ServerStats, staticToken } from '@ffnet/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function ffnet(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { timeout: 20_000, env: { ...process.env, FFNET_TOKEN: '', ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The table row of one method: calls, errors, p50, p99. */
function row(stdout: string, name: string): string[] | undefined {
  const line = stdout.split('\n').find((l) => l.startsWith(`${name} `));
  return line?.trim().split(/\s{2,}/);
}

/** A latency as the table prints it; servers with per-method histograms (all of them now) report one. */
const LATENCY = /^\d[\d.]* m?s$/;

describe('ffnet stats against ffnet serve', () => {
  let child: ChildProcessWithoutNullStreams;
  let address: string;
  let exited: Promise<number | null>;

  beforeAll(async () => {
    child = spawn(process.execPath, [MAIN, 'serve', '--tcp', '127.0.0.1:0'], { env: { ...process.env, FFNET_TOKEN: '' } });
    exited = new Promise((r) => child.once('exit', (code) => r(code)));
    address = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c;
        if (/^ready$/m.test(out)) resolve(/^listening (\S+)/m.exec(out)![1]!);
      });
      void exited.then((code) => reject(new Error(`ffnet serve exited with ${code}: ${out}`)));
    });
    // Two good calls and one the handler fails (InvalidArg): what the table must count.
    const client = new Client({ timeoutMs: 5000 });
    try {
      const core = client.stub(CoreService, address);
      await client.stub(EchoService, address).echo({ str: 'a' });
      await client.stub(EchoService, address).echo({ str: 'b' });
      await expect(core.getConfig({ configKey: 'no.such.key' })).rejects.toMatchObject({ code: 3 });
    } finally {
      await client.stop();
    }
  });
  afterAll(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('prints calls and errors per method, latency where the server reports it', async () => {
    const r = await ffnet(['stats', address]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(new RegExp(`^${address}  uptime [\\d.]+ s  connections \\d+  in flight \\d+$`));
    expect(r.stdout.split('\n')[1]).toMatch(/^method\s+calls\s+errors\s+p50\s+p99$/);
    const echo = row(r.stdout, 'Echo.echo');
    expect(echo?.slice(0, 3)).toEqual(['Echo.echo', '2', '0']);
    expect(echo?.[3]).toMatch(LATENCY);
    expect(echo?.[4]).toMatch(LATENCY);
    expect(row(r.stdout, 'Core.getConfig')?.slice(0, 3)).toEqual(['Core.getConfig', '1', '1']);
    expect(row(r.stdout, 'Core.shutdown')).toEqual(['Core.shutdown', '0', '0', '-', '-']);
  });

  it('--json prints one object with a row per method', async () => {
    const r = await ffnet(['stats', address.slice('tcp://'.length), '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { address: string; uptimeMs: number; methods: { method: string; calls: number; errors: number }[] };
    expect(report.address).toBe(address);
    expect(report.uptimeMs).toBeGreaterThan(0);
    expect(report.methods.find((m) => m.method === 'Echo.echo')).toMatchObject({ calls: 2, errors: 0 });
    expect(report.methods.find((m) => m.method === 'Core.getConfig')).toMatchObject({ calls: 1, errors: 1 });
    expect(report.methods.map((m) => m.method)).toEqual([...report.methods.map((m) => m.method)].sort());
  });

  it('--watch refreshes until SIGINT, then exits 0', async () => {
    const w = spawn(process.execPath, [MAIN, 'stats', address, '--watch', '150', '--json']);
    const done = new Promise<number | null>((r) => w.once('exit', (code) => r(code)));
    const lines: string[] = [];
    let buf = '';
    await new Promise<void>((resolve, reject) => {
      w.stdout.on('data', (c: Buffer) => {
        buf += c;
        const parts = buf.split('\n');
        buf = parts.pop()!;
        lines.push(...parts);
        if (lines.length >= 3) resolve();
      });
      void done.then((code) => reject(new Error(`stats --watch exited with ${code} after ${lines.length} lines`)));
    });
    w.kill('SIGINT');
    expect(await done).toBe(0);
    // Each refresh is a new Core.stats call, and the server counts it.
    const statsCalls = lines.map(
      (l) => (JSON.parse(l) as { methods: { method: string; calls: number }[] }).methods.find((m) => m.method === 'Core.stats')!.calls,
    );
    for (let i = 1; i < statsCalls.length; i++) expect(statsCalls[i]).toBeGreaterThan(statsCalls[i - 1]!);
  });

  it('a bare --watch uses the default period, and usage mistakes exit 2', async () => {
    const w = spawn(process.execPath, [MAIN, 'stats', '--watch', address]);
    const done = new Promise<number | null>((r) => w.once('exit', (code) => r(code)));
    await new Promise<void>((resolve) => w.stdout.once('data', () => resolve()));
    w.kill('SIGINT');
    expect(await done).toBe(0);
    const tooFast = await ffnet(['stats', address, '--watch', '5']);
    expect(tooFast.code).toBe(2);
    expect(tooFast.stderr).toContain('--watch needs an integer >= 100');
    expect((await ffnet(['stats'])).code).toBe(2);
    expect((await ffnet(['stats', address, '--bogus'])).code).toBe(2);
    expect((await ffnet(['stats', address, '--token', ''])).code).toBe(2);
    const help = await ffnet(['--help']);
    expect(help.stdout).toMatch(/^ {2}stats {2,}calls, errors and latency per method/m);
  });
});

describe('ffnet stats against servers it does not control', () => {
  it('prints p50 and p99 from stats.methods[key].latencyMs when the server reports it, `-` where it does not', async () => {
    // A Core whose stats carry chosen latencies, one method without the field (a server from before it), and the
    // real field of a method nobody called (count 0).
    const latency = {
      'Echo.echo': { count: 40, p50: 0.25, p90: 0.8, p99: 2.5, max: 9 },
      'Core.stats': { count: 1, p50: 1250, p90: 1250, p99: 1250, max: 1250 },
    };
    const server = new Server({ builtins: false, groups: [{ networkType: 'tcp', listener: { host: '127.0.0.1' } }] });
    const echo = implement(EchoService, { echo: (_ctx, req) => req });
    const core = implement(CoreService, {
      echo: (_ctx, req) => req,
      getConfig: () => ({ config: '{}' }),
      shutdown: () => ({}),
      stats: (): ServerStats => {
        const s = server.stats();
        const methods = Object.fromEntries(
          Object.entries(s.methods).map(([k, m]) => {
            if (k in latency) return [k, { ...m, latencyMs: latency[k as keyof typeof latency] }];
            if (k === 'Core.getConfig') {
              const { latencyMs: _, ...older } = m;
              return [k, older];
            }
            return [k, m];
          }),
        );
        // What a server from before per-method latency answers for getConfig: the type no longer allows it.
        return { ...s, methods } as unknown as ServerStats;
      },
    });
    server.addService(echo);
    server.addService(core);
    await server.start();
    try {
      const address = server.addresses[0]!;
      const r = await ffnet(['stats', address]);
      expect(r.code).toBe(0);
      expect(row(r.stdout, 'Echo.echo')).toEqual(['Echo.echo', '0', '0', '0.250 ms', '2.50 ms']);
      expect(row(r.stdout, 'Core.stats')).toEqual(['Core.stats', '1', '0', '1.25 s', '1.25 s']);
      expect(row(r.stdout, 'Core.getConfig')).toEqual(['Core.getConfig', '0', '0', '-', '-']);
      expect(server.stats().methods['Core.shutdown']!.latencyMs.count).toBe(0);
      expect(row(r.stdout, 'Core.shutdown')).toEqual(['Core.shutdown', '0', '0', '-', '-']);
      const j = await ffnet(['stats', address, '--json']);
      const methods = (JSON.parse(j.stdout) as { methods: { method: string; latencyMs: unknown }[] }).methods;
      expect(methods.find((m) => m.method === 'Echo.echo')!.latencyMs).toEqual(latency['Echo.echo']);
      expect(methods.find((m) => m.method === 'Core.getConfig')!.latencyMs).toBeNull();
    } finally {
      await server.stop();
    }
  });

  describe('whose Core wants an admin identity (the server default)', () => {
    const users: Record<string, { id: string; roles: string[] }> = {
      'Bearer root-token': { id: 'root', roles: ['admin'] },
      'Bearer guest-token': { id: 'guest', roles: [] },
    };
    let server: Server;
    let address: string;
    beforeAll(async () => {
      server = new Server({
        groups: [{ networkType: 'tcp', listener: { host: '127.0.0.1' } }],
        authenticate: (req: AuthRequest) => {
          const token = req.metadata?.get('authorization');
          return typeof token === 'string' ? users[token] : undefined;
        },
      });
      await server.start();
      address = server.addresses[0]!;
      // An admin's own call, so the table has something to show.
      const c = new Client({ credentials: staticToken('Bearer root-token') });
      await c.stub(EchoService, address).echo({ str: 'x' });
      await c.stop();
    });
    afterAll(() => server.stop());

    it('--token sends the authorization value; an admin gets the table', async () => {
      const r = await ffnet(['stats', address, '--token', 'Bearer root-token']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(row(r.stdout, 'Echo.echo')?.slice(0, 3)).toEqual(['Echo.echo', '1', '0']);
    });

    it('FFNET_TOKEN is used when --token is not given', async () => {
      const r = await ffnet(['stats', address, '--json'], { FFNET_TOKEN: 'Bearer root-token' });
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as { address: string }).address).toBe(address);
    });

    it('without a token, or with a non-admin one, it fails typed (exit 1) and never prints the token', async () => {
      const none = await ffnet(['stats', address]);
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/^ffnet stats: Unauthenticated \(2104\)/);
      const guest = await ffnet(['stats', address, '--token', 'Bearer guest-token']);
      expect(guest.code).toBe(1);
      expect(guest.stderr).toMatch(/^ffnet stats: PermissionDenied \(2102\): Core\.stats needs an admin identity/);
      expect(guest.stderr).not.toContain('guest-token');
    });
  });
});
