import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'vitest';
import { type Address, tcp, tcpAddress, tls, tlsAddress, unix, unixAddress } from '../src/index.js';
import { type ComplianceSetup, transportCompliance } from './compliance.js';
import { TestPki } from './fixtures/certs.js';

function setupFor(scheme: string): ComplianceSetup {
  if (scheme === 'tcp') return { address: (): Address => tcpAddress('127.0.0.1', 0) };
  if (scheme === 'tls') return { address: (): Address => tlsAddress('127.0.0.1', 0), cleanup: () => pki.cleanup() };
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

// One backend both serves and dials, so its certificate is also its client certificate (mTLS on every case).
const pki = new TestPki();
const ca = pki.ca('ffnet compliance CA');
const leaf = pki.leaf(ca, 'compliance', 'IP:127.0.0.1,DNS:localhost');

describe.each([tcp(), unix(), tls({ ...leaf, ca: ca.cert, requireClientCert: true })])('$scheme', (backend) => {
  transportCompliance(backend, setupFor(backend.scheme));
});
