/**
 * 3FS's numeric status codes (StatusCodeDetails.h). They travel on the wire in error responses, so the
 * numbers are part of the protocol and never change.
 */
export const StatusCode = {
  OK: 0,
  NotImplemented: 1,
  DataCorruption: 2,
  InvalidArg: 3,
  InvalidConfig: 4,
  NotEnoughMemory: 26,
  InvalidFormat: 33,
  SerdeInsufficientLength: 40,
  SerdeVariantIndexExceeded: 42,
  SerdeUnknownEnumValue: 43,
  SerdeNotContainer: 44,
  IOError: 69,
  OSError: 72,
  FoundBug: 998,
  Unknown: 999,
  InvalidMessageType: 2000,
  RequestIsEmpty: 2001,
  VerifyRequestFailed: 2002,
  VerifyResponseFailed: 2003,
  Timeout: 2005,
  InvalidAddr: 2006,
  SendFailed: 2007,
  InvalidServiceID: 2008,
  InvalidMethodID: 2009,
  SocketError: 2010,
  ListenFailed: 2011,
  RequestRefused: 2012,
  SocketClosed: 2013,
  ConnectFailed: 2014,
  IBInitFailed: 2015,
  IBDeviceNotFound: 2016,
  RDMAPostFailed: 2017,
  RDMAError: 2018,
  RDMANoBuf: 2019,
  InvalidServiceName: 2020,
  IBDeviceNotInitialized: 2021,
  EpollInitError: 2022,
  EpollAddError: 2023,
  EpollDelError: 2024,
  EpollWakeUpError: 2025,
  EpollWaitError: 2026,
  IBOpenPortFailed: 2027,
  // ffnet's own codes start at 2100, clear of 3FS's RPC range, so a future 3FS code never collides.
  /** The caller aborted the call through its AbortSignal. */
  Cancelled: 2100,
  /** A configured cap was reached (queued output, receive budget, handshakes, pinned memory); the peer is refused. */
  ResourceExhausted: 2101,
  /** The caller has no right to this call (e.g. an admin method from a remote peer), whatever it sends. */
  PermissionDenied: 2102,
  /** A message is at or above the size limit; it was refused before any of it was sent. */
  MessageTooLarge: 2103,
  /** The caller did not prove who it is. */
  Unauthenticated: 2104,
} as const;

export type StatusCodeName = keyof typeof StatusCode;
export type StatusCodeValue = (typeof StatusCode)[StatusCodeName];

const names = new Map<number, string>(Object.entries(StatusCode).map(([k, v]) => [v, k]));

/** The symbolic name of a code, or `Code<n>` for one this version does not know. */
export function statusName(code: number): string {
  return names.get(code) ?? `Code${code}`;
}
