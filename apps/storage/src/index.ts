// @ffnet/storage: an example app with 3FS's batchRead pattern: one-sided RDMA over rdma://, inline data elsewhere.
export { StorageService, type ChunkRange, type BatchReadReq, type BatchReadRsp, type ReadResult, type WriteReq, type WriteRsp } from './service.js';
export { ChunkStore, fillChunk } from './store.js';
export { storageService, type StorageServiceOptions } from './server.js';
export { StorageClient, type StorageClientOptions, type StorageCallOptions } from './client.js';
