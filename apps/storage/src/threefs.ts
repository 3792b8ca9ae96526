// 3FS's own Storage service (`@ffnet/3fs`, StorageSerde id 3) with the data inline in the messages, as 3FS does over
// TCP with FeatureFlags::SEND_DATA_INLINE: a batchRead answers with the bytes in `BatchReadRsp.inlinebuf`, a write
// carries them in `UpdateIO.inlinebuf`. Serve it on a group with `envelope: '3fs'` and a 3FS client can call it;
// ThreeFsStorageClient is the ffnet client of the same wire.
import {
  type BatchReadReq,
  type BatchReadRsp,
  FeatureFlags,
  fromInlineBuf,
  type GlobalKey,
  hasFeature,
  type IOResult,
  type MessageTag,
  type ReadIO,
  Storage,
  toInlineBuf,
  type UserInfo,
  type WriteReq,
  type WriteRsp,
} from '@ffnet/3fs';
import { errorFromCode, InvalidArgError, NotImplementedError, ResourceExhaustedError } from '@ffnet/serde';
import { type CallOptions, type Client, implement, type Service } from '@ffnet/server';

export interface ThreeFsStorageOptions {
  /** Largest chunk (default 1 MiB); a write's `chunkSize`, when set, must not exceed it. */
  chunkSize?: number;
  /** Chunks kept at most (default 1024): a write of a new chunk beyond it fails with ResourceExhausted. */
  maxChunks?: number;
  /** Bytes one batchRead may return inline (default 4 MiB); more is an InvalidArg, as the message must hold them. */
  maxInlineBytes?: number;
}

interface Chunk {
  data: Buffer;
  /** Bumped by every write, reported as commitVer/updateVer. */
  version: number;
}

/** `chainId/hex(chunkId)`: a chunk is named by its chain and its chunk id bytes (3FS GlobalKey, without the version). */
function keyOf(key: GlobalKey): string {
  return `${key.vChainId.chainId}/${Buffer.from(key.chunkId).toString('hex')}`;
}

const NO_CHECKSUM = Object.freeze({ type: 0, value: 0 });

function okResult(length: number, version: number, chainVer: number): IOResult {
  return { lengthInfo: { ok: length }, commitVer: version, updateVer: version, checksum: { ...NO_CHECKSUM }, commitChainVer: chainVer };
}

/** The service plus the chunks it holds (for inspection in tests and demos). */
export type ThreeFsStorageService = Service<typeof Storage> & { readonly chunks: ReadonlyMap<string, { readonly data: Uint8Array; readonly version: number }> };

/**
 * Storage's batchRead and write over inline data, chunks in memory. Only what TCP can carry is served: a request
 * without SEND_DATA_INLINE would need RDMA (3FS answers "batch read no RDMA socket", kInvalidArg), and the other
 * Storage methods (chain sync, targets, truncate...) answer NotImplemented. A chunk never written reads as zero
 * bytes; reads past a chunk's end are short. Checksums are not computed (ChecksumType NONE in every IOResult).
 */
