import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FfnetError, StatusCode } from '@ffnet/common';
import { afterAll, describe, expect, it } from 'vitest';
import { formatGid, isLinkLocalGid, isZeroGid } from '../src/index.js';
import { ipv4Addresses, netdevByIfindex, parseSubnet, portNetdevs, subnetContains, zonesFor } from '../src/netinfo.js';

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A throwaway sysfs tree: { 'class/net/eth0/ifindex': '2' }. */
function fakeSys(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'ffnet-sysfs-'));
  roots.push(root);
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), `${content}\n`);
  }
  return root;
}

describe('port netdevs from sysfs', () => {
  it('prefers the netdev bound to the GID (gid_attrs/ndevs), then the GID ifindex', () => {
    const sys = fakeSys({
      'class/infiniband/rxe0/ports/1/gid_attrs/ndevs/1': 'dummy0',
      'class/net/dummy0/ifindex': '3',
      'class/net/eth0/ifindex': '2',
    });
    expect(portNetdevs('rxe0', 1, { index: 1, ndevIfindex: 3 }, sys)).toEqual(['dummy0']);
    expect(portNetdevs('rxe0', 1, { index: 5, ndevIfindex: 2 }, sys)).toEqual(['eth0']);
    expect(netdevByIfindex(3, sys)).toBe('dummy0');
    expect(netdevByIfindex(0, sys)).toBeNull();
  });

  it('falls back to the port and device net/ directories (IPoIB on an IB port)', () => {
    const sys = fakeSys({
      'class/infiniband/mlx5_0/device/net/ib0/dev_port': '0',
      'class/infiniband/mlx5_0/device/net/ib1/dev_port': '1',
    });
    expect(portNetdevs('mlx5_0', 1, null, sys)).toEqual(['ib0', 'ib1']);
    expect(portNetdevs('nosuch', 1, null, sys)).toEqual([]);
  });

  it('reads IPv4 addresses of a netdev from the OS', () => {
    const lo = Object.entries(networkInterfaces()).find(([, a]) => a?.some((x) => x.family === 'IPv4' && x.internal));
    expect(lo).toBeDefined();
    expect(ipv4Addresses([lo![0]])).toContain('127.0.0.1');
    expect(ipv4Addresses(['no-such-netdev'])).toEqual([]);
  });
});

describe('zones from subnets', () => {
  it('parses CIDRs and rejects bad ones with InvalidConfigError', () => {
    expect(parseSubnet('10.1.0.0/16')).toEqual({ base: 0x0a010000, prefix: 16 });
    for (const bad of ['10.1.0.0', '10.1.0.0/33', '300.1.0.0/8', 'x/8', '10.0.0.0/8/1', '::1/64']) {
      let caught: unknown;
      try {
        parseSubnet(bad);
      } catch (e) {
        caught = e;
      }
      expect(FfnetError.is(caught) && (caught as FfnetError).code, bad).toBe(StatusCode.InvalidConfig);
    }
  });

  it('matches addresses by prefix', () => {
    expect(subnetContains(parseSubnet('10.1.0.0/16'), '10.1.255.3')).toBe(true);
    expect(subnetContains(parseSubnet('10.1.0.0/16'), '10.2.0.1')).toBe(false);
    expect(subnetContains(parseSubnet('0.0.0.0/0'), '192.168.1.1')).toBe(true);
    expect(subnetContains(parseSubnet('192.168.1.7/32'), '192.168.1.7')).toBe(true);
    expect(subnetContains(parseSubnet('192.168.1.7/32'), '192.168.1.8')).toBe(false);
  });

  it('collects the zones of every matching subnet, else the default (or $ENV)', () => {
    const subnets = [
      { subnet: '10.0.0.0/8', zones: ['dc1'] },
      { subnet: '10.2.0.0/16', zones: ['dc1', 'rack7'] },
      { subnet: '192.168.0.0/16', zones: ['lab'] },
    ];
    expect(zonesFor(['10.2.3.4'], subnets, 'UNKNOWN')).toEqual(['dc1', 'rack7']);
    expect(zonesFor(['172.16.0.1'], subnets, 'UNKNOWN')).toEqual(['UNKNOWN']);
    process.env.FFNET_TEST_ZONE = 'from-env';
    expect(zonesFor([], subnets, '$FFNET_TEST_ZONE')).toEqual(['from-env']);
    delete process.env.FFNET_TEST_ZONE;
  });
});

describe('GID formatting', () => {
  const gid = (hex: string) => Buffer.from(hex.replaceAll(':', ''), 'hex');
  it('prints like inet_ntop / ibv_devinfo', () => {
    expect(formatGid(gid('fe80:0000:0000:0000:5054:00ff:fe12:3456'))).toBe('fe80::5054:ff:fe12:3456');
    expect(formatGid(gid('0000:0000:0000:0000:0000:ffff:0a00:020f'))).toBe('::ffff:10.0.2.15');
    expect(formatGid(gid('2001:0db8:0000:0000:0001:0000:0000:0001'))).toBe('2001:db8::1:0:0:1');
    expect(formatGid(gid('2001:0db8:0001:0002:0003:0004:0005:0006'))).toBe('2001:db8:1:2:3:4:5:6');
    expect(formatGid(Buffer.alloc(16))).toBe('::');
  });
  it('classifies zero and link-local GIDs', () => {
    expect(isZeroGid(Buffer.alloc(16))).toBe(true);
    expect(isLinkLocalGid(gid('fe80:0000:0000:0000:5054:00ff:fe12:3456'))).toBe(true);
    expect(isLinkLocalGid(gid('febf:0000:0000:0000:0000:0000:0000:0001'))).toBe(true);
    expect(isLinkLocalGid(gid('fec0:0000:0000:0000:0000:0000:0000:0001'))).toBe(false);
    expect(isLinkLocalGid(gid('0000:0000:0000:0000:0000:ffff:0a00:020f'))).toBe(false);
  });
});
