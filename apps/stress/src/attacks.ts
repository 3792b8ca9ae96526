/**
 * The attacks, each a bounded loop (in count and in time) that returns what it did. They run in attacker child
 * processes (attacker.ts), never in the harness or the server.
 */
import { FfnetError, FRAME_HEADER_SIZE, FrameDecoder } from '@ffnet/serde';
import { Client } from '@ffnet/server';
import { bytesFrame, echoFrame, type FrameKind, fuzzBatch, lyingHeader } from './frames.js';
import { type Conn, open, sleep, within, writeAll } from './net.js';
import { Rng } from './rng.js';
import { MAX_REPLY_BYTES, StressService } from './service.js';

/** Counts response frames without decoding them; a reply stream it cannot frame is only counted as such. */
function frameCounter(): { push(chunk: Buffer): void; readonly frames: number; readonly bad: boolean } {
  let frames = 0;
  let bad = false;
  const dec = new FrameDecoder(() => {
    frames++;
  });
  return {
    push(chunk) {
      if (bad) return;
      try {
        dec.push(chunk);
      } catch {
        bad = true;
      }
    },
    get frames() {
      return frames;
    },
    get bad() {
      return bad;
    },
  };
}

export interface FuzzTask {
  readonly attack: 'fuzz';
  readonly address: string;
  readonly frames: number;
  readonly framesPerWrite: number;
  readonly concurrency: number;
  readonly seed: number;
  readonly fuzzCore: boolean;
  readonly timeLimitMs: number;
}

export interface FuzzResult {
  framesSent: number;
  framesUnsent: number;
  byKind: Partial<Record<FrameKind, number>>;
  connections: number;
  connectErrors: number;
  /** Connections whose end came from the server's side (at a bad frame, or after our end()). */
  endedByServer: number;
  /** Response frames read back: requests the server decoded and answered. */
  responses: number;
  /** Connections the server neither answered to the end nor closed within 10 s of our end(): destroyed by us. */
  stuck: number;
  timedOut: boolean;
  /** Set when the server refused connections 200 times in a row: it is not listening any more. */
  gaveUp: boolean;
}

/**
 * Many frames per write, then end(): the server reads what it accepts, answers the good ones, closes the
 * connection at the first bad one; we reconnect. Only frames whose write the OS accepted count as sent.
 */
export async function fuzz(t: FuzzTask): Promise<FuzzResult> {
  const r: FuzzResult = {
    framesSent: 0,
    framesUnsent: 0,
    byKind: {},
    connections: 0,
    connectErrors: 0,
    endedByServer: 0,
    responses: 0,
    stuck: 0,
    timedOut: false,
    gaveUp: false,
  };
  const rng = new Rng(t.seed);
  let refusedInARow = 0;
  const stopAt = performance.now() + t.timeLimitMs;
  let claimed = 0;
  const worker = async (): Promise<void> => {
    while (claimed < t.frames && !r.gaveUp) {
      if (performance.now() > stopAt) {
        r.timedOut = true;
        return;
      }
      const n = Math.min(t.framesPerWrite, t.frames - claimed);
      claimed += n;
      const batch = fuzzBatch(rng, n, { fuzzCore: t.fuzzCore });
      const counter = frameCounter();
      let conn: Conn;
      try {
        conn = await open(t.address, counter.push);
      } catch {
        r.connectErrors++;
        claimed -= n;
        if (++refusedInARow >= 200) r.gaveUp = true;
        await sleep(5);
        continue;
      }
      refusedInARow = 0;
      r.connections++;
      const ok = await writeAll(conn.socket, batch.bytes);
      if (ok) {
        r.framesSent += batch.frames;
        for (const [k, v] of Object.entries(batch.kinds)) r.byKind[k as FrameKind] = (r.byKind[k as FrameKind] ?? 0) + v;
      } else {
        r.framesUnsent += batch.frames;
        claimed -= n;
      }
      conn.socket.end();
      if (!(await within(conn.closed, 10_000))) {
        r.stuck++;
        conn.close();
        await conn.closed;
      }
      if (conn.closedByPeer) r.endedByServer++;
      r.responses += counter.frames;
    }
  };
  await Promise.all(Array.from({ length: t.concurrency }, worker));
  return r;
}

export interface LyingTask {
  readonly attack: 'lying';
  readonly addresses: readonly string[];
  readonly connections: number;
  /** What each header claims. */
  readonly claimBytes: number;
  /** How much of the body follows before the stall. */
  readonly partBytes: number;
  /** The longest the server may take to close them all; they are counted as left open after it. */
  readonly holdMs: number;
}

export interface HoldResult {
  opened: number;
  connectErrors: number;
  bytesSent: number;
  /** Connections the server closed while we held them, and when (ms after open): the latest. */
  closedByServer: number;
  latestServerCloseMs: number;
}