export function threefsStorageService(opts: ThreeFsStorageOptions = {}): ThreeFsStorageService {
  const chunkSize = positive(opts.chunkSize, 1024 * 1024, 'chunkSize');
  const maxChunks = positive(opts.maxChunks, 1024, 'maxChunks');
  const maxInlineBytes = positive(opts.maxInlineBytes, 4 * 1024 * 1024, 'maxInlineBytes');
  const chunks = new Map<string, Chunk>();

  const batchRead = (_ctx: unknown, req: BatchReadReq): BatchReadRsp => {
    if (!hasFeature(req.featureFlags, FeatureFlags.SEND_DATA_INLINE)) {
      throw new InvalidArgError('batchRead without SEND_DATA_INLINE needs RDMA, which this server does not do: set the flag');
    }
    let total = 0;
    for (const io of req.payloads) total += io.length;
    if (total > maxInlineBytes) throw new InvalidArgError(`batchRead asks for ${total} bytes inline, more than ${maxInlineBytes}`);
    const out = Buffer.allocUnsafe(total);
    let at = 0;
    const results: IOResult[] = [];
    for (const io of req.payloads) {
      const chunk = chunks.get(keyOf(io.key));
      const n = chunk === undefined ? 0 : Math.max(0, Math.min(io.length, chunk.data.length - io.offset));
      if (n > 0) chunk!.data.copy(out, at, io.offset, io.offset + n);
      at += n;
      results.push(okResult(n, chunk?.version ?? 0, io.key.vChainId.chainVer));
    }
    // As 3FS's copyToRespBuffer: every read's bytes back to back, each as long as its result's length.
    return { tag: req.tag, results, inlinebuf: toInlineBuf(out.subarray(0, at)) };
  };

  const write = (_ctx: unknown, req: WriteReq): WriteRsp => {
    const io = req.payload;
    if (!hasFeature(req.featureFlags, FeatureFlags.SEND_DATA_INLINE)) {
      throw new InvalidArgError('write without SEND_DATA_INLINE needs an RDMA read of the client buffer, which this server does not do');
    }
    const data = fromInlineBuf(io.inlinebuf);
    if (data.length !== io.length) throw new InvalidArgError(`write: inlinebuf holds ${data.length} bytes, payload.length says ${io.length}`);
    const limit = io.chunkSize === 0 ? chunkSize : io.chunkSize;
    if (limit > chunkSize) throw new InvalidArgError(`write: chunkSize ${io.chunkSize} is above this server's ${chunkSize}`);
    if (io.offset + io.length > limit) throw new InvalidArgError(`write: [${io.offset}, ${io.offset + io.length}) is past the chunk size ${limit}`);
    const key = keyOf(io.key);
    let chunk = chunks.get(key);
    if (chunk === undefined) {
      if (chunks.size >= maxChunks) throw new ResourceExhaustedError(`write: this server holds ${maxChunks} chunks already`);
      chunk = { data: Buffer.alloc(0), version: 0 };
      chunks.set(key, chunk);
    }
    const end = io.offset + io.length;
    if (end > chunk.data.length) {
      const grown = Buffer.alloc(end);
      chunk.data.copy(grown);
      chunk.data = grown;
    }
    chunk.data.set(data, io.offset);
    chunk.version++;
    return { tag: req.tag, result: okResult(io.length, chunk.version, io.key.vChainId.chainVer) };
  };

  const notHere = (name: string) => () => {
    throw new NotImplementedError(`Storage.${name} is not served by this example (only batchRead and write, inline)`);
  };
  const service = implement(Storage, {
    batchRead,
    write,
    update: notHere('update'),
    queryLastChunk: notHere('queryLastChunk'),
    truncateChunks: notHere('truncateChunks'),
    removeChunks: notHere('removeChunks'),
    syncStart: notHere('syncStart'),
    syncDone: notHere('syncDone'),
    spaceInfo: notHere('spaceInfo'),
    createTarget: notHere('createTarget'),
    queryChunk: notHere('queryChunk'),
    getAllChunkMetadata: notHere('getAllChunkMetadata'),
    offlineTarget: notHere('offlineTarget'),
    removeTarget: notHere('removeTarget'),
  });
  return Object.assign(service, { chunks });
}

function positive(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v <= 0) throw new InvalidArgError(`${name} must be a positive integer, got ${v}`);
  return v;
}

/** One range of one chunk, named as 3FS names it: chain id (and version) plus the chunk id bytes. */
export interface ThreeFsChunkRange {
  chainId: number;
  chainVer?: number;
  chunkId: Uint8Array;
  offset: number;
  length: number;
}

const ZERO_UUID = new Uint8Array(16);

/**
 * A client of 3FS's Storage with inline data: every request sets SEND_DATA_INLINE, so it works over TCP against
 * this example's server or a 3FS storage node. Use a Client with `envelope: '3fs'` to talk to 3FS itself.
 */
