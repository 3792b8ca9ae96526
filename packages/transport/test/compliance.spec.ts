import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'vitest';
import { type Address, tcp, tcpAddress, unix, unixAddress } from '../src/index.js';
import { type ComplianceSetup, transportCompliance } from './compliance.js';

function setupFor(scheme: string): ComplianceSetup {
  if (scheme === 'tcp') return { address: (): Address => tcpAddress('127.0.0.1', 0) };
  let dir: string | undefined;
  let n = 0;
  return {
    address(): Address {
      dir ??= mkdtempSync(join(tmpdir(), 'ffnet-tr-'));
      return unixAddress(join(dir, `s${n++}.sock`));
    },
    cleanup(): void {
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe.each([tcp(), unix()])('$scheme', (backend) => {
  transportCompliance(backend, setupFor(backend.scheme));
});
