import { BlockList, isIP } from 'node:net';
import { InvalidConfigError } from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';

/**
 * Who may call an administrative built-in: nobody, local peers only (a unix:// peer running as the server's uid,
 * or a tcp:// peer on loopback), or anyone who can reach the port.
 */
export type AdminAccess = 'none' | 'local' | 'any';

/** Access to Core's administrative methods (ServerOptions.admin). */
export interface AdminOptions {
  /** Core.shutdown. Default 'none': a peer must never be able to stop a server unless its operator chose so. */
  shutdown?: AdminAccess;
  /** Core.getConfig and Core.stats, which reveal the configuration, bound addresses and method names. Default 'local'. */
  inspect?: AdminAccess;
}

export const DEFAULT_ADMIN: Readonly<Required<AdminOptions>> = Object.freeze({ shutdown: 'none', inspect: 'local' });

const ACCESS: readonly AdminAccess[] = ['none', 'local', 'any'];

/** The options with defaults filled in; anything but a known level is an InvalidConfigError. */
export function adminOptions(opts: AdminOptions | undefined): Readonly<Required<AdminOptions>> {
  if (opts === undefined) return DEFAULT_ADMIN;
  if (opts === null || typeof opts !== 'object') throw new InvalidConfigError(`admin must be an object, got ${opts === null ? 'null' : typeof opts}`);
  const out = { shutdown: opts.shutdown ?? DEFAULT_ADMIN.shutdown, inspect: opts.inspect ?? DEFAULT_ADMIN.inspect };
  for (const key of ['shutdown', 'inspect'] as const) {
    if (!ACCESS.includes(out[key])) throw new InvalidConfigError(`admin.${key} must be one of ${ACCESS.join(', ')}, got ${String(out[key])}`);
  }
  return Object.freeze(out);
}

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
// Also matches IPv4-mapped forms (::ffff:127.0.0.1) and spellings such as 0:0:0:0:0:0:0:1.
loopback.addAddress('::1', 'ipv6');

/**
 * Whether the peer of `t` runs on this host: a unix:// peer whose uid (SO_PEERCRED) is ours, or a tcp:// peer on
 * a loopback address. Anything that cannot be established, credentials that cannot be read included, and every
 * rdma:// peer, counts as remote.
 */
export function isLocalPeer(t: Transport): boolean {
  const a = t.address;
  if (a.scheme === 'unix') {
    const creds = t.peerCredentials();
    return creds !== undefined && typeof process.getuid === 'function' && creds.uid === process.getuid();
  }
  if (a.scheme !== 'tcp') return false;
  const family = isIP(a.host);
  return family !== 0 && loopback.check(a.host, family === 4 ? 'ipv4' : 'ipv6');
}

/** Whether `access` lets the peer of `t` in. */
export function allowed(access: AdminAccess, t: Transport): boolean {
  return access === 'any' || (access === 'local' && isLocalPeer(t));
}
