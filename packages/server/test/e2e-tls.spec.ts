import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tls } from '@ffnet/transport';
import { afterAll, beforeAll, describe } from 'vitest';
import { TestPki } from '../../transport/test/fixtures/certs.js';
import { e2eSuite } from './e2e-suite.js';

// The whole e2e suite over tls:// (server authenticated) and over mTLS. One backend serves and dials, so the
// suite's Server and Client share it; the kill tests' child server reads the same files (FFNET_TLS_*).
const pki = new TestPki();
const ca = pki.ca('ffnet e2e CA');
const leaf = pki.leaf(ca, 'e2e', 'IP:127.0.0.1,DNS:localhost');
for (const [f, v] of Object.entries({ 'e2e.key': leaf.key, 'e2e.pem': leaf.cert, 'ca.pem': ca.cert })) writeFileSync(join(pki.dir, f), v);
process.env.FFNET_TLS_KEY = join(pki.dir, 'e2e.key');
process.env.FFNET_TLS_CERT = join(pki.dir, 'e2e.pem');
process.env.FFNET_TLS_CA = join(pki.dir, 'ca.pem');
afterAll(() => pki.cleanup());

describe('tls', () => {
  beforeAll(() => {
    process.env.FFNET_TLS_MTLS = '0';
  });
  e2eSuite('tls', { backends: [tls({ ...leaf, ca: ca.cert })] });
});

describe('mTLS', () => {
  beforeAll(() => {
    process.env.FFNET_TLS_MTLS = '1';
  });
  e2eSuite('tls', { backends: [tls({ ...leaf, ca: ca.cert, requireClientCert: true })] });
});
