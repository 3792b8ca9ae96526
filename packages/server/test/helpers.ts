import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineService, type FfnetError, method } from '@ffnet/serde';
import type { CallContext } from '../src/index.js';

export type Kind = 'tcp' | 'tls' | 'unix' | 'rdma';

/** Where rdma groups listen: the Soft-RoCE VM's address (rxe0 sits on dummy0 with 10.0.2.15). */
export const RDMA_HOST = process.env.FFNET_RDMA_HOST ?? '10.0.2.15';

let seq = 0;
/** Listeners refuse a socket path in a directory others can write to (like /tmp itself): a private one. */
let socketDir: string | undefined;
export function tmpSocketPath(tag: string): string {
  if (socketDir === undefined) {
    const d = mkdtempSync(join(tmpdir(), 'ffnet-sock-'));
    process.once('exit', () => rmSync(d, { recursive: true, force: true }));
    socketDir = d;
  }
  return join(socketDir, `ffnet-${tag}-${process.pid}-${++seq}-${randomBytes(3).toString('hex')}.sock`);
}

/** A listener config for one group of `kind` on loopback / a fresh socket path. */
export function groupConfig(kind: Kind, extra: { port?: number; path?: string } = {}) {
  if (kind === 'rdma') return { networkType: 'rdma' as const, listener: { host: RDMA_HOST, port: extra.port ?? 0 } };
  if (kind === 'tls') return { networkType: 'tls' as const, listener: { host: '127.0.0.1', port: extra.port ?? 0 } };
  return kind === 'tcp'
    ? { networkType: 'tcp' as const, listener: { host: '127.0.0.1', port: extra.port ?? 0 } }
    : { networkType: 'unix' as const, listener: { path: extra.path ?? tmpSocketPath('e2e') } };
}

/** The port of a tcp:// or rdma:// address. */
export function portOf(address: string): number {
  return Number(new URL(address.replace(/^\w+:/, 'http:')).port);
}

export interface FailReq {
  code?: number;
  message: string;
  plain?: boolean;
}

export const TestService = defineService({
  name: 'Test',
  id: 100,
  methods: {
    hello: method<{ name: string }, { greeting: string }>(1),
    fail: method<FailReq, never>(2),
    slow: method<{ ms: number }, { slept: number }>(3),
    blob: method<{ data: Uint8Array }, { data: Uint8Array }>(4),
    waitAbort: method<Record<string, never>, string>(5),
    peer: method<Record<string, never>, string>(6),
  },
});

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function rejection(p: Promise<unknown>): Promise<FfnetError> {
  try {
    await p;
  } catch (e) {
    return e as FfnetError;
  }
  throw new Error('expected the call to fail');
}

/** Resolves with what a waitAbort handler saw, in the order handlers started. */
export class AbortProbe {
  readonly reasons: Promise<FfnetError>[] = [];
  readonly started: Promise<CallContext>[] = [];
  #starts: ((c: CallContext) => void)[] = [];
  #aborts: ((e: FfnetError) => void)[] = [];
  next(): { started: Promise<CallContext>; aborted: Promise<FfnetError> } {
    const started = new Promise<CallContext>((r) => this.#starts.push(r));
    const aborted = new Promise<FfnetError>((r) => this.#aborts.push(r));
    return { started, aborted };
  }
  handler = (ctx: CallContext): Promise<string> => {
    this.#starts.shift()?.(ctx);
    const onAbort = this.#aborts.shift();
    return new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        onAbort?.(ctx.signal.reason as FfnetError);
        resolve('aborted');
      });
    });
  };
}

/** Forwards one kind of socket to a server, counting the bytes each way: what went over the wire. */
export async function countingProxy(
  kind: 'tcp' | 'unix',
  target: string,
): Promise<{ address: string; up: () => number; down: () => number; close: () => Promise<void> }> {
  let up = 0;
  let down = 0;
  const sockets = new Set<Socket>();
  const dial = (): Socket => {
    if (kind === 'unix') return connect(new URL(target).pathname);
    const u = new URL(target.replace(/^\w+:/, 'http:'));
    return connect(Number(u.port), u.hostname);
  };
  const server: NetServer = createServer((c) => {
    const s = dial();
    sockets.add(c).add(s);
    c.on('data', (d: Buffer) => {
      up += d.length;
      s.write(d);
    });
    s.on('data', (d: Buffer) => {
      down += d.length;
      c.write(d);
    });
    const end = () => {
      c.destroy();
      s.destroy();
    };
    c.on('close', end).on('error', end);
    s.on('close', end).on('error', end);
  });
  let address: string;
  if (kind === 'unix') {
    const path = tmpSocketPath('proxy');
    await new Promise<void>((r) => server.listen(path, r));
    address = `unix://${path}`;
  } else {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    address = `tcp://127.0.0.1:${(server.address() as { port: number }).port}`;
  }
  return {
    address,
    up: () => up,
    down: () => down,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The fixture server in a child process; `messages` yields its IPC reports. */
export class ChildServer {
  readonly child: ChildProcess;
  readonly #waiters: { key: string; resolve: (v: unknown) => void }[] = [];
  constructor(kind: Kind, where: string | number, script: URL = new URL('./fixtures/child-server.mjs', import.meta.url)) {
    this.child = fork(script, [kind, String(where)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: Record<string, unknown>) => {
      const i = this.#waiters.findIndex((w) => w.key in m);
      if (i < 0) return;
      const w = this.#waiters[i]!;
      this.#waiters.splice(i, 1);
      w.resolve(m[w.key]);
    });
  }
  /** The next IPC message carrying `key`. */
  next<T>(key: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#waiters.push({ key, resolve: resolve as (v: unknown) => void });
      this.child.once('exit', (code, signal) => reject(new Error(`child exited (${code ?? signal}) before sending ${key}`)));
    });
  }
  kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill('SIGKILL');
    return exited;
  }
}
