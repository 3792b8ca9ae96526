/**
 * One named constant for each default that more than one package relies on, so a default changes in one place.
 * Each names its 3FS counterpart where there is one. Packages still export their own names for these (re-exports)
 * where they did before.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

// ---- RDMA connection set-up (connect, and the verbs backend in rdma) ----

/** A whole RDMA connect, query to a ready queue pair (3FS rdma_connect_timeout). */
export const RDMA_CONNECT_TIMEOUT_MS = 5_000;
/** An accepted RDMA socket that has not seen the client's probe after this long fails (3FS rdma_accept_timeout). */
export const RDMA_ACCEPT_TIMEOUT_MS = 15_000;
/** Listener side: from TCP accept to a ready queue pair. */
export const RDMA_HANDSHAKE_TIMEOUT_MS = 5_000;
/** How long a closing RDMA socket waits for posted work to finish before it is destroyed. */
export const RDMA_DRAIN_TIMEOUT_MS = 5_000;
/** RDMA handshakes in progress at once per listener. */
export const RDMA_MAX_PENDING_HANDSHAKES = 64;
/** Queue pairs of accepted sockets alive at once, server-wide. */
export const RDMA_MAX_ACCEPTED_QPS = 1024;
/** Registered (pinned) buffer bytes of accepted sockets alive at once, server-wide. */
export const RDMA_MAX_PINNED_BYTES = 1 * GiB;
/** Largest registered buffer block a client's config may make a server allocate per connection. */
export const RDMA_MAX_BUFFER_BYTES = 64 * MiB;
/** Largest sendBufCnt and maxRdmaWr a client's config may ask for. */
export const RDMA_MAX_WORK_REQUESTS = 4096;
/** RDMA read/write transmissions a client lets servers run against it at once (RDMAControl). */
export const MAX_CONCURRENT_TRANSMISSION = 64;

// ---- TLS ----

/** From TCP connect (or accept) to a finished TLS handshake: a peer that stalls the handshake cannot hold a socket. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 5_000;
/** TLS sessions the tls() backend keeps for resumption, per backend (oldest address dropped first). */
export const TLS_SESSION_CACHE_SIZE = 256;

// ---- messages and connections ----

/** Largest frame accepted or sent; at or above it a message is refused. */
export const MAX_MESSAGE_SIZE = 512 * MiB;
/** Bytes queued for output on one connection before writes are refused. */
export const MAX_QUEUED_BYTES = 64 * MiB;
/**
 * Queued output at which a connection reports back-pressure: a server then stops taking that peer's requests until
 * half of it has drained. A client that keeps eight 1 MiB replies in flight (a batchRead's shape, the bench's W4)
 * has ~8 MiB queued at its server; with 4 MiB here that server took its requests in bursts and spent ~10 % more CPU
 * per reply over tcp (apps/bench README, "Issue 15, sixth round").
 */
export const HIGH_WATER_MARK_BYTES = 8 * MiB;
/** A graceful connection close that has not finished after this long destroys the socket. */
export const CLOSE_TIMEOUT_MS = 5_000;
/** A connection with no traffic for this long is closed. */
export const IDLE_TIMEOUT_MS = 5 * 60 * 1000;
/** A frame that has started arriving must complete within this long (or keep the minimum rate below). */
export const FRAME_TIMEOUT_MS = 30_000;
/** The slowest rate a large frame may arrive at. */
export const FRAME_MIN_BYTES_PER_SEC = 1 * MiB;
/** Payloads at least this large are compressed when compression is on. */
export const COMPRESSION_THRESHOLD_BYTES = 128 * KiB;

// ---- server ----

/** Bytes of received, not yet handled messages a server holds across its connections. */
export const RECEIVE_BUDGET_BYTES = 256 * MiB;
/** Bytes of queued responses a server holds across its connections. */
export const OUTPUT_BUDGET_BYTES = 256 * MiB;
/** Requests a server handles at once. */
export const MAX_PROCESSING = 4096;
/** stop(): how long calls in progress may finish before connections are closed. */
export const STOP_GRACE_MS = 5_000;
/** stop(): the bound on the whole shutdown. */
export const STOP_TIMEOUT_MS = 10_000;
