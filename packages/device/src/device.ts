/**
 * Device discovery and ports (3FS IBDevice / IBManager, §4.1): which devices and ports are usable under a
 * config, their RoCE v2 GID, netdev, addresses and zones, periodic and event-driven port refresh, and
 * openPort(). Also describeDevices(), the data behind `ffnet devices` (an ibv_devinfo-like listing).
 */

import { IBDeviceNotFoundError, IBInitFailedError, IBOpenPortFailedError, InvalidConfigError } from '@ffnet/common';
import { type FdWatcher, watchFd } from '@ffnet/event';
import { listDeviceNames, type VerbsAvailability, verbsAvailable } from './availability.js';
import { formatGid, isLinkLocalGid, isZeroGid } from './gid.js';
import { enumName, GidType, LinkLayer, mtuBytes, PortState } from './layout.js';
import { type MrOwner, setDefaultOwners } from './memory.js';
import { ibv } from './native.js';
import { ipv4Addresses, parseSubnet, portNetdevs, type SubnetZones, zonesFor } from './netinfo.js';
import { type DeviceAttr, type GidEntry, type MemoryRegion, type PortAttr, type ProtectionDomain, VerbsContext } from './verbs.js';

export interface IBConfig {
  /** Keep only devices whose IB name (`mlx5_0`, `rxe0`) or a port's netdev name (`eth0`) is listed. Empty: all. */
  deviceFilter?: readonly string[];
  /** Leave out ports that are not ACTIVE (default true). */
  skipInactivePorts?: boolean;
  /** Skip a device that fails to open or query instead of failing (default true). */
  skipUnusableDevice?: boolean;
  /** More usable devices than this is an error: narrow it with deviceFilter (default 4, 3FS kMaxDeviceCnt). */
  maxDeviceCount?: number;
  /** Zones for the ports whose IPv4 addresses fall in these subnets. */
  subnets?: readonly SubnetZones[];
  /** Zone of ports matching no subnet (default "UNKNOWN"; "$NAME" reads env var NAME). */
  defaultZone?: string;
  /** Call ibv_fork_init() before registering memory (default true, as 3FS). */
  forkSafe?: boolean;
  /** start() succeeds with zero usable devices instead of failing (default false). */
  allowNoUsableDevices?: boolean;
  /** Re-query every port this often (default 15000 ms, 3FS's release setting); 0 disables. */
  portRefreshMs?: number;
}

type Resolved = Required<IBConfig>;

const DEFAULTS: Resolved = {
  deviceFilter: [],
  skipInactivePorts: true,
  skipUnusableDevice: true,
  maxDeviceCount: 4,
  subnets: [],
  defaultZone: 'UNKNOWN',
  forkSafe: true,
  allowNoUsableDevices: false,
  portRefreshMs: 15_000,
};

function resolve(config: IBConfig): Resolved {
  const c = { ...DEFAULTS, ...config };
  if (!Number.isInteger(c.maxDeviceCount) || c.maxDeviceCount < 1) throw new InvalidConfigError(`maxDeviceCount must be ≥ 1, got ${c.maxDeviceCount}`);
  for (const s of c.subnets) parseSubnet(s.subnet);
  return c;
}

/** A port as discovery and refresh see it. */
export interface IBPortInfo {
  readonly portNum: number;
  readonly attr: PortAttr;
  /** True for RoCE (link layer Ethernet), false for InfiniBand. */
  readonly isRoCE: boolean;
  /** The RoCE v2 GID used for connections (RoCE ports); null on IB ports. */
  readonly gid: GidEntry | null;
  readonly netdevs: readonly string[];
  readonly addresses: readonly string[];
  readonly zones: readonly string[];
}

/** First non-zero, non-link-local GID whose type (from _ibv_query_gid_ex) is RoCE v2. */
export function selectRoceV2Gid(ctx: VerbsContext, portNum: number, gidTblLen: number): GidEntry | null {
  for (let i = 0; i < gidTblLen; i++) {
    const e = ctx.queryGid(portNum, i);
    if (e && e.type === GidType.ROCE_V2 && !isZeroGid(e.gid) && !isLinkLocalGid(e.gid)) return e;
  }
  return null;
}

