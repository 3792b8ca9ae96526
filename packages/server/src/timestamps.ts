import type { Timestamps } from '@ffnet/serde';

// An all-zero Timestamps to pass as a call's `timestamps` option (the call fills it in): serde's, one shape everywhere.
export { newTimestamps } from '@ffnet/serde';

/** Where a call's time went, in microseconds. Cross-process figures assume the two clocks agree (same host). */
export interface LatencyBreakdown {
  /** clientCalled → clientWaked. */
  readonly total: number;
  /** clientCalled → clientSerialized: building and encoding the request. */
  readonly clientSerialize: number;
  /** clientSerialized → serverReceived: queueing, the network and decoding. */
  readonly toServer: number;
  /** serverReceived → serverWaked: waiting for a handler slot. */
  readonly serverQueue: number;
  /** serverWaked → serverProcessed: the handler. */
  readonly serverHandle: number;
  /** serverProcessed → serverSerialized: encoding the response. */
  readonly serverSerialize: number;
  /** serverSerialized → clientReceived: the way back. */
  readonly toClient: number;
  /** clientReceived → clientWaked: matching and resuming the caller. */
  readonly clientWake: number;
}

export function latencyBreakdown(ts: Timestamps): LatencyBreakdown {
  return {
    total: ts.clientWaked - ts.clientCalled,
    clientSerialize: ts.clientSerialized - ts.clientCalled,
    toServer: ts.serverReceived - ts.clientSerialized,
    serverQueue: ts.serverWaked - ts.serverReceived,
    serverHandle: ts.serverProcessed - ts.serverWaked,
    serverSerialize: ts.serverSerialized - ts.serverProcessed,
    toClient: ts.clientReceived - ts.serverSerialized,
    clientWake: ts.clientWaked - ts.clientReceived,
  };
}
