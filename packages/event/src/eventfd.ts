import { errorFromCode, InvalidArgError, StatusCode } from '@ffnet/common';
import { type Libc, libc, O_CLOEXEC, O_NONBLOCK, sysError } from './native.js';

const EFD_SEMAPHORE = 1;
const EAGAIN = 11;
const MAX_COUNTER = 0xffff_ffff_ffff_fffen;

export interface EventFdOptions {
  /** Initial counter value (default 0). */
  initial?: number;
  /** Each read takes 1 from the counter instead of all of it (EFD_SEMAPHORE). */
  semaphore?: boolean;
}

/**
 * A Linux eventfd: a 64-bit counter behind an fd, so a write from any thread (or process) can wake an
 * FdWatcher on this loop. Always non-blocking and close-on-exec. 3FS's EventLoop uses one as its wake-up.
 */
export class EventFd {
  readonly #sys: Libc;
  #fd: number;
  // Allocated, not pooled: koffi passes this memory to read(2)/write(2), and a slice of Buffer's shared pool
  // would let a stray length clobber a neighbour.
  readonly #buf = Buffer.alloc(8);

  constructor(options: EventFdOptions = {}) {
    const initial = options.initial ?? 0;
    if (!Number.isInteger(initial) || initial < 0 || initial > 0xffff_ffff) {
      throw new InvalidArgError(`EventFd initial value must be an integer in [0, 2^32), got ${initial}`);
    }
    this.#sys = libc();
    this.#fd = this.#sys.eventfd(initial, O_CLOEXEC | O_NONBLOCK | (options.semaphore ? EFD_SEMAPHORE : 0));
    if (this.#fd < 0) throw sysError(this.#sys, StatusCode.EpollInitError, 'eventfd() failed');
  }

  /** The fd number, or -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * Adds `value` (default 1) to the counter, making the fd readable. Throws EpollWakeUpError if closed or if the
   * counter would pass 2^64-2 (EAGAIN: nobody is reading).
   */
  write(value: number | bigint = 1): void {
    const buf = this.#buf;
    if (typeof value === 'number') {
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new InvalidArgError(`EventFd.write value must be a non-negative safe integer, got ${value}`);
      }
      buf.writeUInt32LE(value % 0x1_0000_0000, 0);
      buf.writeUInt32LE(Math.floor(value / 0x1_0000_0000), 4);
    } else {
      if (value < 0n || value > MAX_COUNTER) {
        throw new InvalidArgError(`EventFd.write value must be in [0, 2^64-2], got ${value}`);
      }
      buf.writeBigUInt64LE(value, 0);
    }
    if (this.#fd < 0) throw errorFromCode(StatusCode.EpollWakeUpError, 'EventFd.write on a closed eventfd');
    if (this.#sys.write(this.#fd, buf, 8) !== 8) {
      throw sysError(this.#sys, StatusCode.EpollWakeUpError, `write to eventfd ${this.#fd} failed`);
    }
  }

  /**
   * Takes the counter (or 1 of it in semaphore mode) and resets it; 0n when nothing was pending. Being
   * non-blocking, this is safe to call from a level-triggered FdWatcher callback that fired spuriously.
   */
  read(): bigint {
    if (this.#fd < 0) throw errorFromCode(StatusCode.OSError, 'EventFd.read on a closed eventfd');
    if (this.#sys.read(this.#fd, this.#buf, 8) === 8) return this.#buf.readBigUInt64LE(0);
    if (this.#sys.errno() === EAGAIN) return 0n;
    throw sysError(this.#sys, StatusCode.OSError, `read from eventfd ${this.#fd} failed`);
  }

  /** Closes the fd. Idempotent. Close any FdWatcher on it first (see FdWatcher). */
  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    if (this.#sys.close(fd) !== 0) throw sysError(this.#sys, StatusCode.OSError, `close of eventfd ${fd} failed`);
  }
}
