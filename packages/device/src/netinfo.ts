/**
 * Port ↔ network facts that come from sysfs and the OS rather than from verbs: the port's netdev, its IPv4
 * addresses, and the network zones configured for the subnets those addresses are in.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { InvalidConfigError } from '@ffnet/common';

function readTrim(path: string): string | null {
  try {
    const s = readFileSync(path, 'utf8').trim();
    return s.length > 0 ? s : null;
  } catch {
    // Absent sysfs attributes are normal (virtual netdevs, containers): null is "unknown" to every caller.
    return null;
  }
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    // No such sysfs directory here: nothing to list.
    return [];
  }
}

/** The netdev whose ifindex is `ifindex`, from /sys/class/net/<name>/ifindex. */
export function netdevByIfindex(ifindex: number, sysRoot = '/sys'): string | null {
  if (!(ifindex > 0)) return null;
  const dir = join(sysRoot, 'class/net');
  for (const name of list(dir)) if (readTrim(join(dir, name, 'ifindex')) === String(ifindex)) return name;
  return null;
}

/**
 * Netdevs of a port, in order of preference: the netdev bound to the GID in use (RoCE: gid_attrs/ndevs/<idx>,
 * or the GID entry's ifindex), then the port's and the device's `net/` directories (IPoIB on an IB port).
 */
export function portNetdevs(device: string, port: number, gid: { index: number; ndevIfindex: number } | null, sysRoot = '/sys'): string[] {
  const portDir = join(sysRoot, 'class/infiniband', device, 'ports', String(port));
  const out: string[] = [];
  const add = (n: string | null) => {
    if (n && !out.includes(n)) out.push(n);
  };
  if (gid) {
    add(readTrim(join(portDir, 'gid_attrs/ndevs', String(gid.index))));
    add(netdevByIfindex(gid.ndevIfindex, sysRoot));
  }
  if (out.length === 0) {
    for (const n of list(join(portDir, 'net'))) add(n);
    for (const n of list(join(sysRoot, 'class/infiniband', device, 'device/net'))) add(n);
  }
  return out;
}

/** IPv4 addresses of the given netdevs (getifaddrs through os.networkInterfaces). */
export function ipv4Addresses(netdevs: readonly string[]): string[] {
  const ifs = networkInterfaces();
  const out: string[] = [];
  for (const n of netdevs) for (const a of ifs[n] ?? []) if (a.family === 'IPv4' && !out.includes(a.address)) out.push(a.address);
  return out;
}

export interface SubnetZones {
  /** IPv4 CIDR, e.g. `10.1.0.0/16`. */
  subnet: string;
  zones: readonly string[];
}

function ipv4ToInt(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const b = Number(m[i]);
    if (b > 255) return null;
    v = v * 256 + b;
  }
  return v;
}

/** Parses `a.b.c.d/len`; InvalidConfigError otherwise. */
export function parseSubnet(cidr: string): { base: number; prefix: number } {
  const [ip, len, extra] = cidr.split('/');
  const base = ipv4ToInt(ip ?? '');
  const prefix = Number(len);
  if (base === null || extra !== undefined || len === undefined || !/^\d+$/.test(len) || prefix > 32) {
    throw new InvalidConfigError(`invalid subnet "${cidr}": expected IPv4 CIDR like 10.0.0.0/8`);
  }
  return { base, prefix };
}

export function subnetContains(subnet: { base: number; prefix: number }, ip: string): boolean {
  const v = ipv4ToInt(ip);
  if (v === null) return false;
  const shift = 32 - subnet.prefix;
  return shift === 32 || Math.floor(v / 2 ** shift) === Math.floor(subnet.base / 2 ** shift);
}

/**
 * Zones of a port: the union of the zones of every configured subnet holding one of its addresses, else
 * `[defaultZone]`. A default of `$NAME` reads the zone from environment variable NAME (3FS's "$ENV").
 */
export function zonesFor(addresses: readonly string[], subnets: readonly SubnetZones[], defaultZone: string): string[] {
  const out: string[] = [];
  for (const s of subnets) {
    const net = parseSubnet(s.subnet);
    if (addresses.some((a) => subnetContains(net, a))) for (const z of s.zones) if (!out.includes(z)) out.push(z);
  }
  if (out.length > 0) return out;
  const zone = defaultZone.startsWith('$') ? (process.env[defaultZone.slice(1)] ?? 'UNKNOWN') : defaultZone;
  return [zone];
}
