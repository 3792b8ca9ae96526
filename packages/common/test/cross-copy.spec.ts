// Two installed copies of @ffnet/common in one process (an app and a dependency pinning another version): errors
// made by one must pass `instanceof` checks written against the other, in both directions.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as here from '../src/index.js';

type Module = typeof here;

let dir: string;
let other: Module;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ffnet-common-copy-'));
  cpSync(fileURLToPath(new URL('../src', import.meta.url)), join(dir, 'src'), { recursive: true });
  other = (await import(pathToFileURL(join(dir, 'src', 'index.ts')).href)) as Module;
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('instanceof across two copies of the package', () => {
  it('really has two copies: distinct classes, so plain prototype instanceof would fail', () => {
    expect(other.TimeoutError).not.toBe(here.TimeoutError);
    expect(other.FfnetError).not.toBe(here.FfnetError);
    const theirs = new other.TimeoutError('late');
    expect(Object.getPrototypeOf(theirs)).not.toBe(here.TimeoutError.prototype);
    expect(Function.prototype[Symbol.hasInstance].call(here.TimeoutError, theirs)).toBe(false);
  });

  it('matches by brand and code in both directions', () => {
    for (const [from, to] of [
      [other, here],
      [here, other],
    ] as const) {
      const e = new from.SocketClosedError('reset', { peer: 'tcp://10.0.0.1:8000' });
      expect(e).toBeInstanceOf(to.SocketClosedError);
      expect(e).toBeInstanceOf(to.FfnetError);
      expect(e).not.toBeInstanceOf(to.TimeoutError);
      expect(e).not.toBeInstanceOf(to.InvalidArgError);
      expect(to.FfnetError.is(e)).toBe(true);
      // Every code the other copy can make lands on the matching class here, and on no other.
      for (const [code, C] of to.errorClasses()) {
        const made = from.errorFromCode(code, 'x');
        for (const [otherCode, D] of to.errorClasses()) expect(made instanceof D).toBe(otherCode === code);
        expect(made instanceof C).toBe(true);
      }
      // An unknown code is an ffnet error but none of the typed classes.
      const unknown = from.errorFromCode(4242, 'x');
      expect(unknown).toBeInstanceOf(to.FfnetError);
      for (const [, C] of to.errorClasses()) expect(unknown).not.toBeInstanceOf(C);
    }
  });

  it('linkSignal of one copy reports a timeout that the other copy recognises', async () => {
    const link = other.linkSignal(undefined, { timeoutMs: 1, what: 'probe' });
    // A deadline already past when the link is made (a loaded machine can tick a millisecond in between) aborts
    // it before linkSignal returns: wait only when it has not.
    if (!link.signal.aborted) await new Promise<void>((resolve) => link.signal.addEventListener('abort', () => resolve(), { once: true }));
    expect(link.reason).toBeInstanceOf(here.TimeoutError);
    // abortError keeps an ffnet reason as it is, whichever copy made it.
    expect(here.abortError(link.signal)).toBe(link.reason);
  });
});
