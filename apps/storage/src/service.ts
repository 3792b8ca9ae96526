import type { RDMARemoteBuf } from '@ffnet/device';
import { defineService, method } from '@ffnet/serde';

/** A byte range of one chunk. */
export interface ChunkRange {
  id: number;
  offset: number;
  length: number;
}

/**
 * `buffers` (one per chunk, each at least that chunk's length) asks the server to RDMA-write the data into the
 * caller's registered memory, as 3FS's batchRead does; without it the data comes back inline.
 */
export interface BatchReadReq {
  chunks: ChunkRange[];
  buffers?: RDMARemoteBuf[];
}

export interface ReadResult {
  /** Bytes read: shorter than asked at the end of a chunk. */
  length: number;
  /** crc32c of those bytes. */
  crc: number;
  /** Inline data (only when the request carried no buffers). */
  data?: Uint8Array;
}

export interface BatchReadRsp {
  results: ReadResult[];
}

/** The chunk's new content is either in the caller's memory (`remote`, read by RDMA) or inline (`data`). */
export interface WriteReq {
  chunkId: number;
  length: number;
  crc: number;
  remote?: RDMARemoteBuf;
  data?: Uint8Array;
}

export interface WriteRsp {
  length: number;
  crc: number;
}

/** Id 3 and the method names follow 3FS's StorageSerde (batchRead = 1, write = 2). */
export const StorageService = defineService({
  name: 'Storage',
  id: 3,
  methods: {
    batchRead: method<BatchReadReq, BatchReadRsp>(1),
    write: method<WriteReq, WriteRsp>(2),
  },
});
