// Segments are released when connections end, and when the peer process dies without closing anything: the
// kernel drops the dead process's fds and mappings, our side sees the socket close and unmaps its own.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BackendSocket, shmAddress, Transport } from '@ffnet/transport';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from '../../transport/test/compliance.js';
import { shm } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'ffnet-shm-r-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Mappings of shm segments in this process (memfd names show in /proc/self/maps). */
function shmMappings(): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes('memfd:ffnet-shm')).length;
}
const fds = () => readdirSync('/proc/self/fd').length;

describe('releasing segments', () => {
  it('connections unmap both rings on close, on both sides, and keep no fds', async () => {
    const backend = shm();
    const accepted: { sock: BackendSocket; closed: boolean }[] = [];
    const l = await backend.listen(shmAddress(join(dir, 'a.sock')), {}, (sock) => {
      const a = { sock, closed: false };
      sock.setHandlers({
        data() {},
        drain() {},
        written() {},
        close: () => {
          a.closed = true;
        },
      });
      accepted.push(a);
    });
    const mapsBefore = shmMappings();
    const fdsBefore = fds();
    const socks: BackendSocket[] = [];
    for (let i = 0; i < 5; i++) {
      const s = await backend.connect(l.address);
      s.setHandlers({ data() {}, drain() {}, written() {}, close() {} });
      socks.push(s);
    }
    await until(() => accepted.length === 5, 'accepts');
    // Two rings per connection, mapped once by each side; the segments' fds were closed after mapping.
    expect(shmMappings() - mapsBefore).toBe(5 * 2 * 2);
    expect(fds() - fdsBefore).toBeLessThanOrEqual(5 * 2 + 2);
    for (const s of socks) s.end();
    await until(() => accepted.every((a) => a.closed), 'server sides to close');
    await until(() => shmMappings() === mapsBefore, 'mappings to go');
    await l.close();
  });

  it('a killed client process releases its segments: the server unmaps them when its socket closes', async () => {
    const backend = shm();
    const frames: number[] = [];
    let closed = false;
    const l2 = await backend.listen(shmAddress(join(dir, 'k2.sock')), {}, (sock) => {
      Transport.adopt(sock, {
        onFrame: (_t, body) => void frames.push(body.length),
        onClose: () => {
          closed = true;
        },
      });
    });
    const before = shmMappings();
    const child = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/client.mjs', import.meta.url)), `shm://${join(dir, 'k2.sock')}`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    await until(() => out.includes('sent') && frames.length === 1, 'the child to connect and send');
    expect(frames[0]).toBe(1024 * 1024);
    expect(shmMappings() - before).toBe(2);
    child.kill('SIGKILL');
    await until(() => closed, 'the server side to see the close');
    await until(() => shmMappings() === before, 'the mappings to go');
    await l2.close();
  });
});