/** Queries one port; null when its link layer is neither IB nor Ethernet. */
function queryPortInfo(ctx: VerbsContext, portNum: number, cfg: Resolved): IBPortInfo | null {
  const attr = ctx.queryPort(portNum);
  const isRoCE = attr.linkLayer === LinkLayer.ETHERNET;
  if (!isRoCE && attr.linkLayer !== LinkLayer.INFINIBAND) return null;
  const gid = isRoCE ? selectRoceV2Gid(ctx, portNum, attr.gidTblLen) : null;
  const netdevs = portNetdevs(ctx.name, portNum, gid);
  const addresses = ipv4Addresses(netdevs);
  return { portNum, attr, isRoCE, gid, netdevs, addresses, zones: zonesFor(addresses, cfg.subnets, cfg.defaultZone) };
}

/** A RoCE port can only be addressed through a RoCE v2 GID; an IB port through its LID. */
function addressable(p: IBPortInfo): boolean {
  return !p.isRoCE || p.gid !== null;
}

function portUsable(p: IBPortInfo, device: string, cfg: Resolved): boolean {
  if (!addressable(p)) return false;
  if (cfg.skipInactivePorts && p.attr.state !== PortState.ACTIVE) return false;
  const f = cfg.deviceFilter;
  return f.length === 0 || f.includes(device) || p.netdevs.some((n) => f.includes(n));
}

function samePort(a: IBPortInfo, b: IBPortInfo): boolean {
  return (
    a.attr.state === b.attr.state &&
    a.attr.activeMtu === b.attr.activeMtu &&
    a.attr.lid === b.attr.lid &&
    (a.gid?.index ?? -1) === (b.gid?.index ?? -1) &&
    (a.gid === null || b.gid === null || a.gid.gid.equals(b.gid.gid)) &&
    a.addresses.join() === b.addresses.join() &&
    a.zones.join() === b.zones.join()
  );
}

export type PortChangeListener = (device: IBDevice, port: IBPortInfo) => void;

/** An opened, usable device: context, protection domain, attributes and its usable ports. */
export class IBDevice implements MrOwner {
  /** Index among the opened devices: the `devId` of rkeys in RDMARemoteBuf. */
  readonly id: number;
  readonly name: string;
  readonly context: VerbsContext;
  readonly pd: ProtectionDomain;
  readonly attr: DeviceAttr;
  /** @internal */ readonly liveMrs = new Set<MemoryRegion>();
  readonly #cfg: Resolved;
  readonly #ports = new Map<number, IBPortInfo>();
  readonly #listeners = new Set<PortChangeListener>();
  #closed = false;

