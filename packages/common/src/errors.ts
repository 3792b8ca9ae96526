import { StatusCode, statusName } from './status.js';

/**
 * Marks every ffnet error, on FfnetError.prototype. `Symbol.for` gives the same symbol to every copy of this
 * package in a process (and to older copies, which set it on each instance), so a check on it works when an
 * application ends up with two installs.
 */
const BRAND: unique symbol = Symbol.for('ffnet.error') as never;
/** Set (own, static) on FfnetError and each built-in subclass: what `instanceof` matches by brand and code. */
const CLASS_CODE: unique symbol = Symbol.for('ffnet.error.classCode') as never;

export interface FfnetErrorOptions {
  cause?: unknown;
  /** The remote end this error concerns, as an address string (`tcp://10.0.0.1:8000`). */
  peer?: string;
}

const ordinaryHasInstance = Function.prototype[Symbol.hasInstance];

function branded(v: unknown): v is FfnetError {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[BRAND] === true && typeof (v as { code?: unknown }).code === 'number';
}

function matches(C: object, v: unknown): boolean {
  if (ordinaryHasInstance.call(C, v)) return true;
  // Only ffnet's own classes match by brand: a subclass an application writes has no own CLASS_CODE.
  if (!Object.hasOwn(C, CLASS_CODE) || !branded(v)) return false;
  const code = (C as Record<symbol, number | null>)[CLASS_CODE];
  return code === null || v.code === code;
}

/**
 * Base of every error ffnet throws. `code` is one of 3FS's stable numeric status codes, so callers can
 * switch on it, and remote errors keep it across the wire.
 *
 * `instanceof` works across duplicate installs: `x instanceof FfnetError` holds for any branded error, and
 * `x instanceof TimeoutError` for a branded error whose code is 2005, whichever copy made it. A class an
 * application derives keeps plain prototype `instanceof`, so it never claims errors it did not create.
 */
export class FfnetError extends Error {
  static readonly [CLASS_CODE]: number | null = null;

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
  }
  override get name(): string {
    return 'FfnetError';
  }
  /** `"SocketClosed"` for 2013, and so on. */
  get codeName(): string {
    return statusName(this.code);
  }
  static is(e: unknown): e is FfnetError {
    return branded(e);
  }
  static override [Symbol.hasInstance]<T>(this: abstract new (...args: never[]) => T, v: unknown): v is T {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class right of `instanceof` (any subclass), not FfnetError.
    return matches(this, v);
  }
  toJSON(): { name: string; code: number; message: string; peer?: string } {
    return { name: this.name, code: this.code, message: this.message, ...(this.peer ? { peer: this.peer } : {}) };
  }
}
Object.defineProperty(FfnetError.prototype, BRAND, { value: true });

type Ctor = new (message: string, options?: FfnetErrorOptions) => FfnetError;
const byCode = new Map<number, Ctor>();

function register(C: Ctor & { readonly [CLASS_CODE]: number | null }, code: number): void {
  Object.defineProperty(C, CLASS_CODE, { value: code });
  byCode.set(code, C);
}

// Each class declares its code as a literal type, so the classes differ structurally: `instanceof` narrows
// to the one class, and the `else` branch keeps the others.

export class TimeoutError extends FfnetError {
  declare readonly code: typeof StatusCode.Timeout;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.Timeout, message, options);
  }
  override get name(): 'TimeoutError' {
    return 'TimeoutError';
  }
}
register(TimeoutError, StatusCode.Timeout);

export class InvalidAddrError extends FfnetError {
  declare readonly code: typeof StatusCode.InvalidAddr;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.InvalidAddr, message, options);
  }
  override get name(): 'InvalidAddrError' {
    return 'InvalidAddrError';
  }
}
register(InvalidAddrError, StatusCode.InvalidAddr);

export class SendFailedError extends FfnetError {
  declare readonly code: typeof StatusCode.SendFailed;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.SendFailed, message, options);
  }
  override get name(): 'SendFailedError' {
    return 'SendFailedError';
  }
}
register(SendFailedError, StatusCode.SendFailed);

export class InvalidServiceIDError extends FfnetError {
  declare readonly code: typeof StatusCode.InvalidServiceID;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.InvalidServiceID, message, options);
  }
  override get name(): 'InvalidServiceIDError' {
    return 'InvalidServiceIDError';
  }
}
register(InvalidServiceIDError, StatusCode.InvalidServiceID);

export class InvalidMethodIDError extends FfnetError {
  declare readonly code: typeof StatusCode.InvalidMethodID;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.InvalidMethodID, message, options);
  }
  override get name(): 'InvalidMethodIDError' {
    return 'InvalidMethodIDError';
  }
}
register(InvalidMethodIDError, StatusCode.InvalidMethodID);

