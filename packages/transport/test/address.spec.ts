import { InvalidAddrError, StatusCode } from '@ffnet/serde';
import { describe, expect, it } from 'vitest';
import { formatAddress, parseAddress, rdmaAddress, shmAddress, tcpAddress, toAddress, unixAddress } from '../src/index.js';

describe('parseAddress / formatAddress', () => {
  it.each([
    ['tcp://127.0.0.1:8000', { scheme: 'tcp', host: '127.0.0.1', port: 8000, path: '' }],
    ['tcp://localhost:0', { scheme: 'tcp', host: 'localhost', port: 0, path: '' }],
    ['TCP://Node-1.Example.com:65535', { scheme: 'tcp', host: 'node-1.example.com', port: 65535, path: '' }],
    ['tcp://[::1]:9', { scheme: 'tcp', host: '::1', port: 9, path: '' }],
    ['rdma://[FE80::1:2]:8000', { scheme: 'rdma', host: 'fe80::1:2', port: 8000, path: '' }],
    ['rdma://10.0.0.1:8000', { scheme: 'rdma', host: '10.0.0.1', port: 8000, path: '' }],
    ['unix:///tmp/a.sock', { scheme: 'unix', host: '', port: 0, path: '/tmp/a.sock' }],
    ['unix:///run/ffnet dir/x.sock', { scheme: 'unix', host: '', port: 0, path: '/run/ffnet dir/x.sock' }],
    ['shm:///tmp/a.sock', { scheme: 'shm', host: '', port: 0, path: '/tmp/a.sock' }],
    ['SHM:///tmp/a.sock', { scheme: 'shm', host: '', port: 0, path: '/tmp/a.sock' }],
  ])('parses %s', (input, want) => {
    expect(parseAddress(input)).toEqual(want);
  });

  it.each([['tcp://127.0.0.1:8000'], ['tcp://localhost:1'], ['tcp://[::1]:9'], ['rdma://[fe80::1:2]:8000'], ['unix:///tmp/a.sock'], ['shm:///tmp/a.sock']])(
    'formats %s back to itself',
    (s) => {
      expect(formatAddress(parseAddress(s))).toBe(s);
    },
  );

  it('normalises case so equal addresses format equally', () => {
    expect(formatAddress(parseAddress('Tcp://LocalHost:80'))).toBe('tcp://localhost:80');
    expect(formatAddress(parseAddress('RDMA://[::FFFF:1.2.3.4]:1'))).toBe('rdma://[::ffff:1.2.3.4]:1');
  });

  it.each([
    ['127.0.0.1:8000', /missing scheme/],
    ['http://127.0.0.1:80', /unknown scheme 'http'/],
    ['tcp://127.0.0.1', /missing :port/],
    ['tcp://127.0.0.1:', /port '' is not a decimal/],
    ['tcp://127.0.0.1:65536', /port 65536 is not an integer in 0\.\.65535/],
    ['tcp://127.0.0.1:-1', /port '-1'/],
    ['tcp://127.0.0.1:80/x', /port '80\/x'/],
    ['tcp://:80', /host is empty/],
    ['tcp://256.1.1.1:80', /'256\.1\.1\.1' is not a valid IPv4 address/],
    ['tcp://1.2.3:80', /not a valid IPv4/],
    ['tcp://::1:80', /IPv6 host must be written in brackets/],
    ['tcp://[::1:80', /unterminated '\['/],
    ['tcp://[::g]:80', /'::g' is not a valid IPv6 address/],
    ['tcp://[::1]80', /missing :port after the IPv6 host/],
    ['tcp://bad_host:80', /'bad_host' is not a valid hostname/],
    ['tcp://-bad.com:80', /not a valid hostname/],
    ['unix://relative.sock', /must be absolute/],
    ['shm://relative.sock', /must be absolute/],
    [`shm:///${'x'.repeat(120)}`, /is 121 bytes, the limit is 107/],
    ['unix://', /must be absolute/],
    ['unix:///tmp/', /names a directory/],
    [`unix:///${'x'.repeat(120)}`, /is 121 bytes, the limit is 107/],
  ])('rejects %s with a message saying what is wrong', (input, why) => {
    let err: unknown;
    try {
      parseAddress(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidAddrError);
    expect((err as InvalidAddrError).code).toBe(StatusCode.InvalidAddr);
    expect((err as Error).message).toContain(input);
    expect((err as Error).message).toMatch(why);
  });
});

describe('address constructors and toAddress', () => {
  it('builds and validates', () => {
    expect(tcpAddress('::1', 5)).toEqual({ scheme: 'tcp', host: '::1', port: 5, path: '' });
    expect(formatAddress(tcpAddress('::1', 5))).toBe('tcp://[::1]:5');
    expect(rdmaAddress('10.1.1.1', 7).scheme).toBe('rdma');
    expect(unixAddress('/tmp/x.sock').path).toBe('/tmp/x.sock');
    expect(shmAddress('/tmp/x.sock')).toEqual({ scheme: 'shm', host: '', port: 0, path: '/tmp/x.sock' });
    expect(toAddress({ scheme: 'shm', host: '', port: 0, path: '/tmp/y.sock' })).toEqual(shmAddress('/tmp/y.sock'));
    expect(() => shmAddress('x.sock')).toThrow(/absolute/);
    expect(() => tcpAddress('1.2.3.4', 70000)).toThrow(InvalidAddrError);
    expect(() => tcpAddress('1.2.3.4', 1.5)).toThrow(/not an integer/);
    expect(() => unixAddress('x.sock')).toThrow(/absolute/);
  });

  it('toAddress parses strings and re-validates objects', () => {
    expect(toAddress('tcp://A:1')).toEqual(tcpAddress('a', 1));
    expect(toAddress({ scheme: 'tcp', host: 'EXAMPLE.com', port: 1, path: '' })).toEqual(tcpAddress('example.com', 1));
    expect(() => toAddress({ scheme: 'tcp', host: '', port: 1, path: '' })).toThrow(/host is empty/);
    expect(() => toAddress({ scheme: 'udp' as 'tcp', host: 'a', port: 1, path: '' })).toThrow(/unknown scheme 'udp'/);
  });
});
