import * as diagnosticsChannel from 'node:diagnostics_channel';

/**
 * The `node:diagnostics_channel` names ffnet publishes on, in the manner of undici's `undici:request:*`:
 * subscribe with `diagnostics_channel.subscribe(CHANNELS.serverCallEnd, fn)` (or the literal name) from any
 * copy of ffnet in the process. A message is only built when the channel has subscribers, so an unwatched
 * channel costs a property read per call.
 */
export const CHANNELS = {
  /** A client call is about to be sent (after the interceptors, before encoding). CallStartMessage. */
  clientCallStart: 'ffnet:client:call:start',
  /** A client call succeeded. CallEndMessage. */
  clientCallEnd: 'ffnet:client:call:end',
  /** A client call failed, locally or with an error response. CallErrorMessage. */
  clientCallError: 'ffnet:client:call:error',
  /** A request was dispatched to its handler. CallStartMessage. */
  serverCallStart: 'ffnet:server:call:start',
  /** A handler's reply was sent. CallEndMessage. */
  serverCallEnd: 'ffnet:server:call:end',
  /** A handler failed, or its reply could not be sent. CallErrorMessage. */
  serverCallError: 'ffnet:server:call:error',
  /** A connection was dialled or accepted. ConnectionMessage. */
  connectionOpen: 'ffnet:connection:open',
  /** A connection closed, cleanly (`error` undefined) or not. ConnectionMessage. */
  connectionClose: 'ffnet:connection:close',
} as const;

export type ChannelName = (typeof CHANNELS)[keyof typeof CHANNELS];

export interface CallStartMessage {
  readonly side: 'client' | 'server';
  /** Service name (a number as a string when the client called by id). */
  readonly service: string;
  readonly method: string;
  /** The address the client called, or the caller's address on the server. */
  readonly peer: string;
}

export interface CallEndMessage extends CallStartMessage {
  /** From the start of the call (client) or the decoded request (server) to its end, in milliseconds. */
  readonly durationMs: number;
  /** 0: success. */
  readonly code: 0;
}

export interface CallErrorMessage extends CallStartMessage {
  readonly durationMs: number;
  /** The status code of the error (StatusCode). */
  readonly code: number;
  /** An FfnetError (client side: what the caller gets; server side: what is sent back). */
  readonly error: Error;
}

export interface ConnectionMessage {
  readonly side: 'client' | 'server';
  readonly peer: string;
  /** Close only: how long the connection lived, in milliseconds. */
  readonly durationMs?: number;
  /** Close only: why it closed (undefined: a clean local close); carries `code`. */
  readonly error?: Error | undefined;
  /** Close only: its status code, 0 for a clean close. */
  readonly code?: number;
}

/** The channel objects, created once (diagnostics_channel keeps one per name process-wide). */
export const channels = {
  clientCallStart: diagnosticsChannel.channel(CHANNELS.clientCallStart),
  clientCallEnd: diagnosticsChannel.channel(CHANNELS.clientCallEnd),
  clientCallError: diagnosticsChannel.channel(CHANNELS.clientCallError),
  serverCallStart: diagnosticsChannel.channel(CHANNELS.serverCallStart),
  serverCallEnd: diagnosticsChannel.channel(CHANNELS.serverCallEnd),
  serverCallError: diagnosticsChannel.channel(CHANNELS.serverCallError),
  connectionOpen: diagnosticsChannel.channel(CHANNELS.connectionOpen),
  connectionClose: diagnosticsChannel.channel(CHANNELS.connectionClose),
} as const;
