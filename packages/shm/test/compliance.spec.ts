// The transport compliance suite, unchanged, over shm(): a small ring and threshold so that the suite's large
// frames cross the ring, wrap it and fall back inline when it is full, as well as the default configuration.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Address, shmAddress } from '@ffnet/transport';
import { describe } from 'vitest';
import { type ComplianceSetup, transportCompliance } from '../../transport/test/compliance.js';
import { shm } from '../src/index.js';

function setup(): ComplianceSetup {
  let dir: string | undefined;
  let n = 0;
  return {
    address(): Address {
      dir ??= mkdtempSync(join(tmpdir(), 'ffnet-shm-'));
      return shmAddress(join(dir, `s${n++}.sock`));
    },
    cleanup(): void {
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe.each([
  { name: 'default', backend: shm() },
  { name: 'small ring', backend: shm({ ringBytes: 64 * 1024, thresholdBytes: 1024 }) },
])('shm $name', ({ backend }) => {
  transportCompliance(backend, setup());
});
