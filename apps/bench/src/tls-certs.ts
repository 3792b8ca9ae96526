// Certificates for the tls rows, made with the openssl CLI when a run first needs them, in a private temp dir that
// is removed when the harness exits: nothing is committed, and every peer uses the same key type (ECDSA P-256)
// and the same CA.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** How the harness tells its children where the certificates are. */
export const TLS_DIR_ENV = 'FFNET_BENCH_TLS_DIR';

/** The server's certificate names both, so clients can check it against the address they dial. */
export const TLS_SERVER_NAME = 'localhost';
const SAN = 'DNS:localhost,IP:127.0.0.1';

export interface TlsMaterial {
  /** The CA's certificate, which every client trusts (and nothing else). */
  ca: Buffer;
  /** The server's certificate and key. */
  cert: Buffer;
  key: Buffer;
}

function openssl(dir: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`bench: openssl ${args[0]} failed${stderr ? `: ${stderr}` : ''} (tls rows need the openssl CLI: tools/setup-system.sh)`, {
      cause: err,
    });
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A CA and a server certificate signed by it, valid for two days, in a new directory only this user can read. */
export function makeTlsDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ffnet-bench-tls-'));
  try {
    openssl(dir, [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=ffnet-bench-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    ]);
    openssl(dir, ['req', ...EC, '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${TLS_SERVER_NAME}`]);
    writeFileSync(
      join(dir, 'server.ext'),
      `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${SAN}\n`,
    );
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-sha256',
      '-extfile',
      'server.ext',
      '-out',
      'server.pem',
    ]);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return dir;
}

/** The certificates a child was given by the harness (TLS_DIR_ENV). */
export function readTlsMaterial(dir: string | undefined = process.env[TLS_DIR_ENV]): TlsMaterial {
  if (dir === undefined || dir === '') throw new Error(`bench: tls needs certificates: ${TLS_DIR_ENV} is not set (the harness sets it)`);
  return {
    ca: readFileSync(join(dir, 'ca.pem')),
    cert: readFileSync(join(dir, 'server.pem')),
    key: readFileSync(join(dir, 'server.key')),
  };
}
