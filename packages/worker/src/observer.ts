import type { FfnetError } from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';
import type { CallContext, MethodBinding, ServiceBinding } from './call-context.js';
import type { Connection } from './connection.js';

/**
 * What a Processor tells about its calls and connections, for diagnostics and metrics (the server package's
 * observers publish on diagnostics_channel and record into a Metrics). Called synchronously at each point; an
 * observer must not throw and must not keep `ctx` past the call.
 */
export interface CallObserver {
  /** Set when bytesIn/bytesOut want calls: counting them costs a size computation per frame. */
  readonly countBytes: boolean;
  /** A request was dispatched (its handler runs now or once its method pool has room). */
  callStart(ctx: CallContext): void;
  /** Its reply was handed to the transport (`error` undefined) or an error was (or could not be) sent back. */
  callEnd(ctx: CallContext, durationMs: number, error: FfnetError | undefined): void;
  /** A request refused before dispatch (stopping, over maxProcessingRequests); `method` undefined if unknown. */
  callRefused(t: Transport, service: ServiceBinding | undefined, method: MethodBinding | undefined, error: FfnetError): void;
  bytesIn(conn: Connection, t: Transport, bytes: number): void;
  bytesOut(conn: Connection, t: Transport, bytes: number): void;
  connectionOpened(conn: Connection, t: Transport): void;
  connectionClosed(conn: Connection, t: Transport, error: FfnetError | undefined): void;
}
