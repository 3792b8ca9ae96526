import type { Metadata, Timestamps } from '@ffnet/serde';

export interface CompressionOptions {
  /** zstd level; 0 turns compression off (the default, as 3FS's client). */
  level?: number;
  /** Compress requests of at least this many bytes (default 128 KiB). */
  threshold?: number;
}

export interface CallOptions {
  /** Deadline in ms (default: the client's, 1000). It travels in the envelope, so the handler's ctx.signal honours it. */
  timeoutMs?: number;
  /** Aborting fails the call at once with a Cancelled error and tells the server, whose ctx.signal aborts. */
  signal?: AbortSignal;
  /** Retries when the request could not be sent (default: the client's, 1). */
  sendRetryTimes?: number;
  /** Compression for this call. With level > 0 the server also compresses a large response. */
  compression?: CompressionOptions;
  /**
   * Filled in with each hop's wall-clock time in µs when the call succeeds (see latencyBreakdown). Passing
   * it makes the request carry timestamps; without it they are not sent.
   */
  timestamps?: Timestamps;
  /** Request metadata (see serde's Metadata: lower-case token keys, string or binary values, limits). */
  metadata?: Metadata;
  /** Filled in with the response's metadata (also on an error response) when the server sends some. */
  responseMetadata?: Metadata;
  /**
   * The method may safely run twice: the retry interceptor then also retries a call that timed out or lost its
   * connection, which may have reached the handler. Default false.
   */
  idempotent?: boolean;
}
