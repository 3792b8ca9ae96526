import { describe, expect, it } from 'vitest';
import {
  ConnectFailedError,
  FfnetError,
  InvalidMethodIDError,
  SocketClosedError,
  StatusCode,
  TimeoutError,
  errorFromCode,
  statusName,
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
});
