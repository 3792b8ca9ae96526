// @ffnet/storage: an example app with 3FS's batchRead pattern: one-sided RDMA over rdma://, inline data elsewhere.

export { type StorageCallOptions, StorageClient, type StorageClientOptions } from './client.js';
export { type StorageServiceOptions, storageService } from './server.js';
export { type BatchReadReq, type BatchReadRsp, type ChunkRange, type ReadResult, StorageService, type WriteReq, type WriteRsp } from './service.js';
export { ChunkStore, fillChunk } from './store.js';
export {
  type ThreeFsChunkRange,
  ThreeFsStorageClient,
  type ThreeFsStorageOptions,
  type ThreeFsStorageService,
  threefsStorageService,
} from './threefs.js';
