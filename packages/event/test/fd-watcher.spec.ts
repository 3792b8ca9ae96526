import { once } from 'node:events';
import { closeSync, openSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FfnetError, StatusCode } from '@ffnet/common';
import { describe, expect, it } from 'vitest';
import { EventFd, FdWatcher, nativeSupport, watchFd } from '../src/index.js';

const openFds = (): number => readdirSync('/proc/self/fd').length;

/** Resolves on the next call of the returned callback; `calls` counts them all. */
function signal<T = void>(): { fire: (v: T) => void; next: () => Promise<T>; calls: number } {
  let waiting: ((v: T) => void) | undefined;
  const s = {
    calls: 0,
    fire(v: T) {
      s.calls++;
      const w = waiting;
      waiting = undefined;
      w?.(v);
    },
    next: () => new Promise<T>((r) => (waiting = r)),
  };
  return s;
}

function expectFfnet(fn: () => unknown, code: number, text: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(FfnetError.is(caught), `expected an FfnetError, got ${String(caught)}`).toBe(true);
  expect((caught as FfnetError).code).toBe(code);
  expect((caught as FfnetError).message).toMatch(text);
}

describe('FdWatcher on an eventfd', () => {
  it('native support is present on this machine', () => {
    expect(nativeSupport()).toEqual({ ok: true });
  });

  it('wakes when a worker thread writes the eventfd, reads the value written, and stop() really stops', async () => {
    const efd = new EventFd();
    const read = signal<bigint>();
    const watcher = watchFd(efd.fd, () => {
      const v = efd.read();
      if (v !== 0n) read.fire(v);
    });
    const worker = new Worker(new URL('./fixtures/eventfd-writer.mjs', import.meta.url), { workerData: { fd: efd.fd } });
    const workerWrite = async (value: bigint) => {
      worker.postMessage(value);
      const [reply] = await once(worker, 'message');
      expect(reply).toEqual({ written: 8, errno: 0 });
    };
    try {
      expect(watcher.active).toBe(true);
      // Above 2^32, so a 32-bit truncation anywhere would show.
      let woke = read.next();
      await workerWrite(0x1234_5678_9abcn);
      expect(await woke).toBe(0x1234_5678_9abcn);

      woke = read.next();
      await workerWrite(7n);
      expect(await woke).toBe(7n);
      expect(read.calls).toBe(2);

      watcher.stop();
      watcher.stop();
      expect(watcher.active).toBe(false);
      await workerWrite(77n);
      // Level-triggered: a live watcher would fire on every loop turn while 77 sits unread.
      await sleep(60);
      expect(read.calls).toBe(2);

      woke = read.next();
      watcher.start();
      watcher.start();
      expect(await woke).toBe(77n);
      expect(read.calls).toBe(3);
    } finally {
      await worker.terminate();
      watcher.close();
      efd.close();
    }
  });

  it('close() is idempotent, keeps the watched fd open, and frees its own fd', async () => {
    const efd = new EventFd();
    const before = openFds();
    const woke = signal();
    const watcher = new FdWatcher(efd.fd, () => woke.fire(), { start: false });
    expect(watcher.active).toBe(false);
    expect(openFds()).toBe(before + 1); // the private dup
    watcher.close();
    watcher.close();
    expect(watcher.closed).toBe(true);
    expect(openFds()).toBe(before);
    // Every method stays safe after close (koffi itself would dereference a freed handle).
    watcher.stop().ref().unref();
    expectFfnet(() => watcher.start(), StatusCode.EpollAddError, /closed FdWatcher/);
    // The eventfd itself is untouched and nothing fires for it any more.
    efd.write(3);
    await sleep(20);
    expect(woke.calls).toBe(0);
    expect(efd.read()).toBe(3n);
    efd.close();
  });

  it('two watchers on the same fd both fire (each polls its own dup)', async () => {
    const efd = new EventFd();
    const a = signal();
    const b = signal();
    const wa = watchFd(efd.fd, () => a.fire());
    const wb = watchFd(efd.fd, () => b.fire());
    const both = Promise.all([a.next(), b.next()]);
    efd.write(4);
    await both;
    wa.close();
    wb.close();
    // Neither callback read, so the value is still there.
    expect(efd.read()).toBe(4n);
    efd.close();
  });

  it('runs promise continuations queued in the callback before the loop moves on', async () => {
    const efd = new EventFd();
    const order: string[] = [];
    const done = signal();
    const watcher = watchFd(efd.fd, () => {
      efd.read();
      setImmediate(() => {
        order.push('immediate');
        done.fire();
      });
      void Promise.resolve().then(() => order.push('microtask'));
    });
    const finished = done.next();
    efd.write(1);
    await finished;
    watcher.close();
    efd.close();
    expect(order).toEqual(['microtask', 'immediate']);
  });
});