export class ThreeFsStorageClient {
  readonly client: Client;
  readonly address: string;
  #requestId = 0n;

  constructor(client: Client, address: string) {
    this.client = client;
    this.address = address;
  }

  #tag(): MessageTag {
    this.#requestId++;
    return { clientId: { uuid: ZERO_UUID, hostname: '' }, requestId: this.#requestId, channel: { id: 0, seqnum: 0n } };
  }

  static #user(): UserInfo {
    return { uid: 0, gid: 0, groups: [], token: '' };
  }

  /** The bytes of each range (short at a chunk's end); a failed range rejects with its 3FS status as a typed error. */
  async read(ranges: readonly ThreeFsChunkRange[], opts?: CallOptions): Promise<Uint8Array[]> {
    const payloads: ReadIO[] = ranges.map((r) => ({
      offset: r.offset,
      length: r.length,
      key: { vChainId: { chainId: r.chainId, chainVer: r.chainVer ?? 0 }, chunkId: r.chunkId },
      rdmabuf: { addr: 0n, size: 0n, rkeys: [] },
    }));
    const req: BatchReadReq = {
      payloads,
      tag: this.#tag(),
      retryCount: 0,
      userInfo: ThreeFsStorageClient.#user(),
      featureFlags: FeatureFlags.SEND_DATA_INLINE,
      checksumType: 0,
      debugFlags: { injectRandomServerError: false, injectRandomClientError: false, numOfInjectPtsBeforeFail: 0 },
    };
    const rsp = await this.client.call(this.address, Storage, 'batchRead', req, opts);
    if (rsp.results.length !== ranges.length) {
      throw new InvalidArgError(`batchRead answered ${rsp.results.length} results for ${ranges.length} reads`, { peer: this.address });
    }
    const data = fromInlineBuf(rsp.inlinebuf);
    const out: Uint8Array[] = [];
    let at = 0;
    for (const [i, r] of rsp.results.entries()) {
      const info = r.lengthInfo;
      if ('error' in info) throw errorFromCode(info.error.code, `batchRead of range ${i}: ${info.error.message}`, { peer: this.address });
      if (info.ok > ranges[i]!.length || at + info.ok > data.length) {
        throw new InvalidArgError(`batchRead result ${i}: ${info.ok} bytes do not fit the inline data (${data.length} bytes)`, { peer: this.address });
      }
      out.push(data.subarray(at, at + info.ok));
      at += info.ok;
    }
    return out;
  }

  /** Writes `data` at `offset` of a chunk, inline; resolves to the chunk's new version. */
  async write(range: Omit<ThreeFsChunkRange, 'length'>, data: Uint8Array, opts?: CallOptions & { chunkSize?: number }): Promise<number> {
    const req: WriteReq = {
      payload: {
        offset: range.offset,
        length: data.length,
        chunkSize: opts?.chunkSize ?? 0,
        key: { vChainId: { chainId: range.chainId, chainVer: range.chainVer ?? 0 }, chunkId: range.chunkId },
        rdmabuf: { addr: 0n, size: 0n, rkeys: [] },
        updateVer: 0,
        updateType: 1, // WRITE
        checksum: { ...NO_CHECKSUM },
        inlinebuf: toInlineBuf(data),
      },
      tag: this.#tag(),
      retryCount: 0,
      userInfo: ThreeFsStorageClient.#user(),
      featureFlags: FeatureFlags.SEND_DATA_INLINE,
      debugFlags: { injectRandomServerError: false, injectRandomClientError: false, numOfInjectPtsBeforeFail: 0 },
    };
    const rsp = await this.client.call(this.address, Storage, 'write', req, opts);
    const info = rsp.result.lengthInfo;
    if ('error' in info) throw errorFromCode(info.error.code, `write: ${info.error.message}`, { peer: this.address });
    return rsp.result.updateVer;
  }
}
