import { isIPv4, isIPv6 } from 'node:net';
import { InvalidAddrError } from '@ffnet/serde';

export type Scheme = 'tcp' | 'tls' | 'unix' | 'rdma' | 'shm';

/**
 * Where a transport connects or listens. `host`/`port` are used by tcp, tls and rdma, `path` by unix; the unused
 * fields are '' and 0 so that every Address has the same shape (one hidden class on hot paths).
 */
export interface Address {
  readonly scheme: Scheme;
  /** IPv4, hostname (lower-cased) or IPv6 without brackets. '' for unix. */
  readonly host: string;
  /** 0..65535; 0 asks the OS for a port when listening. 0 for unix. */
  readonly port: number;
  /** Absolute socket path for unix and shm, '' otherwise. */
  readonly path: string;
}

/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const UNIX_PATH_MAX = 107;
const HOSTNAME_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function bad(input: string, why: string): never {
  throw new InvalidAddrError(`invalid address '${input}': ${why}`);
}

function checkPort(input: string, port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) bad(input, `port ${port} is not an integer in 0..65535`);
}

/** Validates and normalises a tcp/rdma host (IPv6 given without brackets). */
function checkHost(input: string, host: string): string {
  if (host === '') bad(input, 'host is empty');
  if (host.includes(':')) {
    if (!isIPv6(host)) bad(input, `'${host}' is not a valid IPv6 address`);
    return host.toLowerCase();
  }
  if (/^[0-9.]+$/.test(host)) {
    if (!isIPv4(host)) bad(input, `'${host}' is not a valid IPv4 address`);
    return host;
  }
  const h = host.toLowerCase();
  if (h.length > 253) bad(input, 'hostname is longer than 253 characters');
  for (const label of h.split('.')) {
    if (!HOSTNAME_LABEL.test(label)) {
      bad(input, `'${host}' is not a valid hostname (labels of letters, digits and inner hyphens, 1-63 characters each)`);
    }
  }
  return h;
}

function checkPath(input: string, path: string): void {
  if (!path.startsWith('/')) bad(input, 'unix socket path must be absolute (unix:///path/to.sock)');
  if (path.includes('\0')) bad(input, 'unix socket path contains a NUL byte');
  if (path.endsWith('/')) bad(input, 'unix socket path names a directory');
  const len = Buffer.byteLength(path);
  if (len > UNIX_PATH_MAX) bad(input, `unix socket path is ${len} bytes, the limit is ${UNIX_PATH_MAX}`);
}

function hostPort(scheme: 'tcp' | 'tls' | 'rdma', host: string, port: number, input: string): Address {
  checkPort(input, port);
  return { scheme, host: checkHost(input, host), port, path: '' };
}

export function tcpAddress(host: string, port: number): Address {
  return hostPort('tcp', host, port, `tcp://${host}:${port}`);
}

export function tlsAddress(host: string, port: number): Address {
  return hostPort('tls', host, port, `tls://${host}:${port}`);
}

export function rdmaAddress(host: string, port: number): Address {
  return hostPort('rdma', host, port, `rdma://${host}:${port}`);
}

export function unixAddress(path: string): Address {
  checkPath(`unix://${path}`, path);
  return { scheme: 'unix', host: '', port: 0, path };
}

/** `shm:///path`: a unix socket that carries the control bytes of @ffnet/shm's shared-memory backend. */
export function shmAddress(path: string): Address {
  checkPath(`shm://${path}`, path);
  return { scheme: 'shm', host: '', port: 0, path };
}

/**
 * `tcp://host:port`, `tls://host:port`, `rdma://host:port` (host: IPv4, hostname or `[IPv6]`), `unix:///abs/path.sock`
 * or `shm:///abs/path.sock`.
 * The scheme is matched case-insensitively, as 3FS does; there is no default scheme.
 */
export function parseAddress(s: string): Address {
  if (typeof s !== 'string') throw new InvalidAddrError(`invalid address ${String(s)}: not a string`);
  const sep = s.indexOf('://');
  if (sep < 0) bad(s, 'missing scheme (expected tcp://, tls://, unix://, rdma:// or shm://)');
  const scheme = s.slice(0, sep).toLowerCase();
  const rest = s.slice(sep + 3);
  if (scheme === 'unix' || scheme === 'shm') {
    checkPath(s, rest);
    return { scheme, host: '', port: 0, path: rest };
  }
  if (scheme !== 'tcp' && scheme !== 'tls' && scheme !== 'rdma') bad(s, `unknown scheme '${scheme}' (expected tcp, tls, unix, rdma or shm)`);
  let host: string;
  let portText: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) bad(s, "unterminated '[' around the IPv6 host");
    host = rest.slice(1, close);
    if (!isIPv6(host)) bad(s, `'${host}' is not a valid IPv6 address`);
    if (rest[close + 1] !== ':') bad(s, 'missing :port after the IPv6 host');
    portText = rest.slice(close + 2);
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon < 0) bad(s, 'missing :port');
    host = rest.slice(0, colon);
    if (host.includes(':')) bad(s, 'an IPv6 host must be written in brackets, e.g. tcp://[::1]:8000');
    portText = rest.slice(colon + 1);
  }
  if (!/^[0-9]{1,5}$/.test(portText)) bad(s, `port '${portText}' is not a decimal number in 0..65535`);
  return hostPort(scheme, host, Number(portText), s);
}

export function formatAddress(a: Address): string {
  if (a.scheme === 'unix' || a.scheme === 'shm') return `${a.scheme}://${a.path}`;
  return a.host.includes(':') ? `${a.scheme}://[${a.host}]:${a.port}` : `${a.scheme}://${a.host}:${a.port}`;
}

/** Parses a string; re-validates an object (so hand-built Addresses get the same checks and normal form). */
export function toAddress(a: Address | string): Address {
  if (typeof a === 'string') return parseAddress(a);
  if (a === null || typeof a !== 'object') throw new InvalidAddrError(`invalid address ${String(a)}: not an Address or string`);
  if (a.scheme === 'unix') return unixAddress(a.path);
  if (a.scheme === 'shm') return shmAddress(a.path);
  if (a.scheme === 'tcp' || a.scheme === 'tls' || a.scheme === 'rdma') return hostPort(a.scheme, a.host, a.port, formatAddress(a));
  throw new InvalidAddrError(`invalid address: unknown scheme '${String((a as { scheme: unknown }).scheme)}' (expected tcp, tls, unix, rdma or shm)`);
}
