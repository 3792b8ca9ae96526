// raw-net: the Node ceiling. Frames are a 4-byte length and a 4-byte id (both LE) followed by the
// payload, over plain node:net. Everything one 'data' event produces is written under one cork, so
// the replies (server) and the follow-up requests (client) of a read leave in a single writev.
import * as net from 'node:net';
import type { RpcWorkload } from '../workloads.js';
import { payload, responder } from '../workloads.js';
import type { DoneFn, Endpoint, Peer, PeerClient, PeerName, PeerServer } from './types.js';
import { sizeError } from './types.js';

const HEADER = 8;
/** Partial frames up to this size are completed by copying; larger bodies are gathered part by part. */
const COPY_LIMIT = 64 * 1024;
const MAX_FRAME = 64 * 1024 * 1024;
/** Above this a payload goes out as its own buffer next to the header instead of being copied. */
const INLINE_LIMIT = 16 * 1024;

type FrameFn = (id: number, body: Buffer) => void;

/** Splits a byte stream into frames without ever allocating what a header claims up front. */
export class RawReader {
  private head: Buffer | null = null;
  private parts: Buffer[] = [];
  private have = 0;
  private bodyLen = -1;
  private bodyId = 0;

  constructor(private readonly onFrame: FrameFn) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    let off = 0;
    if (this.bodyLen >= 0) {
      off = this.gather(buf);
      if (off < 0) return;
    } else if (this.head !== null) {
      const head = this.head;
      this.head = null;
      if (head.length < HEADER) {
        const take = Math.min(HEADER - head.length, buf.length);
        const h = Buffer.concat([head, buf.subarray(0, take)]);
        if (h.length < HEADER) {
          this.head = h;
          return;
        }
        buf = buf.subarray(take);
        off = this.resume(h, buf);
      } else {
        off = this.resume(head, buf);
      }
      if (off < 0) return;
    }
    while (buf.length - off >= HEADER) {
      const len = buf.readUInt32LE(off);
      const id = buf.readUInt32LE(off + 4);
      if (len > MAX_FRAME) throw new Error(`raw-net: frame of ${len} bytes exceeds ${MAX_FRAME}`);
      const start = off + HEADER;
      if (buf.length - start >= len) {
        off = start + len;
        this.onFrame(id, buf.subarray(start, off));
        continue;
      }
      if (len > COPY_LIMIT) {
        this.bodyLen = len;
        this.bodyId = id;
        this.parts.push(buf.subarray(start));
        this.have = buf.length - start;
        return;
      }
      break;
    }
    if (off < buf.length) this.head = buf.subarray(off);
  }

  /** Continues a frame whose full header is in `head`; returns the offset in `buf` after it, or -1. */
  private resume(head: Buffer, buf: Buffer): number {
    const len = head.readUInt32LE(0);
    if (len > MAX_FRAME) throw new Error(`raw-net: frame of ${len} bytes exceeds ${MAX_FRAME}`);
    if (len > COPY_LIMIT) {
      this.bodyLen = len;
      this.bodyId = head.readUInt32LE(4);
      this.parts.push(head.subarray(HEADER));
      this.have = head.length - HEADER;
      return this.gather(buf);
    }
    const need = HEADER + len - head.length;
    if (buf.length < need) {
      this.head = Buffer.concat([head, buf]);
      return -1;
    }
    const frame = Buffer.concat([head, buf.subarray(0, need)]);
    this.onFrame(frame.readUInt32LE(4), frame.subarray(HEADER));
    return need;
  }

  /** Adds to a large body being gathered; returns the offset in `buf` after it, or -1 if incomplete. */
  private gather(buf: Buffer): number {
    const take = Math.min(this.bodyLen - this.have, buf.length);
    this.parts.push(take === buf.length ? buf : buf.subarray(0, take));
    this.have += take;
    if (this.have < this.bodyLen) return -1;
    const body = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.bodyLen);
    const id = this.bodyId;
    this.parts = [];
    this.have = 0;
    this.bodyLen = -1;
    this.onFrame(id, body);
    return take;
  }
}

