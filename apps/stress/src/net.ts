import * as net from 'node:net';

/** tcp://host:port or unix:///path, as the server publishes them, to node:net connect options. */
export function connectOptions(address: string): net.NetConnectOpts {
  if (address.startsWith('unix://')) return { path: address.slice('unix://'.length) };
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:]+):(\d+)$/.exec(address);
  if (!m) throw new Error(`not a tcp:// or unix:// address: ${address}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

export interface Conn {
  readonly socket: net.Socket;
  readonly openedAt: number;
  /** performance.now() when the socket closed, 0 while open. */
  closedAt: number;
  /** Whether the close came from the peer (end, reset) rather than from us. */
  closedByPeer: boolean;
  bytesIn: number;
  readonly closed: Promise<void>;
  /** Closes the connection from our side: the only close that does not count as the peer's. */
  close(): void;
}

/**
 * Connects and tracks how the connection ends. Resolves once connected; rejects on a connect error. The socket
 * never throws: errors (resets from a server that gave up on us) only end it.
 */
export function open(address: string, onData?: (chunk: Buffer) => void): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(connectOptions(address));
    let resolveClosed!: () => void;
    const closed = new Promise<void>((r) => {
      resolveClosed = r;
    });
    // Only close() marks a close as ours. Node destroys a socket itself on a reset or a failed write (EPIPE), and
    // those come from the peer, so wrapping socket.destroy would count them as ours.
    let closedByUs = false;
    const conn: Conn = {
      socket,
      openedAt: 0,
      closedAt: 0,
      closedByPeer: false,
      bytesIn: 0,
      closed,
      close() {
        closedByUs = true;
        socket.destroy();
      },
    };
    let connected = false;
    socket.on('data', (chunk: Buffer) => {
      conn.bytesIn += chunk.length;
      onData?.(chunk);
    });
    socket.on('end', () => {
      socket.end();
    });
    socket.on('error', (e) => {
      if (!connected) reject(e);
    });
    socket.on('close', () => {
      conn.closedAt = performance.now();
      if (connected && !closedByUs) conn.closedByPeer = true;
      resolveClosed();
    });
    socket.once('connect', () => {
      connected = true;
      (conn as { openedAt: number }).openedAt = performance.now();
      resolve(conn);
    });
  });
}

/** Writes and resolves with whether the bytes were handed to the OS (false on a reset or a closed socket). */
export function writeAll(socket: net.Socket, bytes: Uint8Array): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed || !socket.writable) {
      resolve(false);
      return;
    }
    socket.write(bytes, (err) => resolve(!err));
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves when `p` settles or after `ms`, whichever is first; says which. */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true as const), t]);
  } finally {
    clearTimeout(timer);
  }
}
