import { type FfnetError, InvalidArgError } from '@ffnet/serde';
import type { Address, Scheme } from './address.js';
import type { BackendHandlers, BackendSocket, PeerCredentials } from './backend.js';

/**
 * What every backend socket does the same way (the net, verbs and replay sockets): handlers set once, pause and
 * resume remembered across setHandlers, and the close reported exactly once, also when it happened before the
 * owner attached (then on the next tick, after any data the subclass hands over in attach()).
 *
 * A subclass moves bytes: it implements write/end/destroy, starts and stops its source (pauseSource,
 * resumeSource), wires its events in attach(), and calls emitData / emitDrain / emitWritten / reportClose.
 */
export abstract class BackendSocketBase implements BackendSocket {
  abstract readonly scheme: Scheme;
  readonly remote: Address;
  readonly peer: string;
  readonly local: string;
  protected handlers: BackendHandlers | undefined = undefined;
  protected paused = false;
  // Plain private fields, not #fields: a socket wrapped in a Proxy (as tests and instrumentation do) must still
  // work, and #fields fail their brand check when `this` is the Proxy.
  /** The close, once known: reported at once when handlers are set, else when they are. */
  private closeState: { err: FfnetError | undefined } | undefined = undefined;
  private closeReported = false;

  constructor(remote: Address, peer: string, local: string) {
    this.remote = remote;
    this.peer = peer;
    this.local = local;
  }

  abstract write(bufs: readonly Uint8Array[]): boolean;
  abstract end(): void;
  abstract destroy(): void;
  peerCredentials?(): PeerCredentials | undefined;

  /** Stop / restart reading from the source; only called while it makes sense (resume: handlers are set). */
  protected abstract pauseSource(): void;
  protected abstract resumeSource(): void;
  /**
   * Wire the source's events to `h`, called once from setHandlers (a close known by then is reported by the base
   * on the next tick). Return true when the source must be started now unless paused (a stream that arrives
   * paused), false when it starts by itself or later.
   */
  protected abstract attach(h: BackendHandlers): boolean;

  setHandlers(h: BackendHandlers): void {
    if (this.handlers) throw new InvalidArgError(`handlers of ${this.peer} are already set`);
    this.handlers = h;
    const start = this.attach(h);
    if (this.closeState !== undefined) {
      // Closed before its owner came: the owner hears of it after setHandlers has returned, as from a live socket.
      process.nextTick(this.reportPending);
      return;
    }
    if (start && !this.paused) this.resumeSource();
  }

  pause(): void {
    this.paused = true;
    this.pauseSource();
  }

  resume(): void {
    this.paused = false;
    if (this.handlers) this.resumeSource();
  }

  /** Whether the close has been reported (or is due): later events of the source are stale. */
  protected get closeKnown(): boolean {
    return this.closeState !== undefined;
  }

  /** The socket is closed: tell the owner exactly once (now, or when it sets its handlers). */
  protected reportClose(err: FfnetError | undefined): void {
    if (this.closeState !== undefined) return;
    this.closeState = { err };
    if (this.handlers !== undefined && !this.holdClose()) {
      this.closeReported = true;
      this.handlers.close(err);
    }
  }

  /** A subclass that still has data to hand over first (a replay) defers the close report until it calls flushClose(). */
  protected holdClose(): boolean {
    return false;
  }

  /** Reports a close that holdClose() deferred. */
  protected flushClose(): void {
    if (this.closeState !== undefined && !this.closeReported && this.handlers !== undefined) {
      this.closeReported = true;
      this.handlers.close(this.closeState.err);
    }
  }

  private readonly reportPending = (): void => {
    if (this.closeReported || this.holdClose()) return;
    this.closeReported = true;
    this.handlers!.close(this.closeState!.err);
  };
}
