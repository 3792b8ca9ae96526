import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/*
 * Interface selection on real interfaces: a private network namespace with veth pairs named like the NICs 3FS
 * distinguishes. Both ends of every pair live in the namespace, so deleting it removes everything.
 */

const NS = `ffnet-lt-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
const PROBE = fileURLToPath(new URL('./fixtures/netns-probe.mjs', import.meta.url));

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function requireRootAndIproute(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('the interface-filtering test creates a network namespace: run it as root (CI runs as root)');
  }
  try {
    ip('-V');
  } catch (e) {
    throw new Error(`the interface-filtering test needs iproute2's \`ip\` on PATH (run as root with iproute2): ${(e as Error).message}`);
  }
}

/** Namespaces of this test left behind by a run that was killed before afterAll. */
function removeOrphans(): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const m = /^(ffnet-lt-(\d+)-\d+)/.exec(line);
    if (!m) continue;
    try {
      process.kill(Number(m[2]), 0);
    } catch {
      ip('netns', 'del', m[1]!);
    }
  }
}

interface Veth {
  name: string;
  peer: string;
  cidrs: string[];
  carrier: boolean;
}

const VETHS: Veth[] = [
  { name: 'eth1', peer: 'ffp-e1', cidrs: ['10.231.1.1/24'], carrier: true },
  { name: 'bond0', peer: 'ffp-b0', cidrs: ['10.231.2.1/24', '10.231.2.2/24'], carrier: true },
  { name: 'ib0', peer: 'ffp-i0', cidrs: ['10.231.3.1/24'], carrier: true },
  { name: 'data0', peer: 'ffp-d0', cidrs: ['10.231.4.1/24'], carrier: true },
  { name: 'wlan0', peer: 'ffp-w0', cidrs: ['10.231.5.1/24'], carrier: true },
  // Up but without carrier (its peer stays down): not RUNNING, so not listened on.
  { name: 'eth2', peer: 'ffp-e2', cidrs: ['10.231.6.1/24'], carrier: false },
];

interface Bound {
  address: string;
  kind: string;
  interface: string;
}
type Result = { ok: true; bound: Bound[]; accepted: string[] } | { ok: false; name: string; code: number; message: string };

function probe(configs: object[]): Result[] {
  const out = execFileSync('ip', ['netns', 'exec', NS, process.execPath, PROBE, JSON.stringify(configs)], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return JSON.parse(out) as Result[];
}

function ok(r: Result | undefined): Bound[] {
  if (!r?.ok) throw new Error(`expected the listener to bind, got ${JSON.stringify(r)}`);
  expect([...r.accepted].sort()).toEqual(r.bound.map((b) => b.address).sort());
  return r.bound;
}

function summary(bound: Bound[]): string[] {
  return bound.map((b) => `${b.interface}/${b.kind}/${b.address.replace(/:\d+$/, '')}`).sort();
}

describe('interface filtering in a network namespace', () => {
  let results: Result[] = [];

  beforeAll(() => {
    requireRootAndIproute();
    removeOrphans();
    ip('netns', 'add', NS);
    try {
      build();
    } catch (e) {
      ip('netns', 'del', NS);
      throw e;
    }
  });

  function build(): void {
    ip('-n', NS, 'link', 'set', 'lo', 'up');
    for (const v of VETHS) {
      ip('link', 'add', v.name, 'netns', NS, 'type', 'veth', 'peer', 'name', v.peer, 'netns', NS);
      for (const c of v.cidrs) ip('-n', NS, 'addr', 'add', c, 'dev', v.name);
      ip('-n', NS, 'link', 'set', v.name, 'up');
      if (v.carrier) ip('-n', NS, 'link', 'set', v.peer, 'up');
    }
    // One node process for every case keeps the suite fast.
    results = probe([
      {},
      { interfaceKinds: ['tcp'] },
      { filter: ['bond0'] },
      { customPrefix: 'data' },
      { filter: ['lo'] },
      { filter: ['ib0'] },
      { filter: ['wlan0'] },
      { filter: ['eth2'] },
      { port: 47123 },
      { filter: ['eth1', 'data0'], customPrefix: 'data', interfaceKinds: ['tcp'] },
    ]);
  }

  afterAll(() => {
    let list = '';
    try {
      list = ip('netns', 'list');
    } catch {
      return; // no usable `ip`: beforeAll already failed and said why
    }
    if (list.split('\n').some((l) => l.split(' ')[0] === NS)) ip('netns', 'del', NS);
  });

  it('empty filter: every up interface whose name matches a prefix rule, each with its kind', () => {
    expect(summary(ok(results[0]))).toEqual([
      'bond0/tcp/tcp://10.231.2.1',
      'bond0/tcp/tcp://10.231.2.2',
      'eth1/tcp/tcp://10.231.1.1',
      'ib0/ipoib/tcp://10.231.3.1',
      'lo/local/tcp://127.0.0.1',
    ]);
  });

  it("interfaceKinds ['tcp'] is 3FS's TCP group: Ethernet-style names only", () => {
    expect(summary(ok(results[1]))).toEqual(['bond0/tcp/tcp://10.231.2.1', 'bond0/tcp/tcp://10.231.2.2', 'eth1/tcp/tcp://10.231.1.1']);
  });

  it('a name filter narrows to that interface', () => {
    expect(summary(ok(results[2]))).toEqual(['bond0/tcp/tcp://10.231.2.1', 'bond0/tcp/tcp://10.231.2.2']);
  });

  it('a custom prefix adds matching interfaces as tcp', () => {
    expect(summary(ok(results[3]))).toContain('data0/tcp/tcp://10.231.4.1');
    expect(summary(ok(results[3]))).toHaveLength(6);
  });

  it('lo is LOCAL and ib0 is IPoIB, both reachable over tcp://', () => {
    expect(summary(ok(results[4]))).toEqual(['lo/local/tcp://127.0.0.1']);
    expect(summary(ok(results[5]))).toEqual(['ib0/ipoib/tcp://10.231.3.1']);
  });

  it('an interface whose name matches no rule, or without carrier, gives ListenFailed naming the filter', () => {
    for (const [r, name] of [
      [results[6], 'wlan0'],
      [results[7], 'eth2'],
    ] as const) {
      expect(r?.ok).toBe(false);
      if (r?.ok !== false) continue;
      expect(r.name).toBe('ListenFailedError');
      expect(r.code).toBe(2011);
      expect(r.message).toContain(`filter [${name}]`);
    }
  });

  it('port 0 reads back a real port per socket; a fixed port is used on every interface', () => {
    for (const b of ok(results[0])) expect(Number(/:(\d+)$/.exec(b.address)?.[1])).toBeGreaterThan(0);
    const fixed = ok(results[8]);
    expect(fixed).toHaveLength(5);
    for (const b of fixed) expect(b.address).toMatch(/:47123$/);
  });

  it('filter, custom prefix and kinds combine', () => {
    expect(summary(ok(results[9]))).toEqual(['data0/tcp/tcp://10.231.4.1', 'eth1/tcp/tcp://10.231.1.1']);
  });
});
