import { describe, expect, it } from 'vitest';
import * as all from '../src/index.js';
import {
  ConnectFailedError,
  errorClasses,
  errorFromCode,
  FfnetError,
  InvalidArgError,
  InvalidMethodIDError,
  SocketClosedError,
  StatusCode,
  statusName,
  TimeoutError,
} from '../src/index.js';

describe('status codes and errors', () => {
  it('carries 3FS numeric codes', () => {
    expect(StatusCode.Timeout).toBe(2005);
    expect(StatusCode.SendFailed).toBe(2007);
    expect(StatusCode.InvalidMethodID).toBe(2009);
    expect(StatusCode.SocketError).toBe(2010);
    expect(StatusCode.RequestRefused).toBe(2012);
    expect(StatusCode.SocketClosed).toBe(2013);
    expect(StatusCode.ConnectFailed).toBe(2014);
    expect(statusName(2013)).toBe('SocketClosed');
    expect(statusName(12345)).toBe('Code12345');
  });

  it('error classes have code, name, message, cause and peer', () => {
    const cause = new Error('ECONNRESET');
    const e = new SocketClosedError('connection reset', { cause, peer: 'tcp://1.2.3.4:5' });
    expect(e).toBeInstanceOf(FfnetError);
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(SocketClosedError);
    expect(e).not.toBeInstanceOf(TimeoutError);
    expect(e.code).toBe(2013);
    expect(e.codeName).toBe('SocketClosed');
    expect(e.name).toBe('SocketClosedError');
    expect(e.cause).toBe(cause);
    expect(e.peer).toBe('tcp://1.2.3.4:5');
    expect(e.message).toBe('connection reset (peer tcp://1.2.3.4:5)');
    expect(e.reason).toBe('connection reset');
    expect(e.toJSON()).toEqual({ name: 'SocketClosedError', code: 2013, message: 'connection reset (peer tcp://1.2.3.4:5)', peer: 'tcp://1.2.3.4:5' });
    expect(new TimeoutError('late').cause).toBeUndefined();
    expect(SocketClosedError.name).toBe('SocketClosedError');
  });

  it('FfnetError.is recognises ffnet errors only', () => {
    expect(FfnetError.is(new ConnectFailedError('x'))).toBe(true);
    expect(FfnetError.is(new Error('x'))).toBe(false);
    expect(FfnetError.is({ code: 2013 })).toBe(false);
    expect(FfnetError.is(null)).toBe(false);
  });

  it('errorFromCode rebuilds the class for a remote code', () => {
    const e = errorFromCode(2009, 'no method 7', { peer: 'unix:///s' });
    expect(e).toBeInstanceOf(InvalidMethodIDError);
    expect(e.code).toBe(2009);
    expect(e.peer).toBe('unix:///s');
    const unknown = errorFromCode(4242, 'app error');
    expect(unknown.constructor).toBe(FfnetError);
    expect(unknown.code).toBe(4242);
    expect(unknown.name).toBe('FfnetError');
  });

  it('errorFromCode round-trips every code with a class: same class, code, name, reason and peer', () => {
    const classes = errorClasses();
    // Every exported *Error class (other than the base) is registered under its code, and vice versa.
    const exported = Object.entries(all).filter(
      ([k, v]) => k.endsWith('Error') && k !== 'FfnetError' && typeof v === 'function' && v.prototype instanceof Error,
    );
    expect(exported.length).toBe(classes.size);
    expect(classes.size).toBe(33);
    for (const [name, C] of exported) {
      const e = new (C as new (m: string) => FfnetError)('m');
      expect(classes.get(e.code)).toBe(C);
      expect(e.name).toBe(name);
      // TimeoutError for Timeout; SocketError, RDMAError and EpollAddError keep their code's name.
      expect([e.codeName, `${e.codeName}Error`]).toContain(name);
    }
    for (const [code, C] of classes) {
      const e = errorFromCode(code, `reason ${code}`, { peer: 'tcp://10.0.0.1:8000' });
      expect(e.constructor).toBe(C);
      expect(e).toBeInstanceOf(C);
      expect(e.code).toBe(code);
      expect(e.reason).toBe(`reason ${code}`);
      expect(e.peer).toBe('tcp://10.0.0.1:8000');
      // A round trip through the wire form: the JSON's code rebuilds the same class.
      const back = errorFromCode(e.toJSON().code, e.reason);
      expect(back.constructor).toBe(C);
      expect(back.name).toBe(e.name);
      expect(StatusCode[e.codeName as keyof typeof StatusCode]).toBe(code);
    }
  });

  it('a class matches only its own code; FfnetError matches every ffnet error', () => {
    const classes = [...errorClasses()];
    for (const [code] of classes) {
      const e = errorFromCode(code, 'x');
      expect(e).toBeInstanceOf(FfnetError);
      for (const [other, D] of classes) expect(e instanceof D).toBe(other === code);
    }
    // A bare FfnetError with a code that has a class matches that class (the code is the identity)...
    expect(new FfnetError(StatusCode.Timeout, 'x')).toBeInstanceOf(TimeoutError);
    // ...and one with an unknown code matches none of them.
    const odd = new FfnetError(4242, 'x');
    for (const [, C] of classes) expect(odd).not.toBeInstanceOf(C);
    // Look-alikes without the brand match nothing.
    expect({ code: 2005, message: 'x' }).not.toBeInstanceOf(TimeoutError);
    expect({ code: 2005 }).not.toBeInstanceOf(FfnetError);
    expect(new Error('x')).not.toBeInstanceOf(FfnetError);
    expect(FfnetError[Symbol.hasInstance](null)).toBe(false);
  });

  it('a class an application derives keeps plain instanceof and claims no other error', () => {
    class UsageError extends InvalidArgError {}
    const mine = new UsageError('bad flag');
    expect(mine).toBeInstanceOf(UsageError);
    expect(mine).toBeInstanceOf(all.InvalidArgError);
    expect(mine).toBeInstanceOf(FfnetError);
    expect(mine.code).toBe(StatusCode.InvalidArg);
    // An InvalidArgError that is not a UsageError stays not one, even though the brand and code agree.
    expect(new InvalidArgError('x')).not.toBeInstanceOf(UsageError);
  });
});