function writeFrame(sock: net.Socket, id: number, body: Buffer): void {
  if (body.length <= INLINE_LIMIT) {
    const frame = Buffer.allocUnsafe(HEADER + body.length);
    frame.writeUInt32LE(body.length, 0);
    frame.writeUInt32LE(id, 4);
    body.copy(frame, HEADER);
    sock.write(frame);
    return;
  }
  const head = Buffer.allocUnsafe(HEADER);
  head.writeUInt32LE(body.length, 0);
  head.writeUInt32LE(id, 4);
  sock.write(head);
  sock.write(body);
}

function listenOptions(ep: Endpoint): net.ListenOptions {
  return 'path' in ep ? { path: ep.path } : { host: ep.host, port: ep.port };
}

/** One accepted connection; also raw-tls's, whose TLS sockets are net.Sockets. */
export class ServerConn {
  private readonly reader: RawReader;

  constructor(
    private readonly sock: net.Socket,
    private readonly respond: (req: Buffer) => Buffer,
  ) {
    this.reader = new RawReader(this.onFrame);
    sock.setNoDelay(true);
    sock.on('data', this.onData);
    // A client going away mid-run is the end of a run, not a failure of the server.
    sock.on('error', () => sock.destroy());
  }

  private readonly onData = (chunk: Buffer): void => {
    this.sock.cork();
    try {
      this.reader.push(chunk);
    } catch (err) {
      console.error(String(err));
      this.sock.destroy();
    }
    this.sock.uncork();
  };

  private readonly onFrame = (id: number, body: Buffer): void => {
    writeFrame(this.sock, id, this.respond(body));
  };
}

/** The client side; also raw-tls's. */
export class RawClient implements PeerClient {
  private readonly reader: RawReader;
  private readonly req: Buffer;
  private inRead = false;
  private flushScheduled = false;

  constructor(
    private readonly sock: net.Socket,
    private readonly w: RpcWorkload,
    private readonly done: DoneFn,
    private readonly name: PeerName = 'raw-net',
  ) {
    this.req = payload(w.reqSize);
    this.reader = new RawReader(this.onFrame);
    sock.setNoDelay(true);
    sock.on('data', this.onData);
    sock.on('error', this.onError);
  }

  call(slot: number): void {
    // Calls issued outside a read (the first burst) are batched until the next tick.
    if (!this.inRead && !this.flushScheduled) {
      this.flushScheduled = true;
      this.sock.cork();
      process.nextTick(this.flush);
    }
    writeFrame(this.sock, slot, this.req);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.sock.off('error', this.onError);
      this.sock.on('error', () => {});
      this.sock.end(resolve);
    });
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    this.sock.uncork();
  };

  private readonly onData = (chunk: Buffer): void => {
    this.inRead = true;
    this.sock.cork();
    try {
      this.reader.push(chunk);
    } catch (err) {
      this.onError(err as Error);
    }
    this.inRead = false;
    this.sock.uncork();
  };

  private readonly onFrame = (id: number, body: Buffer): void => {
    this.done(id, body.length === this.w.rspSize ? undefined : sizeError(this.name, body.length, this.w.rspSize));
  };

  private readonly onError = (err: Error): void => {
    this.done(-1, err);
  };
}

export const peer: Peer = {
  name: 'raw-net',

  serve(listen: Endpoint, w: RpcWorkload): Promise<PeerServer> {
    const respond = responder(w);
    const server = net.createServer((sock) => new ServerConn(sock, respond));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(listenOptions(listen), () => {
        server.off('error', reject);
        const addr = server.address();
        const endpoint: Endpoint =
          listen.transport === 'tcp' && addr !== null && typeof addr === 'object' ? { transport: 'tcp', host: listen.host, port: addr.port } : listen;
        resolve({
          endpoint,
          close: () => new Promise<void>((res) => server.close(() => res())),
        });
      });
    });
  },

  connect(endpoint: Endpoint, w: RpcWorkload, done: DoneFn): Promise<PeerClient> {
    return new Promise((resolve, reject) => {
      const sock = 'path' in endpoint ? net.connect({ path: endpoint.path }) : net.connect({ host: endpoint.host, port: endpoint.port });
      sock.once('error', reject);
      sock.once('connect', () => {
        sock.off('error', reject);
        resolve(new RawClient(sock, w, done));
      });
    });
  },
};
