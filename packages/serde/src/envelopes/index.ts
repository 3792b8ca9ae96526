// The envelope seam: how a MessagePacket becomes a frame body and back. Two exist, chosen per service group and per
// client: `ffnet` (msgpack, the default; README "Wire format") and `3fs` (3FS's own MessagePacket in 3FS binary).
// The frame around the body (checksum word, size, zstd bit) is the same for both.

import { type DecodeOptions, decodeMessage, type EncodeOptions, encodeMessageParts, type FrameParts, type MessagePacket } from '../envelope.js';
import { InvalidConfigError } from '../errors.js';
import type { Schema } from '../schema/index.js';
import { decodeMessage3fs, encodeMessage3fs } from './threefs.js';

export type EnvelopeName = 'ffnet' | '3fs';

/** A method's schemas as defineService keeps them on MethodInfo (undefined when it was defined without). */
export interface PayloadSchemas {
  readonly request?: Schema | undefined;
  readonly response?: Schema | undefined;
}

export const ENVELOPE_NAMES: readonly EnvelopeName[] = Object.freeze(['ffnet', '3fs']);

export interface Envelope {
  readonly name: EnvelopeName;
  /**
   * Whether `decode` leaves the payload as bytes for the method's schema (3fs: a request is decoded once its
   * method is known, a response as `Result<Rsp>` by the call that waits for it). ffnet decodes payloads itself.
   */
  readonly schemaPayloads: boolean;
  /**
   * A packet as a frame. `schema`: the method's request schema for a request, its response schema for a response
   * (ffnet ignores it; 3fs needs it except for an error response).
   */
  encode(pkt: MessagePacket, schema: Schema | undefined, opts?: EncodeOptions): FrameParts;
  decode(body: Buffer, compressed: boolean, opts?: DecodeOptions): MessagePacket;
}

export const ffnetEnvelope: Envelope = Object.freeze({
  name: 'ffnet' as const,
  schemaPayloads: false,
  encode: (pkt: MessagePacket, _schema: Schema | undefined, opts?: EncodeOptions) => encodeMessageParts(pkt, opts),
  decode: decodeMessage,
});

export const threefsEnvelope: Envelope = Object.freeze({
  name: '3fs' as const,
  schemaPayloads: true,
  encode: encodeMessage3fs,
  decode: decodeMessage3fs,
});

/** The envelope called `name` (default ffnet); anything else is an InvalidConfigError naming `where`. */
export function envelopeNamed(name: unknown, where = 'envelope'): Envelope {
  if (name === undefined || name === 'ffnet') return ffnetEnvelope;
  if (name === '3fs') return threefsEnvelope;
  throw new InvalidConfigError(`${where} must be 'ffnet' or '3fs', got ${JSON.stringify(name)}`);
}

export { decodeMessage3fs, decodeRequest3fs, decodeResult3fs, ECHO_SIZE, encodeMessage3fs, type HeaderSchemas3fs } from './threefs.js';
