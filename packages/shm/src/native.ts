/**
 * libc through koffi, loaded on first use and never at import: `import '@ffnet/shm'` works on any machine, and
 * shm().available() says why it cannot be used where koffi, Linux or memfd are missing.
 */
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import type * as KoffiModule from 'koffi';

type Koffi = typeof KoffiModule;
type Fn = ReturnType<KoffiModule.LibraryHandle['func']>;

// Linux values, the same on x64 and arm64 (the only architectures available() accepts).
export const MFD_CLOEXEC = 0x1;
export const MFD_ALLOW_SEALING = 0x2;
export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;
export const F_SEAL_SEAL = 0x1;
export const F_SEAL_SHRINK = 0x2;
export const F_SEAL_GROW = 0x4;
/** What a segment must carry before it is mapped: it can neither shrink (SIGBUS) nor grow, nor have seals removed. */
export const REQUIRED_SEALS = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW;
const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_SHARED = 0x1;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_DONTWAIT = 0x40;
const MSG_CTRUNC = 0x8;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x4000_0000;

export const EAGAIN = osConstants.errno.EAGAIN;

interface Libc {
  readonly k: Koffi;
  readonly memfd_create: Fn;
  readonly ftruncate: Fn;
  readonly fcntl: Fn;
  readonly mmap: Fn;
  readonly munmap: Fn;
  readonly close: Fn;
  readonly sendmsg: Fn;
  readonly recvmsg: Fn;
  /** msghdr at 0, iovec at 64, control at 96 (CONTROL_BYTES), data at 160 (DATA_BYTES). */
  readonly scratch: bigint;
  readonly view: DataView;
  readonly bytes: Buffer;
}

const MSGHDR = 0;
const IOVEC = 64;
const CONTROL = 96;
/** Room for 10 fds: a peer that sends more than we asked for is seen (and they are closed), not truncated away. */
const CONTROL_BYTES = 56;
const DATA = 160;
export const DATA_BYTES = 96;
const SCRATCH_BYTES = DATA + DATA_BYTES;

let state: { libc: Libc } | { reason: string } | undefined;

function load(): { libc: Libc } | { reason: string } {
  if (state !== undefined) return state;
  if (process.platform !== 'linux') {
    state = { reason: `not Linux (${process.platform})` };
    return state;
  }
  if (process.arch !== 'x64' && process.arch !== 'arm64') {
    state = { reason: `unsupported architecture ${process.arch} (x64 or arm64)` };
    return state;
  }
  let k: Koffi;
  try {
    k = createRequire(import.meta.url)('koffi') as Koffi;
  } catch (e) {
    state = { reason: `koffi, an optional peer dependency of @ffnet/shm, cannot be loaded (${e instanceof Error ? e.message : String(e)})` };
    return state;
  }
  try {
    const lib = k.load('libc.so.6');
    const scratch = k.alloc('uint8_t', SCRATCH_BYTES) as unknown as bigint;
    const ab = k.view(scratch as never, SCRATCH_BYTES);
    const libc: Libc = {
      k,
      memfd_create: lib.func('int memfd_create(const char *name, unsigned int flags)'),
      ftruncate: lib.func('int ftruncate(int fd, int64_t length)'),
      fcntl: lib.func('int fcntl(int fd, int cmd, ...)'),
      mmap: lib.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
      munmap: lib.func('int munmap(void *addr, size_t length)'),
      close: lib.func('int close(int fd)'),
      sendmsg: lib.func('intptr_t sendmsg(int fd, void *msg, int flags)'),
      recvmsg: lib.func('intptr_t recvmsg(int fd, void *msg, int flags)'),
      scratch,
      view: new DataView(ab),
      bytes: Buffer.from(ab),
    };
    // memfd_create appeared in Linux 3.17 / glibc 2.27: try it once so available() can say so.
    const probe = libc.memfd_create('ffnet-shm-probe', MFD_CLOEXEC | MFD_ALLOW_SEALING) as number;
    if (probe < 0) {
      state = { reason: `memfd_create failed: ${errnoText(k.errno())}` };
      return state;
    }
    libc.close(probe);
    state = { libc };
  } catch (e) {
    state = { reason: `libc functions cannot be bound (${e instanceof Error ? e.message : String(e)})` };
  }
  return state;
}

/** null when usable, else why not. */
export function unavailableReason(): string | null {
  const s = load();
  return 'reason' in s ? s.reason : null;
}

function libc(): Libc {
  const s = load();
  if ('reason' in s) throw new Error(s.reason);
  return s.libc;
}

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(osConstants.errno)) if (!errnoNames.has(value)) errnoNames.set(value, name);

export function errnoText(code: number): string {
  return `${errnoNames.get(code) ?? 'errno'} (${code})`;
}

/** A native call's failure: `what` and errno. */
export class NativeError extends Error {
  readonly errno: number;
  constructor(what: string, errno: number) {
    super(`${what} failed: ${errnoText(errno)}`);
    this.errno = errno;
  }
}

/** A memory mapping: `bytes` is valid until unmap(), which is idempotent. */
export interface Mapping {
  readonly bytes: Buffer;
  readonly size: number;
  unmap(): void;
}

/** A new sealed memfd of `size` bytes (size and seals fixed for its life). Returns the fd. */
export function createSegment(name: string, size: number): number {
  const c = libc();
  const fd = c.memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING) as number;
  if (fd < 0) throw new NativeError('memfd_create', c.k.errno());
  if ((c.ftruncate(fd, size) as number) !== 0 || (c.fcntl(fd, F_ADD_SEALS, 'int', REQUIRED_SEALS) as number) !== 0) {
    const e = new NativeError('sizing and sealing the segment', c.k.errno());
    c.close(fd);
    throw e;
  }
  return fd;
}

