/**
 * The client half of call-scoped RDMA memory: before a call whose request carries RDMARemoteBufs, the caller exposes
 * its buffers on the connection the call will take, and revokes them once the call has settled. A window is bound to
 * that connection's QP, so the rkeys in the request work from that connection only, and only until revoked.
 */
import type { IBSocket, RDMAExposeAccess, RDMAWindow } from '@ffnet/connect';
import type { RDMABuf, RDMARemoteBuf } from '@ffnet/device';
import { ConnectFailedError, InvalidArgError } from '@ffnet/serde';
import { type Client, EchoService } from '@ffnet/server';
import { formatAddress, parseAddress } from '@ffnet/transport';
import { socketOf } from '@ffnet/transport/internal';
import { ibSocketOf } from './backend.js';

export interface ExposeOptions {
  /** What the server may do with the memory (default 'readwrite'): 'write' when it fills it, 'read' when it reads it. */
  access?: RDMAExposeAccess;
  signal?: AbortSignal;
}

/** Windows over one call's buffers; `remotes[i]` describes `bufs[i]`. */
export class RDMAExposure {
  readonly windows: readonly RDMAWindow[];
  readonly remotes: readonly RDMARemoteBuf[];

  constructor(windows: readonly RDMAWindow[]) {
    this.windows = windows;
    this.remotes = windows.map((w) => w.remote);
  }

  /** Invalidates every window; resolves once none can be used any more. Never rejects; idempotent. */
  revoke(): Promise<void> {
    if (this.windows.length === 1) return this.windows[0]!.revoke();
    return Promise.all(this.windows.map((w) => w.revoke())).then(noop);
  }
}

function noop(): void {}

/**
 * The IBSocket under the client's open rdma:// connection to `address`, dialling one (with an Echo call) when there
 * is none. Calls to `address` go over it while it stays open and the client keeps one connection per address (the
 * default, `connectionsPerAddress: 1`): with more, a window may land on a different connection than the call, and
 * the server's RDMA then fails with a remote access error instead of reaching the memory.
 */
export async function ibSocketTo(client: Client, address: string, opts: { signal?: AbortSignal } = {}): Promise<IBSocket> {
  const want = formatAddress(parseAddress(address));
  if (!want.startsWith('rdma://')) throw new InvalidArgError(`ibSocketTo: ${address} is not an rdma:// address`);
  const found = openIBSocket(client, want);
  if (found !== undefined) return found;
  await client.callRaw(address, EchoService.id, EchoService.methods.echo.id, { str: '' }, opts.signal ? { signal: opts.signal } : undefined);
  const dialled = openIBSocket(client, want);
  if (dialled === undefined) throw new ConnectFailedError(`no open RDMA connection to ${address} after connecting`, { peer: address });
  return dialled;
}

function openIBSocket(client: Client, address: string): IBSocket | undefined {
  for (const t of client.ioWorker.transports()) {
    if (t.incoming || t.state !== 'ready' || formatAddress(t.address) !== address) continue;
    const sock = socketOf(t);
    const ib = sock === undefined ? undefined : ibSocketOf(sock);
    if (ib !== undefined) return ib;
  }
  return undefined;
}

/**
 * Exposes `bufs` on the client's connection to `address` for one call: send `exposure.remotes` in the request, and
 * `await exposure.revoke()` once the call settled, before reusing the buffers (withExposed does both).
 */
export async function exposeOn(client: Client, address: string, bufs: RDMABuf | readonly RDMABuf[], opts: ExposeOptions = {}): Promise<RDMAExposure> {
  const sock = await ibSocketTo(client, address, opts);
  const list = Array.isArray(bufs) ? (bufs as readonly RDMABuf[]) : [bufs as RDMABuf];
  const windows: RDMAWindow[] = [];
  try {
    for (const b of list) windows.push(await sock.expose(b, opts));
  } catch (e) {
    await new RDMAExposure(windows).revoke();
    throw e;
  }
  return new RDMAExposure(windows);
}

/**
 * exposeOn, then `call(remotes)`, then revoke, whatever the call's outcome; resolves or rejects as the call did,
 * once the windows are invalidated (so the buffers may be reused as soon as this settles).
 */
export async function withExposed<T>(
  client: Client,
  address: string,
  bufs: RDMABuf | readonly RDMABuf[],
  call: (remotes: readonly RDMARemoteBuf[]) => Promise<T>,
  opts: ExposeOptions = {},
): Promise<T> {
  const exposure = await exposeOn(client, address, bufs, opts);
  try {
    return await call(exposure.remotes);
  } finally {
    await exposure.revoke();
  }
}
