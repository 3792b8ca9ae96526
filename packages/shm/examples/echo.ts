import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFrame, SocketClosedError } from '@ffnet/serde';
import { shm } from '@ffnet/shm';
import { shmAddress, Transport } from '@ffnet/transport';

const backend = shm(); // 64 KiB threshold, two 16 MiB rings per connection
const ok = backend.available();
if (!ok.ok) throw new Error(`no shared memory here: ${ok.reason}`);

const dir = mkdtempSync(join(tmpdir(), 'shm-example-')); // a private directory for the socket
const listener = await backend.listen(shmAddress(join(dir, 'echo.sock')), {}, (sock) => {
  Transport.adopt(sock, { onFrame: (t, body) => t.send(encodeFrame(body)), onClose() {} });
});

const body = Buffer.alloc(1024 * 1024, 0x5a); // large: crosses the rings, one memcpy on each side
const echoed = await new Promise<Buffer>((resolve, reject) => {
  const t = Transport.connect(listener.address, {
    onFrame: (_t, b) => {
      resolve(Buffer.from(b));
      t.invalidate(new SocketClosedError('done'));
    },
    onClose: (_t, e) => e && reject(e),
  }, { backends: [backend] });
  t.send(encodeFrame(body));
});
console.log(listener.address.path.endsWith('echo.sock'), echoed.equals(body));
await listener.close();
rmSync(dir, { recursive: true, force: true });
