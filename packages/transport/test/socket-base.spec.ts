import { type FfnetError, InvalidArgError, SocketClosedError } from '@ffnet/serde';
import { describe, expect, it } from 'vitest';
import type { BackendHandlers } from '../src/index.js';
import { tcpAddress } from '../src/index.js';
import { BackendSocketBase } from '../src/internal.js';

/** A source that records what the base asked of it. */
class Probe extends BackendSocketBase {
  readonly scheme = 'tcp' as const;
  readonly calls: string[] = [];
  startOnAttach = true;
  hold = false;
  constructor() {
    super(tcpAddress('127.0.0.1', 1), 'tcp://127.0.0.1:1', 'tcp://127.0.0.1:2');
  }
  protected attach(): boolean {
    this.calls.push('attach');
    return this.startOnAttach;
  }
  protected pauseSource(): void {
    this.calls.push('pause');
  }
  protected resumeSource(): void {
    this.calls.push('resume');
  }
  protected override holdClose(): boolean {
    return this.hold;
  }
  close(err?: FfnetError): void {
    this.reportClose(err);
  }
  release(): void {
    this.hold = false;
    this.flushClose();
  }
  write(): boolean {
    return true;
  }
  end(): void {}
  destroy(): void {}
}

function recorder(): { h: BackendHandlers; closes: (FfnetError | undefined)[] } {
  const closes: (FfnetError | undefined)[] = [];
  return { h: { data() {}, drain() {}, written() {}, close: (e) => closes.push(e) }, closes };
}

const tick = () => new Promise<void>((r) => process.nextTick(r));

describe('BackendSocketBase', () => {
  it('sets handlers once, then starts the source unless paused', () => {
    const s = new Probe();
    const { h } = recorder();
    s.setHandlers(h);
    expect(s.calls).toEqual(['attach', 'resume']);
    expect(() => s.setHandlers(h)).toThrow(InvalidArgError);
    const p = new Probe();
    p.pause();
    p.setHandlers(recorder().h);
    expect(p.calls).toEqual(['pause', 'attach']);
    p.resume();
    expect(p.calls).toEqual(['pause', 'attach', 'resume']);
  });

  it('reports a close exactly once, and one that came before the handlers on the next tick', async () => {
    const s = new Probe();
    const { h, closes } = recorder();
    const err = new SocketClosedError('gone');
    s.close(err);
    s.close(undefined);
    s.setHandlers(h);
    expect(closes).toEqual([]);
    // A closed socket is not started.
    expect(s.calls).toEqual(['attach']);
    await tick();
    expect(closes).toEqual([err]);
    s.close(undefined);
    await tick();
    expect(closes).toEqual([err]);
  });

  it('works through a Proxy (private state is not a #field brand check)', async () => {
    const s = new Probe();
    const p = new Proxy(s, { get: (t, k) => Reflect.get(t, k, t) });
    const { h, closes } = recorder();
    s.close(undefined);
    p.setHandlers(h);
    p.pause();
    await tick();
    expect(closes).toEqual([undefined]);
  });

  it('a held close is reported when the subclass releases it, not before', async () => {
    const s = new Probe();
    const { h, closes } = recorder();
    s.setHandlers(h);
    s.hold = true;
    s.close(undefined);
    await tick();
    expect(closes).toEqual([]);
    s.release();
    s.release();
    expect(closes).toEqual([undefined]);
  });
});
