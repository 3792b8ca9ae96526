import { StatusCode, statusName } from './status.js';

const brand = Symbol.for('ffnet.error');

export interface FfnetErrorOptions {
  cause?: unknown;
  /** The remote end this error concerns, as an address string (`tcp://10.0.0.1:8000`). */
  peer?: string;
}

/**
 * Base of every error ffnet throws. `code` is one of 3FS's stable numeric status codes, so callers can
 * switch on it, and remote errors keep it across the wire. The brand makes `FfnetError.is` work even
 * when two copies of the package are installed.
 */
export class FfnetError extends Error {
  readonly code: number;
  readonly peer: string | undefined;
  /**
   * The message without the peer suffix. This is what crosses the wire in an error response: the receiving side
   * adds its own view of the peer, so the text never names it twice.
   */
  readonly reason: string;
  constructor(code: number, message: string, options: FfnetErrorOptions = {}) {
    super(options.peer ? `${message} (peer ${options.peer})` : message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.peer = options.peer;
    this.reason = message;
    (this as unknown as Record<symbol, boolean>)[brand] = true;
  }
  override get name(): string {
    return 'FfnetError';
  }
  /** `"SocketClosed"` for 2013, and so on. */
  get codeName(): string {
    return statusName(this.code);
  }
  static is(e: unknown): e is FfnetError {
    return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[brand] === true;
  }
  toJSON(): { name: string; code: number; message: string; peer?: string } {
    return { name: this.name, code: this.code, message: this.message, ...(this.peer ? { peer: this.peer } : {}) };
  }
}

type Ctor = new (message: string, options?: FfnetErrorOptions) => FfnetError;
const byCode = new Map<number, Ctor>();

function define<N extends string>(name: N, code: number): Ctor {
  const C = class extends FfnetError {
    constructor(message: string, options?: FfnetErrorOptions) {
      super(code, message, options);
    }
    override get name(): string {
      return name;
    }
  };
  Object.defineProperty(C, 'name', { value: name });
  byCode.set(code, C);
  return C;
}

export const TimeoutError = define('TimeoutError', StatusCode.Timeout);
export type TimeoutError = FfnetError;
export const InvalidAddrError = define('InvalidAddrError', StatusCode.InvalidAddr);
export type InvalidAddrError = FfnetError;
export const SendFailedError = define('SendFailedError', StatusCode.SendFailed);
export type SendFailedError = FfnetError;
export const InvalidServiceIDError = define('InvalidServiceIDError', StatusCode.InvalidServiceID);
export type InvalidServiceIDError = FfnetError;
export const InvalidMethodIDError = define('InvalidMethodIDError', StatusCode.InvalidMethodID);
export type InvalidMethodIDError = FfnetError;
export const SocketError = define('SocketError', StatusCode.SocketError);
export type SocketError = FfnetError;
export const ListenFailedError = define('ListenFailedError', StatusCode.ListenFailed);
export type ListenFailedError = FfnetError;
export const RequestRefusedError = define('RequestRefusedError', StatusCode.RequestRefused);
export type RequestRefusedError = FfnetError;
export const SocketClosedError = define('SocketClosedError', StatusCode.SocketClosed);
export type SocketClosedError = FfnetError;
export const ConnectFailedError = define('ConnectFailedError', StatusCode.ConnectFailed);
export type ConnectFailedError = FfnetError;
export const InvalidServiceNameError = define('InvalidServiceNameError', StatusCode.InvalidServiceName);
export type InvalidServiceNameError = FfnetError;
export const InvalidMessageTypeError = define('InvalidMessageTypeError', StatusCode.InvalidMessageType);
export type InvalidMessageTypeError = FfnetError;
export const VerifyRequestFailedError = define('VerifyRequestFailedError', StatusCode.VerifyRequestFailed);
export type VerifyRequestFailedError = FfnetError;
export const VerifyResponseFailedError = define('VerifyResponseFailedError', StatusCode.VerifyResponseFailed);
export type VerifyResponseFailedError = FfnetError;
export const DataCorruptionError = define('DataCorruptionError', StatusCode.DataCorruption);
export type DataCorruptionError = FfnetError;
export const InvalidFormatError = define('InvalidFormatError', StatusCode.InvalidFormat);
export type InvalidFormatError = FfnetError;
export const InvalidArgError = define('InvalidArgError', StatusCode.InvalidArg);
export type InvalidArgError = FfnetError;
export const InvalidConfigError = define('InvalidConfigError', StatusCode.InvalidConfig);
export type InvalidConfigError = FfnetError;
export const NotImplementedError = define('NotImplementedError', StatusCode.NotImplemented);
export type NotImplementedError = FfnetError;
export const UnknownError = define('UnknownError', StatusCode.Unknown);
export type UnknownError = FfnetError;
export const IBInitFailedError = define('IBInitFailedError', StatusCode.IBInitFailed);
export type IBInitFailedError = FfnetError;
export const IBDeviceNotFoundError = define('IBDeviceNotFoundError', StatusCode.IBDeviceNotFound);
export type IBDeviceNotFoundError = FfnetError;
export const IBDeviceNotInitializedError = define('IBDeviceNotInitializedError', StatusCode.IBDeviceNotInitialized);
export type IBDeviceNotInitializedError = FfnetError;
export const IBOpenPortFailedError = define('IBOpenPortFailedError', StatusCode.IBOpenPortFailed);
export type IBOpenPortFailedError = FfnetError;
export const RDMAPostFailedError = define('RDMAPostFailedError', StatusCode.RDMAPostFailed);
export type RDMAPostFailedError = FfnetError;
export const RDMAError = define('RDMAError', StatusCode.RDMAError);
export type RDMAError = FfnetError;
export const RDMANoBufError = define('RDMANoBufError', StatusCode.RDMANoBuf);
export type RDMANoBufError = FfnetError;
export const CancelledError = define('CancelledError', StatusCode.Cancelled);
export type CancelledError = FfnetError;
export const ResourceExhaustedError = define('ResourceExhaustedError', StatusCode.ResourceExhausted);
export type ResourceExhaustedError = FfnetError;
export const PermissionDeniedError = define('PermissionDeniedError', StatusCode.PermissionDenied);
export type PermissionDeniedError = FfnetError;
export const MessageTooLargeError = define('MessageTooLargeError', StatusCode.MessageTooLarge);
export type MessageTooLargeError = FfnetError;
export const UnauthenticatedError = define('UnauthenticatedError', StatusCode.Unauthenticated);
export type UnauthenticatedError = FfnetError;
export const EpollAddError = define('EpollAddError', StatusCode.EpollAddError);
export type EpollAddError = FfnetError;

/**
 * The typed error for a code: used to rebuild a remote `{code, message}` as the class a local failure
 * with the same code would have had. Codes without a class of their own give a plain FfnetError.
 */
export function errorFromCode(code: number, message: string, options?: FfnetErrorOptions): FfnetError {
  const C = byCode.get(code);
  return C ? new C(message, options) : new FfnetError(code, message, options);
}
