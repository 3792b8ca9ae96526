import { randomFillSync, randomInt } from 'node:crypto';
import {
  crc32c,
  decodeMessage,
  encodeMessage,
  errorFromCode,
  errResult,
  type FfnetError,
  FrameDecoder,
  MessageFlags,
  type MessagePacket,
  okResult,
  type Result,
} from '@ffnet/serde';
import { expect } from 'vitest';
import { connectIBSocket, type IBConnectCall, IBConnectServer, IBConnectService, type IBSocket, type IBSocketConfig } from '../../src/index.js';

/** One packet through a real frame: encode, frame-decode (CRC checked), envelope-decode. */
function throughFrame(pkt: MessagePacket): MessagePacket {
  let out: MessagePacket | undefined;
  new FrameDecoder((body, compressed) => {
    out = decodeMessage(body, compressed);
  }).push(encodeMessage(pkt));
  return out!;
}

/** The client's `call`, reaching `server` in this process through serde frames both ways (no sockets). */
export function frameCall(server: IBConnectServer, log: string[] = []): IBConnectCall {
  return async (method, req) => {
    log.push(method);
    const methodId = IBConnectService.methods[method].id;
    const base = { uuid: 1, serviceId: IBConnectService.id, methodId, version: 0, timeoutMs: 0 };
    const inbound = throughFrame({ ...base, flags: MessageFlags.IsReq, payload: req });
    let result: Result<unknown>;
    try {
      result = okResult(method === 'query' ? server.query() : server.connect(inbound.payload, { peer: 'frame-call client' }));
    } catch (e) {
      const err = e as FfnetError;
      result = errResult(err.code ?? 999, err.message);
    }
    const r = throughFrame({ ...base, flags: 0, payload: result }).payload as Result<unknown>;
    if (!r.ok) throw errorFromCode(r.code, r.message);
    return r.value;
  };
}

export interface Pair {
  client: IBSocket;
  server: IBSocket;
}

/** A connected client/server pair on this host's device, through the real handshake logic. */
export async function connectPair(config: Partial<IBSocketConfig> = {}, acceptTimeoutMs = 120_000): Promise<Pair> {
  let server: IBSocket | undefined;
  const srv = new IBConnectServer({ acceptTimeoutMs, onSocket: (s) => (server = s) });
  const client = await connectIBSocket(frameCall(srv), { config, timeoutMs: 120_000, peer: 'in-process server' });
  await server!.ready;
  return { client, server: server! };
}

/**
 * Receives a stream of test messages `[u32 len][u32 crc32c][payload]`, checking each CRC as bytes arrive
 * (no reassembly copy).
 */
export class Sink {
  readonly messages: { len: number; crc: number; actual: number }[] = [];
  bytes = 0;
  readonly #head = Buffer.alloc(8);
  #headHave = 0;
  #len = 0;
  #crc = 0;
  #left = -1;
  #running = 0;
  #waiters: { n: number; resolve(): void }[] = [];

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      if (this.#left < 0) {
        const n = Math.min(8 - this.#headHave, chunk.length - off);
        chunk.copy(this.#head, this.#headHave, off, off + n);
        this.#headHave += n;
        off += n;
        if (this.#headHave < 8) return;
        this.#headHave = 0;
        this.#len = this.#head.readUInt32LE(0);
        this.#crc = this.#head.readUInt32LE(4);
        this.#left = this.#len;
        this.#running = 0;
      }
      const n = Math.min(this.#left, chunk.length - off);
      if (n > 0) this.#running = crc32c(chunk.subarray(off, off + n), this.#running);
      off += n;
      this.#left -= n;
      if (this.#left === 0) {
        this.messages.push({ len: this.#len, crc: this.#crc, actual: this.#running });
        this.#left = -1;
        const due = this.#waiters.filter((w) => this.messages.length >= w.n);
        this.#waiters = this.#waiters.filter((w) => this.messages.length < w.n);
        for (const w of due) w.resolve();
      }
    }
  }

  until(n: number): Promise<void> {
    if (this.messages.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }
}

/** A socket with handlers attached: received messages, drain waits, write confirmations, the close reason. */
export class Endpoint {
  readonly sink = new Sink();
  written = 0;
  readonly closed: Promise<FfnetError | undefined>;
  #drains: (() => void)[] = [];

  constructor(readonly sock: IBSocket) {
    let onClose!: (e: FfnetError | undefined) => void;
    this.closed = new Promise((r) => (onClose = r));
    sock.setHandlers({
      data: (c) => this.sink.push(c),
      drain: () => {
        for (const d of this.#drains.splice(0)) d();
      },
      written: () => this.written++,
      close: (e) => onClose(e),
    });
  }

  /** Writes one message; waits for drain when the socket says so. */
  async send(payload: Uint8Array): Promise<{ len: number; crc: number }> {
    const crc = crc32c(payload);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(payload.length, 0);
    head.writeUInt32LE(crc, 4);
    if (!this.sock.write([head, payload])) await new Promise<void>((r) => this.#drains.push(r));
    return { len: payload.length, crc };
  }

  async sendAll(payloads: readonly Uint8Array[]): Promise<{ len: number; crc: number }[]> {
    const out = [];
    for (const p of payloads) out.push(await this.send(p));
    return out;
  }
}

export const MiB = 1024 * 1024;

/** Random bytes to slice messages from (a fresh random offset per message). */
export const pool = randomFillSync(Buffer.allocUnsafe(4 * MiB));

/**
 * `count` messages of up to 2 MiB: sizes log-uniform over 1 B..2 MiB (small and large both common), the first
 * one exactly 2 MiB, contents random slices of the pool.
 */
export function randomMessages(count: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const size = i === 0 ? 2 * MiB : Math.max(1, Math.floor(2 ** (Math.random() * 21)));
    const off = randomInt(0, pool.length - size + 1);
    out.push(pool.subarray(off, off + size));
  }
  return out;
}

/** Sends `payloads` from `from` and checks `to` received exactly them, in order, CRC-intact. */
export async function transfer(from: Endpoint, to: Endpoint, payloads: readonly Buffer[]): Promise<void> {
  const before = to.sink.messages.length;
  // A socket that closes midway fails the transfer at once (with its reason) instead of leaving it waiting.
  const closed = (e: Endpoint, name: string) =>
    e.closed.then((err) =>
      Promise.reject(
        new Error(`${name} closed during the transfer: ${err ? `${err.message} (cause: ${String((err.cause as Error)?.message ?? err.cause)})` : 'cleanly'}`),
      ),
    );
  const sent = await Promise.race([from.sendAll(payloads), closed(from, 'sender'), closed(to, 'receiver')]);
  await Promise.race([to.sink.until(before + payloads.length), closed(from, 'sender'), closed(to, 'receiver')]);
  const got = to.sink.messages.slice(before, before + payloads.length);
  expect(got.map((m) => m.len)).toEqual(sent.map((s) => s.len));
  expect(got.map((m) => m.actual)).toEqual(sent.map((s) => s.crc));
}