  /** @internal */
  constructor(id: number, context: VerbsContext, pd: ProtectionDomain, attr: DeviceAttr, ports: readonly IBPortInfo[], cfg: Resolved) {
    this.id = id;
    this.name = context.name;
    this.context = context;
    this.pd = pd;
    this.attr = attr;
    this.#cfg = cfg;
    for (const p of ports) this.#ports.set(p.portNum, p);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The usable ports, as last queried. */
  get ports(): readonly IBPortInfo[] {
    return [...this.#ports.values()];
  }

  port(portNum: number): IBPortInfo | undefined {
    return this.#ports.get(portNum);
  }

  /**
   * Re-queries a usable port (default: the first) and returns it if ACTIVE; IBOpenPortFailedError if it is
   * unknown, gone or not active. Refreshes the cached info when anything changed.
   */
  openPort(portNum?: number): IBPortInfo {
    const n = portNum ?? this.#ports.keys().next().value;
    if (this.#closed) throw new IBOpenPortFailedError(`cannot open a port of ${this.name}: device closed`);
    if (n === undefined || !this.#ports.has(n)) {
      throw new IBOpenPortFailedError(`${this.name} has no usable port ${n ?? ''} (usable: ${[...this.#ports.keys()].join(', ') || 'none'})`);
    }
    let p: IBPortInfo | null;
    try {
      p = this.refreshPort(n);
    } catch (e) {
      throw new IBOpenPortFailedError(`${this.name} port ${n}: query failed`, { cause: e });
    }
    if (!p || p.attr.state !== PortState.ACTIVE) {
      throw new IBOpenPortFailedError(`${this.name} port ${n} is ${enumName(PortState, p?.attr.state ?? PortState.NOP)}, not ACTIVE`);
    }
    if (!addressable(p))
      throw new IBOpenPortFailedError(`${this.name} port ${n} has no RoCE v2 GID (no IP address on ${p.netdevs.join(', ') || 'its netdev'}?)`);
    return p;
  }

  /** Re-queries one port; notifies listeners when it changed. Returns the new info (null: unknown port or closed). */
  refreshPort(portNum: number): IBPortInfo | null {
    if (this.#closed) return null;
    const before = this.#ports.get(portNum);
    // Only ports found usable at discovery are tracked; a refresh never adds one that was filtered out.
    if (!before) return null;
    const now = queryPortInfo(this.context, portNum, this.#cfg);
    if (!now) return null;
    this.#ports.set(portNum, now);
    if (!samePort(before, now)) for (const l of this.#listeners) l(this, now);
    return now;
  }

  /** Re-queries every port (what the periodic refresh runs). */
  refreshPorts(): void {
    for (const n of [...this.#ports.keys()]) this.refreshPort(n);
  }

  /** Called with the new info whenever a refresh finds a port changed (state, MTU, LID, GID, addresses, zones). */
  onPortChange(listener: PortChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Deregisters whatever memory is still registered here (those RDMABufs stay valid as plain memory, their
   * rkeys die), then frees the PD and closes the device. QPs, CQs and channels must be destroyed first.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    for (const mr of this.liveMrs) if (mr.deregister()) this.liveMrs.delete(mr);
    this.pd.dealloc();
    this.context.close();
  }
}

let forkInitDone = false;

/**
 * Opens every usable device under `config` (devIds 0..n-1 in ibv_get_device_list order). Throws
 * IBInitFailedError when verbs are unavailable or a device fails (unless skipped), IBDeviceNotFoundError
 * when nothing usable is left (unless allowNoUsableDevices).
 */
export function openDevices(config: IBConfig = {}): IBDevice[] {
  const cfg = resolve(config);
  const avail = verbsAvailable();
  if (!avail.available) {
    if (cfg.allowNoUsableDevices) return [];
    const E = avail.reason === 'no-devices' ? IBDeviceNotFoundError : IBInitFailedError;
    throw new E(`RDMA unavailable (${avail.reason}): ${avail.detail}`);
  }
  if (cfg.forkSafe && !forkInitDone) {
    // Before any MR exists; fails (harmlessly) only if resources were already created by someone else.
    ibv().fork_init();
    forkInitDone = true;
  }
  const r = listDeviceNames();
  const names = 'names' in r ? r.names : [];
  const devices: IBDevice[] = [];
  const skipped: string[] = [];
  try {
    for (const name of names) {
      const d = tryOpen(name, devices.length, cfg, skipped);
      if (d) devices.push(d);
    }
    if (devices.length > cfg.maxDeviceCount) {
      throw new IBInitFailedError(
        `${devices.length} usable RDMA devices (${devices.map((d) => d.name).join(', ')}) exceed maxDeviceCount ${cfg.maxDeviceCount}: set deviceFilter`,
      );
    }
  } catch (e) {
    for (const d of devices) d.close();
    throw e;
  }
  if (devices.length === 0 && !cfg.allowNoUsableDevices) {
    const filter = cfg.deviceFilter.length ? ` matching filter [${cfg.deviceFilter.join(', ')}]` : '';
    throw new IBDeviceNotFoundError(`no usable RDMA device${filter} among ${names.join(', ') || 'none'}${skipped.length ? ` (${skipped.join('; ')})` : ''}`);
  }
  return devices;
}

function tryOpen(name: string, id: number, cfg: Resolved, skipped: string[]): IBDevice | null {
  let ctx: VerbsContext | null = null;
  let pd: ProtectionDomain | null = null;
  try {
    ctx = VerbsContext.open(name);
    const attr = ctx.queryDevice();
    const ports: IBPortInfo[] = [];
    for (let p = 1; p <= attr.physPortCnt; p++) {
      const info = queryPortInfo(ctx, p, cfg);
      if (info && portUsable(info, name, cfg)) ports.push(info);
    }
    if (ports.length === 0) {
      skipped.push(`${name}: no usable port`);
      ctx.close();
      return null;
    }
    pd = ctx.allocPd();
    return new IBDevice(id, ctx, pd, attr, ports, cfg);
  } catch (e) {
    pd?.dealloc();
    ctx?.close();
    if (!cfg.skipUnusableDevice) throw new IBInitFailedError(`RDMA device ${name} is unusable: ${(e as Error).message}`, { cause: e });
    skipped.push(`${name}: ${(e as Error).message}`);
    return null;
  }
}

/**
 * Owns the process's opened devices (3FS IBManager): start(config) opens them, refreshes ports on a timer
 * and on async port events, and stop() closes them. The exported `IBManager` instance is the one RDMABuf
 * registers on by default.
 */
export class DeviceManager {
  #devices: IBDevice[] = [];
  #started = false;
  #timer: NodeJS.Timeout | undefined;
  #watchers: FdWatcher[] = [];

  get started(): boolean {
    return this.#started;
  }

  get devices(): readonly IBDevice[] {
    return this.#devices;
  }

  device(id: number): IBDevice | undefined {
    return this.#devices[id];
  }

  /** Opens the devices (see openDevices). Idempotent: a second call returns the devices already open. */
  start(config: IBConfig = {}): readonly IBDevice[] {
    if (this.#started) return this.#devices;
    const cfg = resolve(config);
    this.#devices = openDevices(cfg);
    this.#started = true;
    if (cfg.portRefreshMs > 0 && this.#devices.length > 0) {
      this.#timer = setInterval(() => this.refresh(), cfg.portRefreshMs);
      this.#timer.unref();
    }
    for (const d of this.#devices) this.#watchAsync(d);
    return this.#devices;
  }

  /** Re-queries every port of every device now. */
  refresh(): void {
    for (const d of this.#devices) {
      try {
        d.refreshPorts();
      } catch {
        // A failed query leaves the cached info; the next round or openPort() reports it.
      }
    }
  }

  /** Closes every device (deregistering memory still registered). Idempotent. */
  stop(): void {
    if (!this.#started) return;
    this.#started = false;
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const w of this.#watchers.splice(0)) w.close();
    const devices = this.#devices;
    this.#devices = [];
    for (const d of devices) d.close();
  }

  #watchAsync(d: IBDevice): void {
    // Port up/down, GID and LID changes arrive on the context's async fd; each triggers a refresh of that port.
    try {
      const w = watchFd(
        d.context.asyncFd,
        () => {
          for (let ev = d.context.getAsyncEvent(); ev; ev = d.context.getAsyncEvent()) {
            if (ev.portNum > 0) d.refreshPort(ev.portNum);
          }
        },
        { ref: false, label: `async events of ${d.name}`, onError: () => w.close() },
      );
      this.#watchers.push(w);
    } catch {
      // Without an fd watcher the timer still refreshes ports.
    }
  }
}

/** The process-wide device manager; RDMABuf and RDMABufPool register on its devices by default. */
export const IBManager = new DeviceManager();
setDefaultOwners(() => IBManager.devices);

/** One GID table entry for display. */
export interface GidDescription {
  index: number;
  gid: string;
  type: 'IB' | 'RoCE v1' | 'RoCE v2';
  netdev: string | null;
}

export interface PortDescription {
  portNum: number;
  state: string;
  attr: PortAttr;
  linkLayer: 'InfiniBand' | 'Ethernet' | 'Unspecified';
  activeMtuBytes: number;
  maxMtuBytes: number;
  netdevs: string[];
  addresses: string[];
  gids: GidDescription[];
  /** Index of the GID ffnet would use (RoCE v2, not zero or link-local); null for IB or none. */
  selectedGidIndex: number | null;
}

export interface DeviceDescription {
  name: string;
  attr: DeviceAttr | null;
  ports: PortDescription[];
  /** Set when the device could not be opened or queried. */
  error?: string;
}

export interface DevicesReport {
  availability: VerbsAvailability;
  devices: DeviceDescription[];
}

const GID_TYPE_NAMES = ['IB', 'RoCE v1', 'RoCE v2'] as const;

/**
 * Every device, port and non-empty GID, like `ibv_devinfo -v` (no filtering, inactive ports included).
 * Never throws: on a machine without RDMA it returns the availability and no devices.
 */
export function describeDevices(): DevicesReport {
  const availability = verbsAvailable();
  if (!availability.available) return { availability, devices: [] };
  const r = listDeviceNames();
  const devices = ('names' in r ? r.names : []).map(describeDevice);
  return { availability, devices };
}

function describeDevice(name: string): DeviceDescription {
  let ctx: VerbsContext | null = null;
  try {
    ctx = VerbsContext.open(name);
    const attr = ctx.queryDevice();
    const ports: PortDescription[] = [];
    for (let p = 1; p <= attr.physPortCnt; p++) {
      const pa = ctx.queryPort(p);
      const gids: GidDescription[] = [];
      for (let i = 0; i < pa.gidTblLen; i++) {
        const e = ctx.queryGid(p, i);
        if (!e || isZeroGid(e.gid)) continue;
        gids.push({ index: i, gid: formatGid(e.gid), type: GID_TYPE_NAMES[e.type] ?? 'IB', netdev: portNetdevs(name, p, e)[0] ?? null });
      }
      const selected = pa.linkLayer === LinkLayer.ETHERNET ? selectRoceV2Gid(ctx, p, pa.gidTblLen) : null;
      const netdevs = portNetdevs(name, p, selected);
      ports.push({
        portNum: p,
        state: enumName(PortState, pa.state),
        attr: pa,
        linkLayer: pa.linkLayer === LinkLayer.ETHERNET ? 'Ethernet' : pa.linkLayer === LinkLayer.INFINIBAND ? 'InfiniBand' : 'Unspecified',
        activeMtuBytes: mtuBytes(pa.activeMtu),
        maxMtuBytes: mtuBytes(pa.maxMtu),
        netdevs,
        addresses: ipv4Addresses(netdevs),
        gids,
        selectedGidIndex: selected?.index ?? null,
      });
    }
    return { name, attr, ports };
  } catch (e) {
    return { name, attr: null, ports: [], error: (e as Error).message };
  } finally {
    ctx?.close();
  }
}

/** Text in the spirit of `ibv_devinfo -v`, for the `ffnet devices` command. */
export function formatDevices(report: DevicesReport): string {
  const { availability: a, devices } = report;
  if (devices.length === 0) return `no RDMA devices${a.reason ? ` (${a.reason})` : ''}: ${a.detail}\n`;
  const out: string[] = [];
  for (const d of devices) {
    out.push(`hca_id:\t${d.name}`);
    if (d.error || !d.attr) {
      out.push(`\terror:\t\t\t${d.error ?? 'unknown'}`, '');
      continue;
    }
    const x = d.attr;
    out.push(
      `\tfw_ver:\t\t\t\t${x.fwVer}`,
      `\tnode_guid:\t\t\t${x.nodeGuid}`,
      `\tsys_image_guid:\t\t\t${x.sysImageGuid}`,
      `\tvendor_id:\t\t\t0x${x.vendorId.toString(16).padStart(4, '0')}`,
      `\tvendor_part_id:\t\t\t${x.vendorPartId}`,
      `\thw_ver:\t\t\t\t0x${x.hwVer.toString(16)}`,
      `\tphys_port_cnt:\t\t\t${x.physPortCnt}`,
      `\tmax_qp:\t\t\t\t${x.maxQp}`,
      `\tmax_qp_wr:\t\t\t${x.maxQpWr}`,
      `\tmax_sge:\t\t\t${x.maxSge}`,
      `\tmax_cqe:\t\t\t${x.maxCqe}`,
      `\tmax_mr_size:\t\t\t0x${x.maxMrSize.toString(16)}`,
      `\tmax_qp_rd_atom:\t\t\t${x.maxQpRdAtom}`,
    );
    for (const p of d.ports) {
      out.push(
        `\t\tport:\t${p.portNum}`,
        `\t\t\tstate:\t\t\tPORT_${p.state} (${p.attr.state})`,
        `\t\t\tmax_mtu:\t\t${p.maxMtuBytes} (${p.attr.maxMtu})`,
        `\t\t\tactive_mtu:\t\t${p.activeMtuBytes} (${p.attr.activeMtu})`,
        `\t\t\tsm_lid:\t\t\t${p.attr.smLid}`,
        `\t\t\tport_lid:\t\t${p.attr.lid}`,
        `\t\t\tlink_layer:\t\t${p.linkLayer}`,
        `\t\t\tnetdev:\t\t\t${p.netdevs.join(', ') || '-'}${p.addresses.length ? ` (${p.addresses.join(', ')})` : ''}`,
      );
      for (const g of p.gids) {
        const mark = g.index === p.selectedGidIndex ? '  <- ffnet' : '';
        out.push(`\t\t\tGID[${String(g.index).padStart(3)}]:\t\t${g.gid}, ${g.type}${mark}`);
      }
    }
    out.push('');
  }
  return `${out.join('\n')}\n`;
}
