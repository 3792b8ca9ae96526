import { StatusCode } from '@ffnet/serde';
import { describe, expect, it } from 'vitest';
import { Client, EchoService, Server } from '../src/index.js';
import { groupConfig, rejection } from './helpers.js';

describe('a Client that requires the unix server to run as a given uid', () => {
  it('calls a server running as that uid, and refuses one running as another with PermissionDeniedError', async () => {
    const me = process.getuid!();
    const s = new Server({ groups: [groupConfig('unix')] });
    await s.start();
    const trusting = new Client({ ioWorker: { transport: { unixOwnerUid: me } } });
    const wary = new Client({ ioWorker: { transport: { unixOwnerUid: me === 65534 ? 65533 : 65534 } }, sendRetryTimes: 0 });
    try {
      const address = s.addresses[0]!;
      expect(await trusting.stub(EchoService, address).echo({ str: 'ok' })).toEqual({ str: 'ok' });
      const err = await rejection(wary.stub(EchoService, address).echo({ str: 'secret' }));
      // A refusal of who the peer is fails the call at once with that code (no send retries); its cause is the
      // identity check, naming the path and both uids.
      expect(err.code).toBe(StatusCode.PermissionDenied);
      const cause = err.cause as typeof err;
      expect(cause.code).toBe(StatusCode.PermissionDenied);
      expect(cause.message).toContain(`owned by uid ${me}, expected uid`);
      expect(cause.message).toContain(address.slice('unix://'.length));
    } finally {
      await trusting.stop();
      await wary.stop();
      await s.stop();
    }
  });
});
