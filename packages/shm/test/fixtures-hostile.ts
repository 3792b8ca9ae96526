// Raw clients for the hostile-peer cases: they speak the hello by hand, with segments made (or misconfigured) here.

import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';
import { HELLO_BYTES, HELLO_MAGIC, HELLO_VERSION } from '../src/backend.js';
import { closeFd, MFD_ALLOW_SEALING, MFD_CLOEXEC, REQUIRED_SEALS, sendWithFds } from '../src/native.js';

const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
const libc = koffi.load('libc.so.6');
const memfdCreate = libc.func('int memfd_create(const char *name, unsigned int flags)');
const ftruncate = libc.func('int ftruncate(int fd, int64_t length)');
const fcntl = libc.func('int fcntl(int fd, int cmd, ...)');

/** A memfd of `size` bytes with `seals` added (0: none). */
export function segment(size: number, seals: number = REQUIRED_SEALS): number {
  const fd = memfdCreate('ffnet-shm-test', MFD_CLOEXEC | MFD_ALLOW_SEALING) as number;
  if (fd < 0 || (ftruncate(fd, size) as number) !== 0) throw new Error('memfd');
  if (seals !== 0 && (fcntl(fd, 1033, 'int', seals) as number) !== 0) throw new Error('seal');
  return fd;
}

export function hello(c2s: number, s2c: number, magic = HELLO_MAGIC): Buffer {
  const b = Buffer.alloc(HELLO_BYTES);
  b.writeUInt32LE(magic, 0);
  b.writeUInt16LE(HELLO_VERSION, 4);
  b.writeUInt32LE(c2s, 8);
  b.writeUInt32LE(s2c, 12);
  return b;
}

export interface RawPeer {
  readonly sock: Socket;
  /** Everything the server sent, as it comes. */
  readonly got: Buffer[];
  readonly closed: Promise<void>;
  fd(): number;
}

export async function rawPeer(path: string): Promise<RawPeer> {
  const sock = connect({ path });
  sock.on('error', () => {});
  const got: Buffer[] = [];
  sock.on('data', (c: Buffer) => got.push(c));
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  await new Promise<void>((r, j) => {
    sock.once('connect', r);
    sock.once('error', j);
  });
  return { sock, got, closed, fd: () => (sock as unknown as { _handle: { fd: number } })._handle.fd };
}

/** Sends the hello with `fds` (then closes our copies of them). */
export function sendHello(p: RawPeer, data: Buffer, fds: number[]): void {
  sendWithFds(p.fd(), data, fds);
  for (const fd of fds) closeFd(fd);
}
