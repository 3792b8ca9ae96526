import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// These run test/fixtures/scenario.mjs in a fresh node against the built package (dist/, as `pnpm test` builds
// first): whether a handle keeps a process alive, GC and a failed koffi load can only be seen from outside.
const dir = fileURLToPath(new URL('.', import.meta.url));

function scenario(name: string, nodeArgs: string[] = []): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...nodeArgs, 'fixtures/scenario.mjs', name], { cwd: dir, timeout: 20_000 }, (error, stdout, stderr) => {
      if (error?.killed) reject(new Error(`scenario ${name} did not exit on its own; stderr: ${stderr}`));
      else resolve({ code: error ? (error.code as number) : 0, stdout });
    });
  });
}

describe('what keeps the process alive', () => {
  it('an active FdWatcher is ref-ed by default and holds the process until its fd is written', async () => {
    expect(await scenario('watcher-ref')).toEqual({ code: 0, stdout: 'woke 5\n' });
  });

  it('an unref-ed FdWatcher lets the process exit without waiting for the fd', async () => {
    expect(await scenario('watcher-unref')).toEqual({ code: 0, stdout: '' });
  });

  it('a TimerWheel is unref-ed by default: a pending deadline alone does not hold the process', async () => {
    expect(await scenario('wheel-unref')).toEqual({ code: 0, stdout: '' });
  });

  it('a TimerWheel with ref: true holds the process until the deadline fires', async () => {
    expect(await scenario('wheel-ref')).toEqual({ code: 0, stdout: 'fired\n' });
  });

  it('cancelling the last deadline of a ref-ed wheel releases the process at once', async () => {
    // The deadline is 60 s out; the scenario times out after 20 s if the Node timer were left armed.
    expect(await scenario('wheel-ref-cancelled')).toEqual({ code: 0, stdout: 'cancelled\n' });
  });

  it('ref() on an unref-ed wheel whose deadlines were all cancelled does not hold the process', async () => {
    expect(await scenario('wheel-cancelled-then-ref')).toEqual({ code: 0, stdout: 'ref\n' });
  });
});

describe('robustness', () => {
  it('a throwing timer callback surfaces as an uncaught exception and later entries still fire', async () => {
    expect(await scenario('wheel-throw')).toEqual({ code: 0, stdout: 'uncaught first\nsecond\nthird\n' });
  });

  it('a watcher the caller dropped without close() keeps working across GC', async () => {
    expect(await scenario('gc-dropped', ['--expose-gc'])).toEqual({ code: 0, stdout: 'woke 9\n' });
  });

  it('importing works where koffi fails to load; fd features report why, timers work', async () => {
    const { code, stdout } = await scenario('no-koffi', ['--require', './fixtures/no-koffi.cjs']);
    expect(code).toBe(0);
    const [support, eventFd, watch, timer, ...rest] = stdout.trimEnd().split('\n');
    expect(JSON.parse(support ?? '')).toEqual({
      ok: false,
      code: 2022,
      message: 'fd watching and eventfd are unavailable: simulated: cannot find module @koromix/koffi-linux-x64',
    });
    expect([eventFd, watch, timer, ...rest]).toEqual(['EventFd threw FfnetError 2022', 'watchFd threw FfnetError 2022', 'timer fired']);
  });
});
