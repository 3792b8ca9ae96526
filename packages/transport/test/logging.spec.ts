// TransportOptions.logger: what a connection logs about itself, through a real Logger that keeps its records.
import { connect } from 'node:net';
import { encodeFrame, type FfnetError, SocketClosedError, StatusCode } from '@ffnet/serde';
import { afterEach, describe, expect, it } from 'vitest';
import { CaptureLogger } from '../../common/test/fixtures/log-capture.js';
import { type BackendListener, Transport, type TransportHandler, tcp, tcpAddress } from '../src/index.js';

const listeners: BackendListener[] = [];
const live: Transport[] = [];
afterEach(async () => {
  for (const t of live.splice(0)) t.invalidate(new SocketClosedError('cleanup'));
  await Promise.all(listeners.splice(0).map((l) => l.close()));
});

const handler: TransportHandler = {
  onFrame: () => {},
  onClose: (_t: Transport, _e: FfnetError | undefined) => {},
};

async function serve(log: CaptureLogger): Promise<number> {
  const l = await tcp().listen(tcpAddress('127.0.0.1', 0), {}, (s) => live.push(Transport.adopt(s, handler, { logger: log })));
  listeners.push(l);
  return l.address.port;
}

describe('Transport logging', () => {
  it('logs opened on both sides, and the closing reason', async () => {
    const slog = new CaptureLogger();
    const clog = new CaptureLogger();
    const port = await serve(slog);
    const t = Transport.connect(`tcp://127.0.0.1:${port}`, handler, { logger: clog });
    live.push(t);
    await t.ready;
    expect(clog.find('connection opened')[0]?.fields).toMatchObject({ component: 'transport', incoming: false, peer: `tcp://127.0.0.1:${port}` });
    const inc = await slog.waitFor('connection opened');
    expect(inc.fields).toMatchObject({ component: 'transport', incoming: true });
    t.invalidate(new SocketClosedError('test is done'));
    expect(clog.find('connection closed')[0]?.fields).toMatchObject({ reason: 'test is done', code: StatusCode.SocketClosed });
    const closed = await slog.waitFor('connection closed');
    expect(closed.fields).toMatchObject({ peer: inc.fields.peer, reason: 'connection closed by peer' });
  });

  it('a corrupt frame is logged at warn before the connection closes; a silent logger gets nothing', async () => {
    const log = new CaptureLogger();
    const port = await serve(log);
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    const bad = encodeFrame(Buffer.from('payload'));
    bad[9] = bad[9]! ^ 1;
    s.write(bad);
    const r = await log.waitFor('frame dropped, closing connection');
    expect(r.level).toBe('warn');
    expect(r.fields.code).toBe(StatusCode.DataCorruption);
    s.destroy();

    const quiet = new CaptureLogger('error');
    const port2 = await serve(quiet);
    const s2 = connect(port2, '127.0.0.1');
    s2.on('error', () => {});
    s2.write(bad);
    await new Promise((res) => s2.once('close', res));
    expect(quiet.records).toEqual([]);
  });
});
