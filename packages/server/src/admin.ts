import { BlockList, isIP } from 'node:net';
import { InvalidConfigError } from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';
import type { PeerIdentity } from '@ffnet/worker';

/**
 * Who may call an administrative built-in, strongest first:
 * - 'none': nobody;
 * - 'admin': an admin identity: the call's principal (from the server's authenticator, or rdma's handshake) has
 *   the role `admin`. The authorizer, when there is one, has allowed the call before Core sees it. With no
 *   authenticator nobody is an admin: a server that trusts its own uid says so in its authenticator
 *   (`req.credentials?.uid === process.getuid()`), so the trust is written down where it is granted;
 * - 'local': an admin identity, a unix:// peer running as the server's own uid (SO_PEERCRED; unreadable
 *   credentials count as not), or any tcp:// peer on loopback. Weaker: every local user and every process that
 *   can make a loopback connection (a proxy, a container sharing the network namespace) gets in;
 * - 'any': anyone who can reach the port. Only behind a network you control.
 */
export type AdminAccess = 'none' | 'admin' | 'local' | 'any';

/** Access to Core's administrative methods (ServerOptions.admin). */
export interface AdminOptions {
  /** Core.shutdown. Default 'admin'. */
  shutdown?: AdminAccess;
  /** Core.getConfig and Core.stats, which reveal the configuration, bound addresses and method names. Default 'admin'. */
  inspect?: AdminAccess;
}

export const DEFAULT_ADMIN: Readonly<Required<AdminOptions>> = Object.freeze({ shutdown: 'admin', inspect: 'admin' });

/** The role a principal needs for 'admin' access. */
export const ADMIN_ROLE = 'admin';

const ACCESS: readonly AdminAccess[] = ['none', 'admin', 'local', 'any'];

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
 * Whether the peer of `t` runs on this host: a unix:// (or shm://) peer whose uid (SO_PEERCRED) is ours, or a tcp:// peer on
 * a loopback address. Anything that cannot be established, credentials that cannot be read included, and every
 * rdma:// peer, counts as remote.
 */
export function isLocalPeer(t: Transport): boolean {
  const a = t.address;
  if (a.scheme === 'unix' || a.scheme === 'shm') {
    const creds = t.peerCredentials();
    return creds !== undefined && typeof process.getuid === 'function' && creds.uid === process.getuid();
  }
  if (a.scheme !== 'tcp') return false;
  const family = isIP(a.host);
  return family !== 0 && loopback.check(a.host, family === 4 ? 'ipv4' : 'ipv6');
}

/** Whether the caller is an admin identity: an authenticated principal with the role `admin`. */
export function isAdmin(identity: PeerIdentity): boolean {
  return identity.principal?.roles?.includes(ADMIN_ROLE) === true;
}

/** Whether `access` lets the caller in. */
export function allowed(access: AdminAccess, identity: PeerIdentity, t: Transport): boolean {
  switch (access) {
    case 'any':
      return true;
    case 'local':
      return isAdmin(identity) || isLocalPeer(t);
    case 'admin':
      return isAdmin(identity);
    default:
      return false;
  }
}
