export { decode3fs, encode3fs, encode3fsTransient } from './codec.js';
export { defaultOf, s } from './dsl.js';
export { SerdeInsufficientLengthError, SerdeVariantIndexExceededError } from './errors.js';
export { fromJson, type JsonValue, toJson } from './json.js';
export { fromMsgpack } from './msgpack.js';
export { type FromNeutralOptions, fromNeutral } from './neutral.js';
export type * from './types.js';
export { isValid, validate } from './validate.js';
