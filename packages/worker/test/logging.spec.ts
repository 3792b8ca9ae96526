// The worker's log records, through a real Logger that keeps them.
import { StatusCode } from '@ffnet/serde';
import { expect, it } from 'vitest';
import { CaptureLogger } from '../../common/test/fixtures/log-capture.js';
import { Processor } from '../src/index.js';
import { HandlerErrors } from '../src/internal.js';

it('a masked handler failure is logged with its error, and a hook that throws is no longer swallowed silently', () => {
  const log = new CaptureLogger();
  const errors = new HandlerErrors(() => {
    throw new Error('hook bug');
  }, log);
  const info = { service: 'Svc', method: 'Svc.m', peer: 'tcp://10.0.0.9:1', uuid: 7 };
  const out = errors.toResponse(new Error('disk full'), false, info, true);
  expect(out.code).toBe(StatusCode.Unknown);
  const masked = log.find('handler failed (masked)');
  expect(masked).toHaveLength(1);
  expect(masked[0]!.fields).toMatchObject(info);
  expect((masked[0]!.fields.err as Error).message).toBe('disk full');
  expect((log.find('onHandlerError hook threw')[0]?.fields.err as Error | undefined)?.message).toBe('hook bug');
});

it('with exposeErrors the caller gets the message, so nothing is masked or logged', () => {
  const log = new CaptureLogger();
  const errors = new HandlerErrors(undefined, log);
  const out = errors.toResponse(new Error('told to the caller'), true, { service: 'S', method: 'S.m', peer: 'p', uuid: 1 }, true);
  expect(out.message).toContain('told to the caller');
  expect(log.records).toEqual([]);
});

it('slowCallMs must be a non-negative number; 0 (the default) is off', () => {
  expect(new Processor().slowCallMs).toBe(0);
  expect(new Processor({ slowCallMs: 25 }).slowCallMs).toBe(25);
  expect(() => new Processor({ slowCallMs: -1 })).toThrow(/slowCallMs/);
  expect(() => new Processor({ slowCallMs: Number.NaN })).toThrow(/slowCallMs/);
});