async function openMany(addresses: readonly string[], n: number, r: HoldResult): Promise<Conn[]> {
  const conns: Conn[] = [];
  // In waves, so the listen backlog is not what refuses them.
  for (let i = 0; i < n; i += 50) {
    const wave = await Promise.allSettled(Array.from({ length: Math.min(50, n - i) }, (_, j) => open(addresses[(i + j) % addresses.length]!)));
    for (const w of wave) {
      if (w.status === 'fulfilled') conns.push(w.value);
      else r.connectErrors++;
    }
  }
  r.opened = conns.length;
  return conns;
}

function tally(conns: readonly Conn[], r: HoldResult): void {
  for (const c of conns) {
    if (c.closedByPeer && c.closedAt > 0) {
      r.closedByServer++;
      r.latestServerCloseMs = Math.max(r.latestServerCloseMs, Math.round(c.closedAt - c.openedAt));
    }
  }
}

/**
 * Waits until the server has closed every connection, or `maxMs` has passed: a stalled peer must be closed
 * eventually, and how soon is reported (latestServerCloseMs), not judged against a fixed hold that a loaded
 * machine may overrun.
 */
async function untilClosed(conns: readonly Conn[], maxMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([Promise.all(conns.map((c) => c.closed)), new Promise<void>((r) => (timer = setTimeout(r, maxMs)))]);
  clearTimeout(timer);
}

async function release(conns: readonly Conn[]): Promise<void> {
  for (const c of conns) c.close();
  await Promise.all(conns.map((c) => c.closed));
}

/** Headers that claim a large body, part of it, then silence: memory and fds held for nothing. */
export async function lying(t: LyingTask): Promise<HoldResult> {
  const r: HoldResult = { opened: 0, connectErrors: 0, bytesSent: 0, closedByServer: 0, latestServerCloseMs: 0 };
  const conns = await openMany(t.addresses, t.connections, r);
  const part = Buffer.alloc(t.partBytes, 0x41);
  const header = lyingHeader(t.claimBytes);
  await Promise.all(
    conns.map(async (c) => {
      if ((await writeAll(c.socket, header)) && (await writeAll(c.socket, part))) r.bytesSent += header.length + part.length;
    }),
  );
  await untilClosed(conns, t.holdMs);
  tally(conns, r);
  await release(conns);
  return r;
}

export interface AmplifyTask {
  readonly attack: 'amplify';
  readonly addresses: readonly string[];
  readonly connections: number;
  /** Requests in the one write, each for `replyBytes`. */
  readonly requests: number;
  readonly replyBytes: number;
  readonly holdMs: number;
}

export interface AmplifyResult extends HoldResult {
  requestsSent: number;
  /** Reply bytes the server could have owed us: requests × replyBytes, summed over connections. */
  repliesOwedBytes: number;
}

/** One write of many requests for large replies, then never read: the replies have nowhere to go. */
export async function amplify(t: AmplifyTask): Promise<AmplifyResult> {
  const r: AmplifyResult = { opened: 0, connectErrors: 0, bytesSent: 0, closedByServer: 0, latestServerCloseMs: 0, requestsSent: 0, repliesOwedBytes: 0 };
  const n = Math.min(t.replyBytes, MAX_REPLY_BYTES);
  const conns = await openMany(t.addresses, t.connections, r);
  await Promise.all(
    conns.map(async (c, ci) => {
      c.socket.pause();
      const reqs = Buffer.concat(Array.from({ length: t.requests }, (_, i) => bytesFrame(ci * t.requests + i + 1, n)));
      if (await writeAll(c.socket, reqs)) {
        r.bytesSent += reqs.length;
        r.requestsSent += t.requests;
        r.repliesOwedBytes += t.requests * n;
      }
    }),
  );
  await sleep(t.holdMs);
  tally(conns, r);
  await release(conns);
  return r;
}

export interface SlowLorisTask {
  readonly attack: 'slowloris';
  readonly addresses: readonly string[];
  /** Connections that send an 8-byte header and then nothing. */
  readonly silent: number;
  /** Connections that send a frame one byte every `intervalMs`. */
  readonly dribble: number;
  readonly intervalMs: number;
  /** Size of the dribbled frame's body: long enough that it is never finished within the hold. */
  readonly dribbleBodyBytes: number;
  /** The longest the server may take to close them all (below the dribbled frame's length at intervalMs). */
  readonly holdMs: number;
}

export interface SlowLorisResult {
  silent: HoldResult;
  dribble: HoldResult & { bytesDribbled: number };
}