export class SocketError extends FfnetError {
  declare readonly code: typeof StatusCode.SocketError;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.SocketError, message, options);
  }
  override get name(): 'SocketError' {
    return 'SocketError';
  }
}
register(SocketError, StatusCode.SocketError);

export class ListenFailedError extends FfnetError {
  declare readonly code: typeof StatusCode.ListenFailed;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.ListenFailed, message, options);
  }
  override get name(): 'ListenFailedError' {
    return 'ListenFailedError';
  }
}
register(ListenFailedError, StatusCode.ListenFailed);

export class RequestRefusedError extends FfnetError {
  declare readonly code: typeof StatusCode.RequestRefused;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.RequestRefused, message, options);
  }
  override get name(): 'RequestRefusedError' {
    return 'RequestRefusedError';
  }
}
register(RequestRefusedError, StatusCode.RequestRefused);

export class SocketClosedError extends FfnetError {
  declare readonly code: typeof StatusCode.SocketClosed;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.SocketClosed, message, options);
  }
  override get name(): 'SocketClosedError' {
    return 'SocketClosedError';
  }
}
register(SocketClosedError, StatusCode.SocketClosed);

export class ConnectFailedError extends FfnetError {
  declare readonly code: typeof StatusCode.ConnectFailed;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.ConnectFailed, message, options);
  }
  override get name(): 'ConnectFailedError' {
    return 'ConnectFailedError';
  }
}
register(ConnectFailedError, StatusCode.ConnectFailed);

export class InvalidServiceNameError extends FfnetError {
  declare readonly code: typeof StatusCode.InvalidServiceName;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.InvalidServiceName, message, options);
  }
  override get name(): 'InvalidServiceNameError' {
    return 'InvalidServiceNameError';
  }
}
register(InvalidServiceNameError, StatusCode.InvalidServiceName);

export class InvalidMessageTypeError extends FfnetError {
  declare readonly code: typeof StatusCode.InvalidMessageType;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.InvalidMessageType, message, options);
  }
  override get name(): 'InvalidMessageTypeError' {
    return 'InvalidMessageTypeError';
  }
}
register(InvalidMessageTypeError, StatusCode.InvalidMessageType);

export class VerifyRequestFailedError extends FfnetError {
  declare readonly code: typeof StatusCode.VerifyRequestFailed;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.VerifyRequestFailed, message, options);
  }
  override get name(): 'VerifyRequestFailedError' {
    return 'VerifyRequestFailedError';
  }
}
register(VerifyRequestFailedError, StatusCode.VerifyRequestFailed);

export class VerifyResponseFailedError extends FfnetError {
  declare readonly code: typeof StatusCode.VerifyResponseFailed;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.VerifyResponseFailed, message, options);
  }
  override get name(): 'VerifyResponseFailedError' {
    return 'VerifyResponseFailedError';
  }
}
register(VerifyResponseFailedError, StatusCode.VerifyResponseFailed);

export class DataCorruptionError extends FfnetError {
  declare readonly code: typeof StatusCode.DataCorruption;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.DataCorruption, message, options);
  }
  override get name(): 'DataCorruptionError' {
    return 'DataCorruptionError';
  }
}
register(DataCorruptionError, StatusCode.DataCorruption);

export class InvalidFormatError extends FfnetError {
  declare readonly code: typeof StatusCode.InvalidFormat;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.InvalidFormat, message, options);
  }
  override get name(): 'InvalidFormatError' {
    return 'InvalidFormatError';
  }
}
register(InvalidFormatError, StatusCode.InvalidFormat);

export class InvalidArgError extends FfnetError {
  declare readonly code: typeof StatusCode.InvalidArg;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.InvalidArg, message, options);
  }
  override get name(): 'InvalidArgError' {
    return 'InvalidArgError';
  }
}
register(InvalidArgError, StatusCode.InvalidArg);

export class InvalidConfigError extends FfnetError {
  declare readonly code: typeof StatusCode.InvalidConfig;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.InvalidConfig, message, options);
  }
  override get name(): 'InvalidConfigError' {
    return 'InvalidConfigError';
  }
}
register(InvalidConfigError, StatusCode.InvalidConfig);

export class NotImplementedError extends FfnetError {
  declare readonly code: typeof StatusCode.NotImplemented;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.NotImplemented, message, options);
  }
  override get name(): 'NotImplementedError' {
    return 'NotImplementedError';
  }
}
register(NotImplementedError, StatusCode.NotImplemented);

export class UnknownError extends FfnetError {
  declare readonly code: typeof StatusCode.Unknown;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.Unknown, message, options);
  }
  override get name(): 'UnknownError' {
    return 'UnknownError';
  }
}
register(UnknownError, StatusCode.Unknown);