describe('FdWatcher errors are typed and never abort the process', () => {
  it('rejects a regular file (epoll refuses it with EPERM)', () => {
    const fd = openSync(fileURLToPath(import.meta.url), 'r');
    try {
      expectFfnet(() => new FdWatcher(fd, () => {}), StatusCode.EpollAddError, /cannot be polled: EPERM/);
    } finally {
      closeSync(fd);
    }
  });

  it('rejects an fd that is not open', () => {
    expectFfnet(() => watchFd(999_999, () => {}, { label: 'comp channel' }), StatusCode.EpollAddError, /^comp channel: .*EBADF/);
  });

  it('rejects malformed arguments', () => {
    for (const fd of [-1, 1.5, Number.NaN]) expectFfnet(() => watchFd(fd, () => {}), StatusCode.InvalidArg, /invalid fd/);
    expectFfnet(() => watchFd(0, 'x' as unknown as () => void), StatusCode.InvalidArg, /onReadable/);
  });

  describe('on a pipe', () => {
    // Node has no pipe(2); bind it the same way the package binds its calls.
    const lib = createRequire(import.meta.url)('koffi').load('libc.so.6');
    const pipe2 = lib.func('int pipe2(_Out_ int *fds, int flags)');
    const closeFd = lib.func('int close(int fd)');
    const readFd = lib.func('intptr_t read(int fd, void *buf, size_t count)');
    const makePipe = (): [number, number] => {
      const fds = [0, 0];
      expect(pipe2(fds, 0o2000000)).toBe(0);
      return fds as [number, number];
    };

    it('POLLERR (write end whose reader closed) stops the watcher and reports EpollWaitError', async () => {
      const [r, w] = makePipe();
      const failed = signal<FfnetError>();
      let readable = 0;
      const watcher = watchFd(w, () => readable++, { onError: failed.fire, label: 'pipe writer' });
      const error = failed.next();
      closeFd(r);
      const e = await error;
      expect(e.code).toBe(StatusCode.EpollWaitError);
      expect(e.message).toMatch(/^pipe writer: poll reported EBADF .*watcher stopped/);
      expect(watcher.active).toBe(false);
      expect(readable).toBe(0);
      watcher.close();
      closeFd(w);
    });

    it('a hang-up counts as readable, so the reader sees EOF', async () => {
      const [r, w] = makePipe();
      const woke = signal();
      const watcher = watchFd(r, () => woke.fire());
      const next = woke.next();
      closeFd(w);
      await next;
      expect(readFd(r, Buffer.alloc(8), 8)).toBe(0);
      watcher.close();
      closeFd(r);
    });
  });
});

describe('EventFd', () => {
  it('counts writes, and hands them out one at a time in semaphore mode', () => {
    const efd = new EventFd({ initial: 2, semaphore: true });
    efd.write(1n);
    expect([efd.read(), efd.read(), efd.read(), efd.read()]).toEqual([1n, 1n, 1n, 0n]);
    efd.close();
    const sum = new EventFd();
    sum.write(2);
    sum.write(2 ** 40);
    expect(sum.read()).toBe(2n ** 40n + 2n);
    expect(sum.read()).toBe(0n);
    sum.close();
  });

  it('a write past the counter limit is EpollWakeUpError (EAGAIN), bad values InvalidArg', () => {
    const efd = new EventFd();
    efd.write(0xffff_ffff_ffff_fffen);
    expectFfnet(() => efd.write(1), StatusCode.EpollWakeUpError, /EAGAIN/);
    expectFfnet(() => efd.write(-1), StatusCode.InvalidArg, /non-negative/);
    expectFfnet(() => efd.write(2n ** 64n), StatusCode.InvalidArg, /2\^64-2/);
    expectFfnet(() => new EventFd({ initial: -1 }), StatusCode.InvalidArg, /initial/);
    expect(efd.read()).toBe(0xffff_ffff_ffff_fffen);
    efd.close();
  });

  it('close() is idempotent and later use is a typed error', () => {
    const before = openFds();
    const efd = new EventFd();
    expect(openFds()).toBe(before + 1);
    efd.close();
    efd.close();
    expect(openFds()).toBe(before);
    expect(efd.closed).toBe(true);
    expect(efd.fd).toBe(-1);
    expectFfnet(() => efd.write(1), StatusCode.EpollWakeUpError, /closed/);
    expectFfnet(() => efd.read(), StatusCode.OSError, /closed/);
  });
});
