import { createRequire } from 'node:module';
import { errorFromCode, type FfnetError, StatusCode } from '@ffnet/common';

type Koffi = typeof import('koffi');

/** The few libc calls this package makes, bound once through koffi. Internal: not re-exported. */
export interface Libc {
  readonly koffi: Koffi;
  eventfd(initval: number, flags: number): number;
  read(fd: number, buf: Buffer, n: number): number;
  write(fd: number, buf: Buffer, n: number): number;
  close(fd: number): number;
  /** fcntl(fd, F_DUPFD_CLOEXEC, 0). */
  dupCloexec(fd: number): number;
  epollCreate1(flags: number): number;
  epollCtl(epfd: number, op: number, fd: number, event: Buffer): number;
  errno(): number;
}

export const O_CLOEXEC = 0o2000000;
export const O_NONBLOCK = 0o4000;
const F_DUPFD_CLOEXEC = 1030;

let loaded: Libc | Error | undefined;
let errnoNames: Map<number, string> | undefined;

function load(): Libc {
  if (process.platform !== 'linux') {
    throw new Error(`eventfd and epoll are Linux interfaces, and this platform is ${process.platform}`);
  }
  // Loaded on first use, not at import: importing @ffnet/event must work where koffi's native binary is
  // missing (e.g. installed with --omit=optional), so the timer half stays usable and the fd half can say why not.
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const lib = koffi.load('libc.so.6');
  const fcntl = lib.func('int fcntl(int fd, int cmd, ...)');
  return {
    koffi,
    eventfd: lib.func('int eventfd(unsigned int initval, int flags)'),
    read: lib.func('intptr_t read(int fd, void *buf, size_t count)'),
    write: lib.func('intptr_t write(int fd, const void *buf, size_t count)'),
    close: lib.func('int close(int fd)'),
    dupCloexec: (fd) => fcntl(fd, F_DUPFD_CLOEXEC, 'int', 0),
    epollCreate1: lib.func('int epoll_create1(int flags)'),
    epollCtl: lib.func('int epoll_ctl(int epfd, int op, int fd, void *event)'),
    errno: () => koffi.errno(),
  };
}

function unavailable(cause: Error): FfnetError {
  return errorFromCode(StatusCode.EpollInitError, `fd watching and eventfd are unavailable: ${cause.message}`, { cause });
}

/** The bound libc calls; throws EpollInitError (code 2022) naming the load failure if koffi or libc can't be used. */
export function libc(): Libc {
  if (loaded === undefined) {
    try {
      loaded = load();
    } catch (e) {
      loaded = e instanceof Error ? e : new Error(String(e));
    }
  }
  if (loaded instanceof Error) throw unavailable(loaded);
  return loaded;
}

/**
 * Whether FdWatcher and EventFd can work in this process, and if not, why (the error they would throw).
 * Never throws; TimerWheel doesn't depend on it.
 */
export function nativeSupport(): { ok: true } | { ok: false; error: FfnetError } {
  try {
    libc();
    return { ok: true };
  } catch (e) {
    return { ok: false, error: e as FfnetError };
  }
}

/** `EBADF (errno 9)`: errors name the errno so a failure report is actionable without strace. */
export function errnoName(sys: Libc, errno: number): string {
  if (errnoNames === undefined) {
    errnoNames = new Map();
    for (const [name, value] of Object.entries(sys.koffi.os.errno)) {
      if (!errnoNames.has(value)) errnoNames.set(value, name);
    }
  }
  return `${errnoNames.get(errno) ?? 'E?'} (errno ${errno})`;
}

export function sysError(sys: Libc, code: number, what: string): FfnetError {
  return errorFromCode(code, `${what}: ${errnoName(sys, sys.errno())}`);
}
