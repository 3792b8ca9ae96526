import { defineService, FfnetError, method, StatusCode } from '@ffnet/serde';
import { tcp, tls } from '@ffnet/transport';
import { afterAll, describe, expect, it } from 'vitest';
import { TestPki } from '../../transport/test/fixtures/certs.js';
import { Client, EchoService, implement, Server } from '../src/index.js';
import { rejection } from './helpers.js';

const Who = defineService({ name: 'Who', id: 511, methods: { peer: method<Record<string, never>, string>(1) } });

const pki = new TestPki();
const ca = pki.ca('ffnet server test CA');
const serverCert = pki.leaf(ca, 'srv', 'IP:127.0.0.1,DNS:localhost');
const clientCert = pki.leaf(ca, 'cli', '', { client: true });
afterAll(() => pki.cleanup());

describe('Server with tcp and tls (mTLS) groups side by side', () => {
  it('serves both; tls callers need a client certificate from the CA', async () => {
    const server = new Server({
      groups: [
        { networkType: 'tcp', listener: { host: '127.0.0.1', port: 0 }, backends: [tcp()] },
        {
          networkType: 'tls',
          listener: { host: '127.0.0.1', port: 0 },
          backends: [tls({ ...serverCert, ca: ca.cert, requireClientCert: true })],
          services: ['Who'],
        },
      ],
    });
    server.addService(implement(Who, { peer: (ctx) => ctx.peer }));
    await server.start();
    const client = new Client({ backends: [tcp(), tls({ ...clientCert, ca: ca.cert })] });
    const anonymous = new Client({ backends: [tls({ ca: ca.cert })] });
    try {
      const [plain, secure] = server.addresses as [string, string];
      expect(plain).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
      expect(secure).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/);
      expect(await client.stub(EchoService, plain).echo({ str: 'tcp' })).toEqual({ str: 'tcp' });
      expect(await client.stub(EchoService, secure).echo({ str: 'tls' })).toEqual({ str: 'tls' });
      expect(await client.stub(Who, secure).peer({})).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/);
      const err = await rejection(anonymous.stub(EchoService, secure).echo({ str: 'x' }));
      expect(err).toBeInstanceOf(FfnetError);
      expect(err.peer).toBe(secure);
      // The call fails because the connection did; the worker names the connection's PermissionDeniedError.
      expect(err.message).toMatch(/PermissionDenied/);
      // A plain-tcp caller on the TLS port fails instead of hanging.
      const wrong = await rejection(client.stub(EchoService, secure.replace('tls://', 'tcp://')).echo({ str: 'x' }, { timeoutMs: 10_000 }));
      expect(wrong.code).toBe(StatusCode.SocketClosed);
    } finally {
      await client.stop();
      await anonymous.stop();
      await server.stop();
    }
  });
});
