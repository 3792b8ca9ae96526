import type { DecodeOptions, FfnetError, MetadataLimits } from '@ffnet/serde';
import type { Transport, TransportHandler } from '@ffnet/transport';

/** A server call in flight on a connection, as the connection's list holds it (CallContext). */
export interface InFlightCall {
  readonly uuid: number;
  prev: InFlightCall | undefined;
  next: InFlightCall | undefined;
  abort(reason: FfnetError): void;
}

/** Where a connection's frames go (the Processor). */
export interface FrameSink {
  readonly metadataLimits: MetadataLimits | undefined;
  onFrame(conn: Connection, t: Transport, body: Buffer, compressed: boolean): void;
}

/** What a connection needs of the IOWorker that made it. */
export interface ConnectionOwner {
  readonly maxMessageSize: number | undefined;
  readonly processor: FrameSink;
  onConnectionClosed(conn: Connection, t: Transport, error: FfnetError | undefined, unsent: readonly unknown[]): void;
}

/**
 * The IOWorker's handler for one transport, and the place per-connection state lives, so a frame finds its
 * connection's state without a map lookup.
 */
export class Connection implements TransportHandler {
  readonly worker: ConnectionOwner;
  /** Server calls in flight on this connection, newest first (a doubly linked list through CallContext). */
  head: InFlightCall | undefined = undefined;
  closed = false;
  /** Reading was paused because replies piled up above the transport's high-water mark. */
  paused = false;
  #decode: DecodeOptions | undefined = undefined;
  /** performance.now() at creation, for the connection's lifetime in close events. */
  readonly openedAt = performance.now();
  /** The CallObserver's state for this connection (bound per-peer metrics), so a frame finds it without a lookup. */
  observed: unknown = undefined;

  constructor(worker: ConnectionOwner) {
    this.worker = worker;
  }

  decodeOptions(t: Transport): DecodeOptions {
    if (this.#decode === undefined) {
      const limits = this.worker.processor.metadataLimits;
      this.#decode = { peer: t.peer, maxMessageSize: this.worker.maxMessageSize, ...(limits ? { metadataLimits: limits } : {}) };
    }
    return this.#decode;
  }

  link(ctx: InFlightCall): void {
    const head = this.head;
    ctx.next = head;
    if (head !== undefined) head.prev = ctx;
    this.head = ctx;
  }

  unlink(ctx: InFlightCall): void {
    const { prev, next } = ctx;
    if (prev !== undefined) prev.next = next;
    else if (this.head === ctx) this.head = next;
    if (next !== undefined) next.prev = prev;
    ctx.prev = undefined;
    ctx.next = undefined;
  }

  onFrame(t: Transport, body: Buffer, compressed: boolean): void {
    this.worker.processor.onFrame(this, t, body, compressed);
  }

  onClose(t: Transport, error: FfnetError | undefined, unsent: readonly unknown[]): void {
    this.closed = true;
    this.worker.onConnectionClosed(this, t, error, unsent);
  }

  onDrain(t: Transport): void {
    if (this.paused) {
      this.paused = false;
      t.resume();
    }
  }
}
