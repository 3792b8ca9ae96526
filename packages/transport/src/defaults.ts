import type { Backend } from './backend.js';
import { tcp, unix } from './net-backend.js';

/**
 * What dials and listens when the caller passes no `backends`: tcp and unix. Frozen, so it cannot be configured
 * by replacing an entry; a caller who wants another list passes it.
 */
export const DEFAULT_BACKENDS: readonly Backend[] = Object.freeze([tcp(), unix()]);
