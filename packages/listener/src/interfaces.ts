import { networkInterfaces } from 'node:os';

/**
 * What kind of NIC an address sits on, after 3FS's name-prefix rules (`checkNicType` in Listener.cc):
 * `tcp` for en/eth/bond/xgbe or the custom prefix, `ipoib` for ib*, `local` for lo*.
 */
export type InterfaceKind = 'tcp' | 'ipoib' | 'local';

export interface InterfaceAddress {
  readonly name: string;
  readonly ip: string;
  readonly kind: InterfaceKind;
}

const TCP_PREFIXES = ['en', 'eth', 'bond', 'xgbe'] as const;

export function classifyInterface(name: string, customPrefix: string): InterfaceKind | undefined {
  if (TCP_PREFIXES.some((p) => name.startsWith(p))) return 'tcp';
  if (customPrefix !== '' && name.startsWith(customPrefix)) return 'tcp';
  if (name.startsWith('ib')) return 'ipoib';
  if (name.startsWith('lo')) return 'local';
  return undefined;
}

export interface SelectOptions {
  readonly filter: readonly string[];
  readonly customPrefix: string;
  readonly kinds: readonly InterfaceKind[];
}

/**
 * The IPv4 addresses to listen on, in the order the OS lists them. libuv only reports interfaces that are
 * both UP and RUNNING, so a NIC without carrier is left out (3FS looks at IFF_UP alone).
 */
export function selectInterfaceAddresses(opts: SelectOptions): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  const table = networkInterfaces();
  for (const [name, infos] of Object.entries(table)) {
    if (!infos) continue;
    if (opts.filter.length > 0 && !opts.filter.includes(name)) continue;
    const kind = classifyInterface(name, opts.customPrefix);
    if (kind === undefined || !opts.kinds.includes(kind)) continue;
    for (const info of infos) {
      // Node 18.0–18.3 reported family as the number 4.
      if ((info.family as string | number) !== 'IPv4' && (info.family as string | number) !== 4) continue;
      if (!info.netmask) continue;
      out.push({ name, ip: info.address, kind });
    }
  }
  return out;
}

/** The up interface that owns `ip`, so an explicitly given host still reports its kind. */
export function findInterfaceOf(ip: string, customPrefix: string): InterfaceAddress | undefined {
  for (const [name, infos] of Object.entries(networkInterfaces())) {
    for (const info of infos ?? []) {
      if (info.address === ip) return { name, ip, kind: classifyInterface(name, customPrefix) ?? 'tcp' };
    }
  }
  return undefined;
}
