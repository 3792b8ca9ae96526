import { execFileSync } from 'node:child_process';
import { FfnetError, StatusCode } from '@ffnet/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  describeDevices,
  formatDevices,
  formatGid,
  GidType,
  type IBDevice,
  IBManager,
  LinkLayer,
  openDevices,
  PortState,
  verbsAvailable,
} from '../../src/index.js';
import { requireVerbsDevice } from './require-device.js';

// Runs inside the Soft-RoCE VM (pnpm test:rdma): rxe0 bound to $RXE_NETDEV (dummy0) with 10.0.2.15/24.
const NETDEV = process.env.RXE_NETDEV ?? 'dummy0';

/** Parses `ibv_devinfo -v -d rxe0`: port state and the GID table (index → [16 bytes, type]). */
function devinfo(): { state: string; linkLayer: string; gids: Map<number, { gid: Buffer; type: string }> } {
  const out = execFileSync('ibv_devinfo', ['-v', '-d', 'rxe0'], { encoding: 'utf8' });
  const gids = new Map<number, { gid: Buffer; type: string }>();
  for (const m of out.matchAll(/GID\[\s*(\d+)\]:\s+(\S+),\s+(RoCE v[12]|IB)/g)) gids.set(Number(m[1]), { gid: parseIPv6(m[2]!), type: m[3]! });
  return { state: /state:\s+(\S+)/.exec(out)![1]!, linkLayer: /link_layer:\s+(\S+)/.exec(out)![1]!, gids };
}

/** inet_pton for the forms ibv_devinfo prints (compressed IPv6, IPv4-mapped). */
function parseIPv6(s: string): Buffer {
  let tail: number[] = [];
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const [a, b, c, d] = v4[2]!.split('.').map(Number);
    tail = [(a! << 8) | b!, (c! << 8) | d!];
    s = v4[1]!.endsWith('::') ? v4[1]! : v4[1]!.slice(0, -1);
  }
  const [head, rest] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head
    ? head
        .split(':')
        .filter(Boolean)
        .map((x) => Number.parseInt(x, 16))
    : [];
  const r = rest
    ? rest
        .split(':')
        .filter(Boolean)
        .map((x) => Number.parseInt(x, 16))
    : [];
  const groups = [...h, ...new Array(8 - h.length - r.length - tail.length).fill(0), ...r, ...tail];
  const b = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) b.writeUInt16BE(g, i * 2);
  return b;
}

const opened: IBDevice[][] = [];
beforeAll(requireVerbsDevice);
afterAll(() => {
  for (const list of opened) for (const d of list) d.close();
  IBManager.stop();
});

