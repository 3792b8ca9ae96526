import { EpollAddError, errorFromCode, type FfnetError, InvalidArgError, StatusCode } from '@ffnet/common';
import type * as koffi from 'koffi';
import { errnoName, type Libc, libc, O_CLOEXEC, sysError } from './native.js';

type PollHandle = koffi.node.PollHandle;
// The last overload is poll(fd, callback).
type PollCallback = Parameters<typeof koffi.node.poll>[1];

/** Called when the fd is readable or hung up (a read then returns EOF/EAGAIN, never blocks). */
export type ReadableCallback = (fd: number) => void;

export interface FdWatcherOptions {
  /** Start watching at once (default true). */
  start?: boolean;
  /** Keep the process alive while watching (default true, like a socket). */
  ref?: boolean;
  /**
   * Receives EpollWaitError when the poll reports an error on the fd (POLLERR); the watcher is stopped by then.
   * Without it the error is thrown from the loop callback, i.e. becomes an uncaught exception.
   */
  onError?: (error: FfnetError) => void;
  /** Names the fd in error messages, e.g. `comp channel of rdma://10.0.0.1:8000`. */
  label?: string;
}

const EPOLL_CTL_ADD = 1;
const READABLE = { readable: true } as const;

// Open watchers are held here so that one the caller dropped without close() keeps working instead of
// vanishing at the next GC (koffi's finalizer would stop the poll). The cost is that an unclosed watcher leaks,
// which is the same contract as any Node handle.
const open = new Set<FdWatcher>();

/**
 * Watches an fd for readability on Node's own event loop, through koffi.node.poll (a libuv uv_poll_t on the
 * loop's epoll): no thread, no busy-poll. Level-triggered: the callback repeats while the fd stays readable, so
 * drain it in the callback (or stop()).
 *
 * The watcher polls a private dup of `fd`, which it closes on close(); `fd` itself is never closed here. Because
 * koffi aborts the whole process when libuv refuses an fd (bad fd, regular file, fd already polled on this loop),
 * the dup is first checked with epoll_ctl, and the dup's fresh number can't collide with a handle Node or another
 * watcher already has. libuv puts the file in O_NONBLOCK mode, which the original fd shares.
 */
export class FdWatcher {
  /** The watched fd, as given. */
  readonly fd: number;
  readonly #sys: Libc;
  readonly #onReadable: ReadableCallback;
  readonly #onError: ((error: FfnetError) => void) | undefined;
  readonly #label: string;
  readonly #onPoll: PollCallback;
  #dup: number;
  #handle: PollHandle | null = null;
  #active = false;
  #ref: boolean;

  constructor(fd: number, onReadable: ReadableCallback, options: FdWatcherOptions = {}) {
    if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fff_ffff) throw new InvalidArgError(`FdWatcher: invalid fd ${fd}`);
    if (typeof onReadable !== 'function') throw new InvalidArgError('FdWatcher: onReadable must be a function');
    this.fd = fd;
    this.#onReadable = onReadable;
    this.#onError = options.onError;
    this.#label = options.label ?? `fd ${fd}`;
    this.#ref = options.ref ?? true;
    this.#sys = libc();
    this.#dup = pollableDup(this.#sys, fd, this.#label);
    // The koffi callback really receives (status, events); its index.d.ts declares (events) only. Readable and
    // hang-up are both "a read won't block", so events need no inspection.
    const onPoll = (status: number): void => {
      // A stop() or close() earlier in this loop turn must win over an event libuv already collected.
      if (!this.#active) return;
      if (status < 0) this.#fail(status);
      else this.#onReadable(this.fd);
    };
    this.#onPoll = onPoll as unknown as PollCallback;
    open.add(this);
    if (options.start ?? true) this.start();
  }

  /** Watching now (started and not stopped, closed or failed). */
  get active(): boolean {
    return this.#active;
  }

  get closed(): boolean {
    return this.#dup < 0;
  }

  /** Starts watching. Idempotent; throws EpollAddError once closed. */
  start(): this {
    if (this.#dup < 0) throw new EpollAddError(`${this.#label}: start() on a closed FdWatcher`);
    if (this.#active) return this;
    if (this.#handle === null) {
      this.#handle = this.#sys.koffi.node.poll(this.#dup, READABLE, this.#onPoll);
      if (!this.#ref) this.#handle.unref();
    } else {
      this.#handle.start(READABLE, this.#onPoll);
    }
    this.#active = true;
    return this;
  }

  /** Stops watching; no callback runs after this returns, even for an event already collected. Idempotent. */
  stop(): this {
    if (!this.#active) return this;
    this.#active = false;
    this.#handle?.stop();
    return this;
  }

  /** Lets the process exit while this watcher is active. */
  unref(): this {
    this.#ref = false;
    this.#handle?.unref();
    return this;
  }

  /** Keeps the process alive while this watcher is active (the default). */
  ref(): this {
    this.#ref = true;
    this.#handle?.ref();
    return this;
  }

  /**
   * Stops watching and frees the poll handle and the private dup. Does not close `fd`. Idempotent. Call it before
   * the owner of `fd` closes it (e.g. before ibv_destroy_comp_channel).
   */
  close(): void {
    const dup = this.#dup;
    if (dup < 0) return;
    this.#active = false;
    this.#dup = -1;
    open.delete(this);
    // koffi's close() takes the fd out of epoll synchronously (uv_close frees the handle later, without touching
    // the fd), so closing the dup right after cannot race the loop. Never call into the handle again: koffi
    // dereferences a null handle after close().
    this.#handle?.close();
    this.#handle = null;
    this.#sys.close(dup);
  }

  #fail(status: number): void {
    this.#active = false;
    this.#handle?.stop();
    const error = errorFromCode(StatusCode.EpollWaitError, `${this.#label}: poll reported ${errnoName(this.#sys, -status)}; watcher stopped`);
    if (this.#onError === undefined) throw error;
    this.#onError(error);
  }
}

/** Creates and starts an FdWatcher (pass `{ start: false }` to only create it). */
export function watchFd(fd: number, onReadable: ReadableCallback, options?: FdWatcherOptions): FdWatcher {
  return new FdWatcher(fd, onReadable, options);
}

/** The dup to poll, after proving epoll accepts it: libuv would otherwise abort the process through koffi. */
function pollableDup(sys: Libc, fd: number, label: string): number {
  const dup = sys.dupCloexec(fd);
  if (dup < 0) throw sysError(sys, StatusCode.EpollAddError, `${label}: cannot watch fd ${fd}`);
  const ep = sys.epollCreate1(O_CLOEXEC);
  if (ep < 0) {
    const error = sysError(sys, StatusCode.EpollAddError, `${label}: epoll_create1 failed`);
    sys.close(dup);
    throw error;
  }
  // struct epoll_event: events u32 at 0, then data u64 (12 bytes packed on x86-64, 16 on other arches).
  const event = Buffer.alloc(16);
  event.writeUInt32LE(1 /* EPOLLIN */, 0);
  const rc = sys.epollCtl(ep, EPOLL_CTL_ADD, dup, event);
  const error = rc === 0 ? undefined : sysError(sys, StatusCode.EpollAddError, `${label}: fd ${fd} cannot be polled`);
  sys.close(ep);
  if (error === undefined) return dup;
  sys.close(dup);
  throw error;
}
