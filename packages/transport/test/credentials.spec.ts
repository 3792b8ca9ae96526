import { describe, expect, it } from 'vitest';
import { type Backend, type ConnectOptions, type Credentials, Transport, type TransportHandler, TransportPool, tcp, tcpAddress } from '../src/index.js';

/** tcp() that records the options of each connect. */
function recording(seen: (ConnectOptions | undefined)[]): Backend {
  const real = tcp();
  return {
    scheme: 'tcp',
    available: () => real.available(),
    connect: (a, o) => {
      seen.push(o);
      return real.connect(a, o);
    },
    listen: (a, o, cb) => real.listen(a, o, cb),
  };
}

const handler: TransportHandler = { onFrame: () => undefined, onClose: () => undefined };

describe('credentials on connect', () => {
  it('Transport.connect and TransportPool hand them to the backend as ConnectOptions.credentials', async () => {
    const real = tcp();
    const accepted: { destroy(): void }[] = [];
    const listener = await real.listen(tcpAddress('127.0.0.1', 0), {}, (s) => accepted.push(s));
    try {
      const seen: (ConnectOptions | undefined)[] = [];
      const credentials: Credentials = { metadata: () => new Map([['authorization', 't']]) };
      const direct = Transport.connect(listener.address, handler, { backends: [recording(seen)], credentials });
      await direct.ready;
      const pool = new TransportPool({ handler, backends: [recording(seen)], connect: { credentials } });
      const pooled = pool.get(listener.address)!;
      await pooled.ready;
      const plain = Transport.connect(listener.address, handler, { backends: [recording(seen)] });
      await plain.ready;
      expect(seen.map((o) => o?.credentials)).toEqual([credentials, credentials, undefined]);
      await Promise.all([direct.close(), pool.close(), plain.close()]);
    } finally {
      for (const s of accepted) s.destroy();
      await listener.close();
    }
  });
});
