import { type RDMABuf, RDMABufPool, RDMARemoteBuf } from '@ffnet/device';
import { readTransmission, writeTransmission } from '@ffnet/rdma';
import { crc32c, DataCorruptionError, InvalidArgError } from '@ffnet/serde';
import { type CallContext, implement, type Service } from '@ffnet/server';
import { type BatchReadReq, type BatchReadRsp, type ReadResult, StorageService, type WriteReq, type WriteRsp } from './service.js';
import { ChunkStore } from './store.js';

export interface StorageServiceOptions {
  /** Chunk size of the in-memory store (default 1 MiB); ignored when `store` is given. */
  chunkSize?: number;
  store?: ChunkStore;
  /** Bytes one request may move (default 4 MiB): the size of each registered staging buffer. */
  maxBatchBytes?: number;
  /** Registered staging buffers, i.e. RDMA requests served at once (default 16). */
  stagingBuffers?: number;
  /** How long a batchRead waits for the client's RDMAControl slot (default 1000 ms; then it writes anyway). */
  applyTimeoutMs?: number;
}

const DEFAULT_MAX_BATCH = 4 * 1024 * 1024;

/**
 * The storage service: batchRead and write over any transport. Over rdma:// the data moves by one-sided RDMA
 * between the client's registered buffers and one staging buffer per request (so concurrent requests can never
 * deadlock over staging memory); otherwise it travels inline in the messages.
 */
export function storageService(opts: StorageServiceOptions = {}): Service<typeof StorageService> & { readonly store: ChunkStore; close(): void } {
  const store = opts.store ?? new ChunkStore(opts.chunkSize ?? 1024 * 1024);
  const maxBatch = opts.maxBatchBytes ?? DEFAULT_MAX_BATCH;
  const applyTimeoutMs = opts.applyTimeoutMs ?? 1000;
  let pool: RDMABufPool | undefined;
  // Registered only once an RDMA request arrives, so a tcp-only server needs no RDMA device.
  const staging = (ctx: CallContext): Promise<RDMABuf> => {
    pool ??= new RDMABufPool(maxBatch, opts.stagingBuffers ?? 16);
    return pool.allocate({ signal: ctx.signal });
  };

  function checkRead(req: BatchReadReq): void {
    if (!Array.isArray(req?.chunks)) throw new InvalidArgError('batchRead: chunks must be an array');
    let total = 0;
    for (const c of req.chunks) total += store.available(c?.id, c?.offset, c?.length);
    if (total > maxBatch) throw new InvalidArgError(`batchRead: ${total} bytes in one request (max ${maxBatch})`);
    const bufs = req.buffers;
    if (bufs === undefined) return;
    if (!Array.isArray(bufs) || bufs.length !== req.chunks.length) throw new InvalidArgError('batchRead: need one buffer per chunk');
    for (const [i, b] of bufs.entries()) {
      if (!(b instanceof RDMARemoteBuf)) throw new InvalidArgError(`batchRead: buffer ${i} is not an RDMARemoteBuf`);
    }
  }

  async function batchRead(ctx: CallContext, req: BatchReadReq): Promise<BatchReadRsp> {
    checkRead(req);
    const results: ReadResult[] = [];
    const remotes = req.buffers;
    if (remotes === undefined) {
      for (const c of req.chunks) {
        const data = Buffer.allocUnsafe(store.available(c.id, c.offset, c.length));
        store.read(c.id, c.offset, c.length, data);
        results.push({ length: data.length, crc: crc32c(data), data });
      }
      return { results };
    }
    // 3FS batchRead: stage every chunk in registered memory, get the client's go-ahead, one batch of WRITEs.
    const tx = writeTransmission(ctx);
    const buf = await staging(ctx);
    try {
      let at = 0;
      for (const [i, c] of req.chunks.entries()) {
        const remote = remotes[i]!;
        const n = store.available(c.id, c.offset, c.length);
        if (remote.length < n) throw new InvalidArgError(`batchRead: buffer ${i} holds ${remote.length} bytes, chunk ${c.id} needs ${n}`);
        const local = buf.subrange(at, n)!;
        store.read(c.id, c.offset, n, local.buffer);
        results.push({ length: n, crc: crc32c(local.buffer) });
        if (n > 0) tx.add(remote.first(n)!, local);
        at += n;
      }
      await tx.applyTransmission(applyTimeoutMs);
      await tx.post();
    } finally {
      buf.release();
    }
    return { results };
  }

  async function write(ctx: CallContext, req: WriteReq): Promise<WriteRsp> {
    const { chunkId, length, crc } = req ?? ({} as WriteReq);
    if (!Number.isSafeInteger(length) || length < 0 || length > maxBatch) throw new InvalidArgError(`write: bad length ${length} (max ${maxBatch})`);
    if (req.remote !== undefined) {
      if (!(req.remote instanceof RDMARemoteBuf) || req.remote.length < length)
        throw new InvalidArgError('write: remote must be an RDMARemoteBuf of at least length bytes');
      const tx = readTransmission(ctx);
      const buf = await staging(ctx);
      try {
        const local = buf.first(length)!;
        if (length > 0) await tx.add(req.remote.first(length)!, local).post();
        return commit(chunkId, local.buffer, crc);
      } finally {
        buf.release();
      }
    }
    if (!(req.data instanceof Uint8Array) || req.data.length !== length) throw new InvalidArgError(`write: inline data must be ${length} bytes`);
    return commit(chunkId, req.data, crc);
  }

  function commit(chunkId: number, data: Uint8Array, crc: number): WriteRsp {
    const got = crc32c(data);
    if (got !== crc) throw new DataCorruptionError(`write of chunk ${chunkId}: crc32c ${got} of the received ${data.length} bytes, expected ${crc}`);
    store.write(chunkId, data);
    return { length: data.length, crc: got };
  }

  // close() frees the staging memory once the server has stopped.
  return Object.assign(implement(StorageService, { batchRead, write }), { store, close: () => pool?.close() });
}
