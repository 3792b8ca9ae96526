import { FfnetError, type FfnetErrorOptions, StatusCode } from '@ffnet/common';

/**
 * 3FS's kSerdeInsufficientLength (40): the input ends before a value, a length prefix or a count it announces.
 * Kept as 3FS's own code so a peer sees the same status 3FS would give.
 */
export class SerdeInsufficientLengthError extends FfnetError {
  declare readonly code: typeof StatusCode.SerdeInsufficientLength;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.SerdeInsufficientLength, message, options);
  }
  override get name(): 'SerdeInsufficientLengthError' {
    return 'SerdeInsufficientLengthError';
  }
}

/** 3FS's kSerdeVariantIndexExceeded (42): a variant tag none of the alternatives has. */
export class SerdeVariantIndexExceededError extends FfnetError {
  declare readonly code: typeof StatusCode.SerdeVariantIndexExceeded;
  constructor(message: string, options?: FfnetErrorOptions) {
    super(StatusCode.SerdeVariantIndexExceeded, message, options);
  }
  override get name(): 'SerdeVariantIndexExceededError' {
    return 'SerdeVariantIndexExceededError';
  }
}
