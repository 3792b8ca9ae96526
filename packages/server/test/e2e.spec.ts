import { describe } from 'vitest';
import { e2eSuite } from './e2e-suite.js';
import type { Kind } from './helpers.js';

describe.each(['tcp', 'unix'] as Kind[])('%s', (kind) => {
  e2eSuite(kind);
});