export class IBInitFailedError extends FfnetError {
  declare readonly code: typeof StatusCode.IBInitFailed;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.IBInitFailed, message, options);
  }
  override get name(): 'IBInitFailedError' {
    return 'IBInitFailedError';
  }
}
register(IBInitFailedError, StatusCode.IBInitFailed);

export class IBDeviceNotFoundError extends FfnetError {
  declare readonly code: typeof StatusCode.IBDeviceNotFound;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.IBDeviceNotFound, message, options);
  }
  override get name(): 'IBDeviceNotFoundError' {
    return 'IBDeviceNotFoundError';
  }
}
register(IBDeviceNotFoundError, StatusCode.IBDeviceNotFound);

export class IBDeviceNotInitializedError extends FfnetError {
  declare readonly code: typeof StatusCode.IBDeviceNotInitialized;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.IBDeviceNotInitialized, message, options);
  }
  override get name(): 'IBDeviceNotInitializedError' {
    return 'IBDeviceNotInitializedError';
  }
}
register(IBDeviceNotInitializedError, StatusCode.IBDeviceNotInitialized);

export class IBOpenPortFailedError extends FfnetError {
  declare readonly code: typeof StatusCode.IBOpenPortFailed;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.IBOpenPortFailed, message, options);
  }
  override get name(): 'IBOpenPortFailedError' {
    return 'IBOpenPortFailedError';
  }
}
register(IBOpenPortFailedError, StatusCode.IBOpenPortFailed);

export class RDMAPostFailedError extends FfnetError {
  declare readonly code: typeof StatusCode.RDMAPostFailed;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.RDMAPostFailed, message, options);
  }
  override get name(): 'RDMAPostFailedError' {
    return 'RDMAPostFailedError';
  }
}
register(RDMAPostFailedError, StatusCode.RDMAPostFailed);

export class RDMAError extends FfnetError {
  declare readonly code: typeof StatusCode.RDMAError;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.RDMAError, message, options);
  }
  override get name(): 'RDMAError' {
    return 'RDMAError';
  }
}
register(RDMAError, StatusCode.RDMAError);

export class RDMANoBufError extends FfnetError {
  declare readonly code: typeof StatusCode.RDMANoBuf;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.RDMANoBuf, message, options);
  }
  override get name(): 'RDMANoBufError' {
    return 'RDMANoBufError';
  }
}
register(RDMANoBufError, StatusCode.RDMANoBuf);

export class CancelledError extends FfnetError {
  declare readonly code: typeof StatusCode.Cancelled;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.Cancelled, message, options);
  }
  override get name(): 'CancelledError' {
    return 'CancelledError';
  }
}
register(CancelledError, StatusCode.Cancelled);

export class ResourceExhaustedError extends FfnetError {
  declare readonly code: typeof StatusCode.ResourceExhausted;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.ResourceExhausted, message, options);
  }
  override get name(): 'ResourceExhaustedError' {
    return 'ResourceExhaustedError';
  }
}
register(ResourceExhaustedError, StatusCode.ResourceExhausted);

export class PermissionDeniedError extends FfnetError {
  declare readonly code: typeof StatusCode.PermissionDenied;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.PermissionDenied, message, options);
  }
  override get name(): 'PermissionDeniedError' {
    return 'PermissionDeniedError';
  }
}
register(PermissionDeniedError, StatusCode.PermissionDenied);

export class MessageTooLargeError extends FfnetError {
  declare readonly code: typeof StatusCode.MessageTooLarge;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.MessageTooLarge, message, options);
  }
  override get name(): 'MessageTooLargeError' {
    return 'MessageTooLargeError';
  }
}
register(MessageTooLargeError, StatusCode.MessageTooLarge);

export class UnauthenticatedError extends FfnetError {
  declare readonly code: typeof StatusCode.Unauthenticated;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.Unauthenticated, message, options);
  }
  override get name(): 'UnauthenticatedError' {
    return 'UnauthenticatedError';
  }
}
register(UnauthenticatedError, StatusCode.Unauthenticated);

export class EpollAddError extends FfnetError {
  declare readonly code: typeof StatusCode.EpollAddError;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.EpollAddError, message, options);
  }
  override get name(): 'EpollAddError' {
    return 'EpollAddError';
  }
}
register(EpollAddError, StatusCode.EpollAddError);

/**
 * The typed error for a code: used to rebuild a remote `{code, message}` as the class a local failure
 * with the same code would have had. Codes without a class of their own give a plain FfnetError.
 */
export function errorFromCode(code: number, message: string, options?: FfnetErrorOptions): FfnetError {
  const C = byCode.get(code);
  return C ? new C(message, options) : new FfnetError(code, message, options);
}

/** Every code with a class of its own, and that class (for tests and tools). */
export function errorClasses(): ReadonlyMap<number, Ctor> {
  return byCode;
}
