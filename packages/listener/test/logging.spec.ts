// ListenerConfig.logger: a connection the listener closes itself (its pre-start queue is full) is logged.
import { connect } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { CaptureLogger } from '../../common/test/fixtures/log-capture.js';
import { Listener } from '../src/index.js';

const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of stops.splice(0).reverse()) await f();
});

it('a connection closed before start() because the queue is full is logged with its peer and why', async () => {
  const log = new CaptureLogger();
  const l = new Listener({ host: '127.0.0.1', port: 0, backlog: 1, logger: log });
  await l.setup();
  stops.push(() => l.stop());
  const port = Number(new URL(l.addresses[0]!.replace('tcp:', 'http:')).port);
  const socks = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')];
  for (const s of socks) {
    s.on('error', () => {});
    stops.push(async () => void s.destroy());
  }
  const r = await log.waitFor('accepted connection closed');
  expect(r.level).toBe('debug');
  expect(r.fields).toMatchObject({ component: 'listener', listener: l.addresses[0] });
  expect(String(r.fields.reason)).toContain('backlog 1');
  expect(String(r.fields.peer)).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
  expect(log.find('accepted connection closed')).toHaveLength(1);
});