describe('discovery on rxe0', () => {
  it('verbsAvailable sees the device', () => {
    const a = verbsAvailable();
    expect(a).toMatchObject({ available: true });
    expect(a.devices).toBeGreaterThanOrEqual(1);
    expect(a.detail).toContain('rxe0');
  });

  it('finds rxe0 with an ACTIVE RoCE port whose RoCE v2 GID is the one ibv_devinfo -v lists first (not link-local)', () => {
    const devices = openDevices({ subnets: [{ subnet: '10.0.2.0/24', zones: ['vm-zone'] }] });
    opened.push(devices);
    const rxe = devices.find((d) => d.name === 'rxe0')!;
    expect(rxe).toBeDefined();
    expect(rxe.id).toBe(devices.indexOf(rxe));
    expect(rxe.attr.physPortCnt).toBe(1);
    expect(rxe.attr.maxQpWr).toBeGreaterThan(0);

    const port = rxe.openPort(1);
    expect(port.attr.state).toBe(PortState.ACTIVE);
    expect(port.attr.linkLayer).toBe(LinkLayer.ETHERNET);
    expect(port.isRoCE).toBe(true);
    expect(port.netdevs[0]).toBe(NETDEV);
    expect(port.addresses).toContain('10.0.2.15');
    expect(port.zones).toEqual(['vm-zone']);

    const info = devinfo();
    expect(info.state).toBe('PORT_ACTIVE');
    expect(info.linkLayer).toBe('Ethernet');
    const expected = [...info.gids.entries()].find(
      ([, g]) => g.type === 'RoCE v2' && !g.gid.equals(Buffer.alloc(16)) && !(g.gid[0] === 0xfe && (g.gid[1]! & 0xc0) === 0x80),
    );
    expect(expected).toBeDefined();
    expect(port.gid!.index).toBe(expected![0]);
    expect(formatGid(port.gid!.gid)).toBe(formatGid(expected![1].gid));
    expect(port.gid!.type).toBe(GidType.ROCE_V2);
    // The IPv4-mapped GID of the netdev's address.
    expect(formatGid(port.gid!.gid)).toBe('::ffff:10.0.2.15');
  });

  it('deviceFilter matches the IB device name or a port netdev; nothing left is IBDeviceNotFoundError', () => {
    for (const filter of [['rxe0'], [NETDEV]]) {
      const list = openDevices({ deviceFilter: filter });
      opened.push(list);
      expect(list.map((d) => d.name)).toEqual(['rxe0']);
    }
    let caught: unknown;
    try {
      openDevices({ deviceFilter: ['mlx5_9'] });
    } catch (e) {
      caught = e;
    }
    expect(FfnetError.is(caught)).toBe(true);
    expect((caught as FfnetError).code).toBe(StatusCode.IBDeviceNotFound);
    expect((caught as Error).message).toMatch(/mlx5_9.*rxe0/);
    let tooMany: unknown;
    try {
      // Two devices can't be made here, so check the limit with the one we have: maxDeviceCount is validated.
      openDevices({ maxDeviceCount: 0 });
    } catch (e) {
      tooMany = e;
    }
    expect((tooMany as FfnetError).code).toBe(StatusCode.InvalidConfig);
  });

  it('describeDevices lists every GID of rxe0 exactly as ibv_devinfo -v does, and formats them', () => {
    const report = describeDevices();
    const d = report.devices.find((x) => x.name === 'rxe0')!;
    expect(d.error).toBeUndefined();
    const p = d.ports[0]!;
    expect(p.state).toBe('ACTIVE');
    expect(p.linkLayer).toBe('Ethernet');
    const info = devinfo();
    expect(p.gids.map((g) => [g.index, g.gid, g.type])).toEqual([...info.gids.entries()].map(([i, g]) => [i, formatGid(g.gid), g.type]));
    const text = formatDevices(report);
    expect(text).toContain('hca_id:\trxe0');
    expect(text).toContain('PORT_ACTIVE (4)');
    expect(text).toMatch(/GID\[\s*1\]:\s+::ffff:10\.0\.2\.15, RoCE v2 {2}<- ffnet/);
    console.log(text);
  });

  it('IBManager refreshes ports on async events: the netdev going down and up is seen without polling', async () => {
    const [rxe] = IBManager.start({ portRefreshMs: 0 });
    expect(IBManager.start()).toBe(IBManager.devices);
    const changes: number[] = [];
    let wake: (() => void) | undefined;
    rxe!.onPortChange((_d, p) => {
      changes.push(p.attr.state);
      wake?.();
    });
    const until = async (state: number) => {
      const deadline = Date.now() + 120_000;
      while (!changes.includes(state) && Date.now() < deadline) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 1000);
        });
      }
      return changes.includes(state);
    };
    execFileSync('ip', ['link', 'set', NETDEV, 'down']);
    try {
      expect(await until(PortState.DOWN)).toBe(true);
      let caught: unknown;
      try {
        rxe!.openPort(1);
      } catch (e) {
        caught = e;
      }
      expect((caught as FfnetError).code).toBe(StatusCode.IBOpenPortFailed);
    } finally {
      execFileSync('ip', ['link', 'set', NETDEV, 'up']);
    }
    expect(await until(PortState.ACTIVE)).toBe(true);
    expect(rxe!.openPort(1).attr.state).toBe(PortState.ACTIVE);
    IBManager.stop();
    expect(IBManager.devices).toEqual([]);
  });
});
