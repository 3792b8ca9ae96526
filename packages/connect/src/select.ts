/**
 * Which local port talks to which remote port (3FS `selectDevice`, §4.2 step 2), on plain data so it can be
 * decided and tested without a device.
 */
import type { IBDevice } from '@ffnet/device';
import type { IBQueryDevice } from './messages.js';

const LINK_IB = 1;
const PORT_ACTIVE = 4;

/** A local port as selection sees it. */
export interface LocalPortCandidate {
  dev: number;
  devName: string;
  port: number;
  linkLayer: number;
  zones: readonly string[];
  active: boolean;
}

export interface DeviceSelection {
  local: { dev: number; devName: string; port: number };
  remote: { dev: number; devName: string; port: number };
  /** Link layer of both ends: 1 InfiniBand, 2 Ethernet. */
  linkLayer: number;
}

export interface SelectOptions {
  /** When no pair shares a zone, accept pairs in different zones (default true, 3FS allow_unknown_zone). */
  allowUnknownZone?: boolean;
  /** Pick among InfiniBand pairs only when there are any (default true, 3FS prefer_ibdevice). */
  preferIB?: boolean;
}

/** The candidates of opened devices (their usable ports, as last queried). */
export function localPortCandidates(devices: readonly IBDevice[]): LocalPortCandidate[] {
  const out: LocalPortCandidate[] = [];
  for (const d of devices) {
    if (d.closed) continue;
    for (const p of d.ports) {
      out.push({ dev: d.id, devName: d.name, port: p.portNum, linkLayer: p.attr.linkLayer, zones: p.zones, active: p.attr.state === PORT_ACTIVE });
    }
  }
  return out;
}

/**
 * Pairs (remote port, active local port) of the same link layer; a first pass requires a shared zone, a second
 * (only with allowUnknownZone) takes any. InfiniBand pairs come first, and with preferIB only they are used when
 * present. `counter` picks among the pairs round-robin (the caller keeps one per address, starting at random).
 * Null when nothing matches.
 */
export function selectDevice(
  local: readonly LocalPortCandidate[],
  remote: readonly IBQueryDevice[],
  counter: number,
  options: SelectOptions = {},
): DeviceSelection | null {
  const allowUnknownZone = options.allowUnknownZone ?? true;
  const preferIB = options.preferIB ?? true;
  for (const sameZone of allowUnknownZone ? [true, false] : [true]) {
    const ib: DeviceSelection[] = [];
    const other: DeviceSelection[] = [];
    for (const r of remote) {
      for (const rp of r.ports) {
        for (const l of local) {
          if (!l.active || l.linkLayer !== rp.linkLayer) continue;
          if (sameZone && !l.zones.some((z) => rp.zones.includes(z))) continue;
          const pair: DeviceSelection = {
            local: { dev: l.dev, devName: l.devName, port: l.port },
            remote: { dev: r.dev, devName: r.devName, port: rp.port },
            linkLayer: l.linkLayer,
          };
          (l.linkLayer === LINK_IB ? ib : other).push(pair);
        }
      }
    }
    const pool = preferIB && ib.length > 0 ? ib : ib.concat(other);
    if (pool.length > 0) return pool[Math.abs(Math.trunc(counter)) % pool.length]!;
  }
  return null;
}
