import { IBManager, type RDMABuf, RDMABufPool } from '@ffnet/device';
import { withExposed } from '@ffnet/rdma';
import { crc32c, DataCorruptionError, InvalidArgError } from '@ffnet/serde';
import type { CallOptions, Client, Stub } from '@ffnet/server';
import { parseAddress } from '@ffnet/transport';
import { type BatchReadRsp, type ChunkRange, StorageService } from './service.js';

export interface StorageClientOptions {
  /** Bytes per request (default 4 MiB, as the server's default): larger reads are split. */
  maxBatchBytes?: number;
  /** Registered buffers of maxBatchBytes for rdma:// (default 8), i.e. RDMA requests in flight. */
  buffers?: number;
}

export interface StorageCallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * The storage client: the same read()/write() over every transport. Over rdma:// the server moves the bytes by
 * RDMA between this process's registered buffers and its own (3FS batchRead); over tcp:// and unix:// they travel
 * inline. Every chunk is checked against the crc32c the server computed.
 */
export class StorageClient {
  readonly client: Client;
  readonly address: string;
  readonly stub: Stub<typeof StorageService>;
  /** Whether data moves by RDMA (the address is rdma://). */
  readonly rdma: boolean;
  readonly maxBatchBytes: number;
  readonly #buffers: number;
  #pool: RDMABufPool | undefined;

  constructor(client: Client, address: string, opts: StorageClientOptions = {}) {
    this.client = client;
    this.address = address;
    this.stub = client.stub(StorageService, address);
    this.rdma = parseAddress(address).scheme === 'rdma';
    this.maxBatchBytes = opts.maxBatchBytes ?? 4 * 1024 * 1024;
    this.#buffers = opts.buffers ?? 8;
  }

  /** The bytes of each range, in order (shorter than asked where a chunk ends). */
  async read(chunks: readonly ChunkRange[], opts: StorageCallOptions = {}): Promise<Buffer[]> {
    const batches: ChunkRange[][] = [];
    let cur: ChunkRange[] = [];
    let bytes = 0;
    for (const c of chunks) {
      if (c.length > this.maxBatchBytes) throw new InvalidArgError(`read of ${c.length} bytes exceeds maxBatchBytes ${this.maxBatchBytes}`);
      if (bytes + c.length > this.maxBatchBytes) {
        batches.push(cur);
        cur = [];
        bytes = 0;
      }
      cur.push(c);
      bytes += c.length;
    }
    if (cur.length > 0) batches.push(cur);
    const parts = await Promise.all(batches.map((b) => (this.rdma ? this.#readRdma(b, opts) : this.#readInline(b, opts))));
    return parts.flat();
  }

  /** Replaces chunk `chunkId` with `data`; the server checks it against our crc32c. */
  async write(chunkId: number, data: Uint8Array, opts: StorageCallOptions = {}): Promise<void> {
    if (data.length > this.maxBatchBytes) throw new InvalidArgError(`write of ${data.length} bytes exceeds maxBatchBytes ${this.maxBatchBytes}`);
    const crc = crc32c(data);
    const call = callOptions(opts);
    if (!this.rdma) {
      await this.stub.write({ chunkId, length: data.length, crc, data }, call);
      return;
    }
    const buf = await this.#pool_().allocate({ signal: opts.signal });
    try {
      buf.buffer.set(data);
      // The server only reads this buffer, through a window bound to our connection for this call alone.
      await withExposed(
        this.client,
        this.address,
        buf.first(data.length)!,
        ([remote]) => this.stub.write({ chunkId, length: data.length, crc, remote: remote! }, call),
        {
          access: 'read',
          ...(opts.signal ? { signal: opts.signal } : {}),
        },
      );
    } finally {
      buf.release();
    }
  }

  /** Frees the registered buffers. */
  close(): void {
    this.#pool?.close();
    this.#pool = undefined;
  }

  async #readInline(chunks: ChunkRange[], opts: StorageCallOptions): Promise<Buffer[]> {
    const rsp = await this.stub.batchRead({ chunks }, callOptions(opts));
    return check(chunks, rsp, (r) => {
      if (!(r.data instanceof Uint8Array) || r.data.length !== r.length)
        throw new DataCorruptionError(`inline data of ${r.data?.length} bytes, expected ${r.length}`);
      return Buffer.from(r.data.buffer, r.data.byteOffset, r.data.length);
    });
  }

  async #readRdma(chunks: ChunkRange[], opts: StorageCallOptions): Promise<Buffer[]> {
    const buf: RDMABuf = await this.#pool_().allocate({ signal: opts.signal });
    try {
      const starts: number[] = [];
      // The server writes into this buffer through a window bound to our connection, revoked once the call settled.
      const rsp = await withExposed(
        this.client,
        this.address,
        buf,
        ([remote]) => {
          let at = 0;
          const buffers = chunks.map((c) => {
            starts.push(at);
            at += c.length;
            return remote!.subrange(at - c.length, c.length)!;
          });
          return this.stub.batchRead({ chunks, buffers }, callOptions(opts));
        },
        { access: 'write', ...(opts.signal ? { signal: opts.signal } : {}) },
      );
      // Copied out so the registered buffer can go back to the pool.
      return check(chunks, rsp, (r, i) => Buffer.from(buf.buffer.subarray(starts[i]!, starts[i]! + r.length)));
    } finally {
      buf.release();
    }
  }

  #pool_(): RDMABufPool {
    // Registered on IBManager's devices, with no remote rights of their own: calls expose them through windows.
    if (this.#pool === undefined && !IBManager.started) IBManager.start();
    this.#pool ??= new RDMABufPool(this.maxBatchBytes, this.#buffers);
    return this.#pool;
  }
}

function callOptions(opts: StorageCallOptions): CallOptions {
  const o: CallOptions = {};
  if (opts.timeoutMs !== undefined) o.timeoutMs = opts.timeoutMs;
  if (opts.signal !== undefined) o.signal = opts.signal;
  return o;
}

function check(chunks: readonly ChunkRange[], rsp: BatchReadRsp, data: (r: BatchReadRsp['results'][number], i: number) => Buffer): Buffer[] {
  if (!Array.isArray(rsp?.results) || rsp.results.length !== chunks.length) {
    throw new DataCorruptionError(`batchRead returned ${rsp?.results?.length} results for ${chunks.length} chunks`);
  }
  return rsp.results.map((r, i) => {
    const c = chunks[i]!;
    if (!(r.length >= 0 && r.length <= c.length)) throw new DataCorruptionError(`chunk ${c.id}: ${r.length} bytes for a read of ${c.length}`);
    const d = data(r, i);
    const got = crc32c(d);
    if (got !== r.crc) throw new DataCorruptionError(`chunk ${c.id} at ${c.offset}: crc32c ${got}, the server sent ${r.crc}`);
    return d;
  });
}
