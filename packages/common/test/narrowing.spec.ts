// Type-level checks: this file must compile under tsconfig.test.json (`pnpm typecheck`), and its runtime asserts
// run under vitest. With the old `const X = define(...); type X = FfnetError` pairs, every assertion marked
// "compile" below failed to compile: all the classes were one type, so narrowing had nothing to tell apart.
import { expect, it } from 'vitest';
import { CancelledError, errorFromCode, FfnetError, SocketClosedError, type StatusCode, TimeoutError } from '../src/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<_T extends true>(): void {}

function classify(e: unknown): string {
  if (e instanceof TimeoutError) {
    // compile: narrowed to the class, with its literal code.
    assertType<Equal<typeof e, TimeoutError>>();
    assertType<Equal<typeof e.code, typeof StatusCode.Timeout>>();
    const code: 2005 = e.code;
    return `timeout ${code}`;
  }
  if (e instanceof SocketClosedError) {
    assertType<Equal<typeof e, SocketClosedError>>();
    return `closed ${e.peer ?? '-'}`;
  }
  if (e instanceof FfnetError) {
    assertType<Equal<typeof e, FfnetError>>();
    return `ffnet ${e.codeName}`;
  }
  return 'other';
}

function notATimeout(e: FfnetError): number {
  if (e instanceof TimeoutError) return 0;
  // compile: the else branch is still an FfnetError (not `never`), since the classes differ structurally.
  assertType<Equal<typeof e, FfnetError>>();
  return e.code;
}

it('instanceof narrows to the error class, and code is its literal', () => {
  expect(classify(new TimeoutError('late'))).toBe('timeout 2005');
  expect(classify(new SocketClosedError('reset', { peer: 'unix:///s' }))).toBe('closed unix:///s');
  expect(classify(errorFromCode(2100, 'x'))).toBe('ffnet Cancelled');
  expect(classify(new Error('x'))).toBe('other');
  expect(notATimeout(new CancelledError('x'))).toBe(2100);
  // compile: one class is not assignable to another.
  // @ts-expect-error a SocketClosedError is not a TimeoutError
  const wrong: TimeoutError = new SocketClosedError('x');
  expect(wrong).not.toBeInstanceOf(TimeoutError);
});
