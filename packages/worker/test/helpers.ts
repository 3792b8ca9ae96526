import type { FfnetError, MessagePacket } from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';
import { PendingCall } from '../src/index.js';

/** A PendingCall whose outcome is a promise, as a client's would be. */
export class TestCall extends PendingCall {
  readonly result: Promise<MessagePacket>;
  settledAt = 0;
  #resolve!: (p: MessagePacket) => void;
  #reject!: (e: FfnetError) => void;
  constructor(label = 'Test.call', maxRetries?: number) {
    super(label, maxRetries);
    this.result = new Promise<MessagePacket>((res, rej) => {
      this.#resolve = res;
      this.#reject = rej;
    });
    this.result.catch(() => undefined);
  }
  onResponse(pkt: MessagePacket, _t: Transport): void {
    this.settledAt = performance.now();
    this.#resolve(pkt);
  }
  onError(err: FfnetError): void {
    this.settledAt = performance.now();
    this.#reject(err);
  }
}

export async function rejection(p: Promise<unknown>): Promise<FfnetError> {
  try {
    await p;
  } catch (e) {
    return e as FfnetError;
  }
  throw new Error('expected a rejection');
}

import { encodeMessage, MessageFlags } from '@ffnet/serde';
import { type BackendListener, formatAddress, tcp, tcpAddress } from '@ffnet/transport';
import {
  type CallContext,
  IOWorker,
  type IOWorkerOptions,
  type MethodBinding,
  MethodPool,
  Processor,
  type ProcessorOptions,
  type RequestInfo,
  type ServiceBinding,
  type ServiceLookup,
  Waiter,
} from '../src/index.js';

// biome-ignore lint/suspicious/noExplicitAny: test handlers type their own requests
type Fn = (ctx: CallContext, req: any) => unknown;

/** A one-service lookup built from plain functions. */
export class TestService implements ServiceBinding, ServiceLookup {
  readonly id = 7;
  readonly name = 'T';
  readonly methods = new Map<number, MethodBinding>();
  readonly errorsSeen: { err: FfnetError; req: RequestInfo }[] = [];
  rewrite: ((err: FfnetError) => FfnetError | undefined) | undefined;
  exposeErrors: boolean | undefined;
  constructor(fns: Record<number, Fn | { fn: Fn; concurrency: number }>) {
    for (const [id, f] of Object.entries(fns)) {
      const fn = typeof f === 'function' ? f : f.fn;
      const pool = typeof f === 'function' ? undefined : new MethodPool(f.concurrency);
      this.methods.set(Number(id), { name: `T.m${id}`, handler: fn, pool, calls: 0, errors: 0 });
    }
  }
  method(id: number): MethodBinding | undefined {
    return this.methods.get(id);
  }
  onError(err: FfnetError, req: RequestInfo): FfnetError | undefined {
    this.errorsSeen.push({ err, req });
    return this.rewrite?.(err);
  }
  service(id: number): ServiceBinding | undefined {
    return id === this.id ? this : undefined;
  }
}

export interface Pair {
  address: string;
  server: { processor: Processor; io: IOWorker; listener: BackendListener };
  client: { waiter: Waiter; processor: Processor; io: IOWorker };
  call(serviceId: number, methodId: number, payload: unknown, opts?: { timeoutMs?: number; maxRetries?: number; address?: string }): TestCall;
  close(): Promise<void>;
}

/** A server IOWorker behind a real TCP listener and a client IOWorker dialling it. */
export async function pair(
  lookup: ServiceLookup | undefined,
  opts: { server?: ProcessorOptions; serverIO?: Partial<IOWorkerOptions>; clientIO?: Partial<IOWorkerOptions> } = {},
): Promise<Pair> {
  const sp = new Processor({ ...opts.server, ...(lookup ? { lookup } : {}) });
  const sio = new IOWorker({ ...opts.serverIO, processor: sp });
  sio.start();
  const listener = await tcp().listen(tcpAddress('127.0.0.1', 0), {}, (s) => sio.adopt(s));
  const waiter = new Waiter();
  const cp = new Processor({ waiter });
  const cio = new IOWorker({ ...opts.clientIO, processor: cp });
  cio.start();
  const address = formatAddress(listener.address);
  return {
    address,
    server: { processor: sp, io: sio, listener },
    client: { waiter, processor: cp, io: cio },
    call(serviceId, methodId, payload, o = {}) {
      const call = new TestCall(`S${serviceId}.m${methodId}`, o.maxRetries);
      const timeoutMs = o.timeoutMs ?? 2000;
      waiter.register(call, timeoutMs);
      const frame = encodeMessage({ uuid: call.uuid, serviceId, methodId, flags: MessageFlags.IsReq, version: 0, timeoutMs, payload });
      cio.sendAsync(o.address ?? address, frame, call);
      return call;
    },
    async close() {
      await cio.stop();
      await listener.close();
      await sp.stop();
      await sio.stop();
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