/** F_GET_SEALS of `fd`, or -1 (not a memfd, or no sealing). */
export function sealsOf(fd: number): number {
  return libc().fcntl(fd, F_GET_SEALS) as number;
}

export function closeFd(fd: number): void {
  libc().close(fd);
}

/** Maps `size` bytes of `fd` shared, read-only unless `writable`. */
export function mapSegment(fd: number, size: number, writable: boolean): Mapping {
  const c = libc();
  const ptr = c.mmap(null, size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0) as bigint;
  if (ptr === MAP_FAILED || ptr === 0n) throw new NativeError('mmap', c.k.errno());
  const bytes = Buffer.from(c.k.view(ptr as never, size));
  let mapped = true;
  return {
    bytes,
    size,
    unmap() {
      if (!mapped) return;
      mapped = false;
      c.munmap(ptr, size);
    },
  };
}

/**
 * sendmsg of `data` with `fds` as SCM_RIGHTS on a connected unix socket, non-blocking. Returns the bytes sent, or
 * throws NativeError (EAGAIN included: the caller sends first, into an empty socket buffer).
 */
export function sendWithFds(sock: number, data: Uint8Array, fds: readonly number[]): number {
  const c = libc();
  if (data.length > DATA_BYTES || fds.length * 4 + 16 > CONTROL_BYTES) throw new RangeError('hello too large');
  const v = c.view;
  const base = c.scratch;
  c.bytes.fill(0, 0, DATA);
  c.bytes.set(data, DATA);
  const cmsgLen = 16 + fds.length * 4;
  const space = (cmsgLen + 7) & ~7;
  v.setBigUint64(MSGHDR + 16, base + BigInt(IOVEC), true); // msg_iov
  v.setBigUint64(MSGHDR + 24, 1n, true); // msg_iovlen
  v.setBigUint64(MSGHDR + 32, base + BigInt(CONTROL), true); // msg_control
  v.setBigUint64(MSGHDR + 40, BigInt(space), true); // msg_controllen
  v.setBigUint64(IOVEC, base + BigInt(DATA), true);
  v.setBigUint64(IOVEC + 8, BigInt(data.length), true);
  v.setBigUint64(CONTROL, BigInt(cmsgLen), true); // cmsg_len
  v.setInt32(CONTROL + 8, SOL_SOCKET, true);
  v.setInt32(CONTROL + 12, SCM_RIGHTS, true);
  for (let i = 0; i < fds.length; i++) v.setInt32(CONTROL + 16 + i * 4, fds[i]!, true);
  const n = Number(c.sendmsg(sock, base + BigInt(MSGHDR), MSG_DONTWAIT | MSG_NOSIGNAL));
  if (n < 0) throw new NativeError('sendmsg', c.k.errno());
  return n;
}

export interface Received {
  /** A copy of the bytes read (at most `max`). */
  readonly data: Buffer;
  /** Every fd that came with them (the caller owns and must close them). */
  readonly fds: number[];
  /** The control data was cut short (fds lost). */
  readonly truncated: boolean;
}

/**
 * One non-blocking recvmsg of at most `max` bytes with room for SCM_RIGHTS. Returns null on EAGAIN (nothing yet),
 * a zero-length `data` at EOF; throws NativeError on other errors. fds arrive close-on-exec.
 */
export function recvWithFds(sock: number, max: number): Received | null {
  const c = libc();
  const v = c.view;
  const base = c.scratch;
  const len = Math.min(max, DATA_BYTES);
  c.bytes.fill(0, 0, DATA);
  v.setBigUint64(MSGHDR + 16, base + BigInt(IOVEC), true);
  v.setBigUint64(MSGHDR + 24, 1n, true);
  v.setBigUint64(MSGHDR + 32, base + BigInt(CONTROL), true);
  v.setBigUint64(MSGHDR + 40, BigInt(CONTROL_BYTES), true);
  v.setBigUint64(IOVEC, base + BigInt(DATA), true);
  v.setBigUint64(IOVEC + 8, BigInt(len), true);
  const n = Number(c.recvmsg(sock, base + BigInt(MSGHDR), MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
  if (n < 0) {
    const errno = c.k.errno();
    if (errno === EAGAIN) return null;
    throw new NativeError('recvmsg', errno);
  }
  const fds: number[] = [];
  const controlLen = Number(v.getBigUint64(MSGHDR + 40, true));
  const flags = v.getInt32(MSGHDR + 48, true);
  // Walk every cmsghdr: each SCM_RIGHTS one installs fds in this process, which must all be accounted for.
  let at = 0;
  while (at + 16 <= controlLen) {
    const cmsgLen = Number(v.getBigUint64(CONTROL + at, true));
    if (cmsgLen < 16 || at + cmsgLen > controlLen) break;
    const level = v.getInt32(CONTROL + at + 8, true);
    const type = v.getInt32(CONTROL + at + 12, true);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let o = 16; o + 4 <= cmsgLen; o += 4) fds.push(v.getInt32(CONTROL + at + o, true));
    }
    at += (cmsgLen + 7) & ~7;
  }
  return { data: Buffer.from(c.bytes.subarray(DATA, DATA + n)), fds, truncated: (flags & MSG_CTRUNC) !== 0 };
}