/** An 8-byte header then silence; and a frame dribbled one byte every 10 ms. */
export async function slowloris(t: SlowLorisTask): Promise<SlowLorisResult> {
  const silent: HoldResult = { opened: 0, connectErrors: 0, bytesSent: 0, closedByServer: 0, latestServerCloseMs: 0 };
  const dribble = { opened: 0, connectErrors: 0, bytesSent: 0, closedByServer: 0, latestServerCloseMs: 0, bytesDribbled: 0 };
  const quiet = await openMany(t.addresses, t.silent, silent);
  const header = lyingHeader(1024);
  for (const c of quiet) if (await writeAll(c.socket, header)) silent.bytesSent += FRAME_HEADER_SIZE;
  const slow = await openMany(t.addresses, t.dribble, dribble);
  // A correct frame, so only its pace is hostile.
  const frame = echoFrame(1, 'd'.repeat(Math.max(0, t.dribbleBodyBytes - 16)));
  let pos = 0;
  const timer = setInterval(() => {
    if (pos >= frame.length) return;
    const b = frame.subarray(pos, pos + 1);
    pos++;
    for (const c of slow) {
      if (!c.socket.destroyed && c.socket.writable) {
        c.socket.write(b);
        dribble.bytesDribbled++;
      }
    }
  }, t.intervalMs);
  await untilClosed([...quiet, ...slow], t.holdMs);
  clearInterval(timer);
  tally(quiet, silent);
  tally(slow, dribble);
  await release(quiet);
  await release(slow);
  return { silent, dribble };
}

export interface CallsTask {
  readonly attack: 'calls';
  readonly addresses: readonly string[];
  readonly calls: number;
  readonly concurrency: number;
  /** Every `bytesEvery`-th call asks for `bytesSize` bytes instead of an echo (0: never). */
  readonly bytesEvery: number;
  readonly bytesSize: number;
  readonly timeLimitMs: number;
  readonly timeoutMs: number;
}

export interface CallsResult {
  ok: number;
  failed: number;
  errorsByCode: Record<string, number>;
  timedOut: boolean;
}

/** Real calls through a real Client, `concurrency` in flight, until `calls` are done or the time is up. */
export async function calls(t: CallsTask, onProgress?: (done: number) => void): Promise<CallsResult> {
  const r: CallsResult = { ok: 0, failed: 0, errorsByCode: {}, timedOut: false };
  const client = new Client({ timeoutMs: t.timeoutMs });
  const stubs = t.addresses.map((a) => client.stub(StressService, a));
  const stopAt = performance.now() + t.timeLimitMs;
  let issued = 0;
  const worker = async (w: number): Promise<void> => {
    const stub = stubs[w % stubs.length]!;
    while (issued < t.calls) {
      if (performance.now() > stopAt) {
        r.timedOut = true;
        return;
      }
      const i = issued++;
      try {
        if (t.bytesEvery > 0 && i % t.bytesEvery === 0) await stub.bytes({ n: t.bytesSize });
        else await stub.echo({ s: 'c' });
        r.ok++;
      } catch (e) {
        r.failed++;
        const code = FfnetError.is(e) ? String(e.code) : 'other';
        r.errorsByCode[code] = (r.errorsByCode[code] ?? 0) + 1;
      }
      if (onProgress && (r.ok + r.failed) % 1000 === 0) onProgress(r.ok + r.failed);
    }
  };
  try {
    await Promise.all(Array.from({ length: t.concurrency }, (_, w) => worker(w)));
  } finally {
    await client.stop();
  }
  return r;
}

export interface ChurnTask {
  readonly attack: 'churn';
  readonly addresses: readonly string[];
  readonly connections: number;
  readonly concurrency: number;
  readonly timeLimitMs: number;
}

export interface ChurnResult {
  ok: number;
  failed: number;
  timedOut: boolean;
}

/** Connect, one echo, close: `connections` times. */
export async function churn(t: ChurnTask): Promise<ChurnResult> {
  const r: ChurnResult = { ok: 0, failed: 0, timedOut: false };
  const stopAt = performance.now() + t.timeLimitMs;
  let issued = 0;
  const worker = async (w: number): Promise<void> => {
    while (issued < t.connections) {
      if (performance.now() > stopAt) {
        r.timedOut = true;
        return;
      }
      const i = issued++;
      let answered!: () => void;
      const got = new Promise<void>((res) => {
        answered = res;
      });
      const counter = new FrameDecoder(() => answered());
      try {
        const c = await open(t.addresses[(w + i) % t.addresses.length]!, (chunk) => counter.push(chunk));
        await writeAll(c.socket, echoFrame(i + 1, 'churn'));
        const ok = await within(got, 10_000);
        c.close();
        await c.closed;
        if (ok) r.ok++;
        else r.failed++;
      } catch {
        r.failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: t.concurrency }, (_, w) => worker(w)));
  return r;
}

export type Task = FuzzTask | LyingTask | AmplifyTask | SlowLorisTask | CallsTask | ChurnTask;

export function runTask(t: Task, onProgress?: (done: number) => void): Promise<unknown> {
  switch (t.attack) {
    case 'fuzz':
      return fuzz(t);
    case 'lying':
      return lying(t);
    case 'amplify':
      return amplify(t);
    case 'slowloris':
      return slowloris(t);
    case 'calls':
      return calls(t, onProgress);
    case 'churn':
      return churn(t);
  }
}
