// CPU per 1 MiB frame, unix vs shm, in one process (both ends): `node bench/frames.mjs [rounds] [frames] [bytes]`
// (KINDS=shm for one kind only, e.g. under --cpu-prof or valgrind).
// Wall time is noise on a shared machine; process CPU (user + sys) per frame round trip is the figure.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFrame, SocketClosedError } from '@ffnet/serde';
import { shm } from '@ffnet/shm';
import { shmAddress, Transport, unix, unixAddress } from '@ffnet/transport';

const rounds = Number(process.argv[2] ?? 3);
const frames = Number(process.argv[3] ?? 400);
const size = Number(process.argv[4] ?? 1024 * 1024);
const inflight = 8;
const dir = mkdtempSync(join(tmpdir(), 'ffnet-shm-bench-'));
let seq = 0;

async function one(kind) {
  const backend = kind === 'shm' ? shm() : unix();
  const address = (kind === 'shm' ? shmAddress : unixAddress)(join(dir, `b${seq++}.sock`));
  const servers = [];
  const listener = await backend.listen(address, {}, (s) => {
    servers.push(Transport.adopt(s, { onFrame: (t, body, c) => t.send(encodeFrame(body, c)), onClose() {} }));
  });
  const body = Buffer.alloc(size, 7);
  let done = 0;
  let sent = 0;
  let finish;
  const finished = new Promise((r) => (finish = r));
  const t = Transport.connect(address, {
    onFrame() {
      done++;
      if (sent < frames) {
        sent++;
        t.send(encodeFrame(body));
      }
      if (done === frames) finish();
    },
    onClose() {},
  }, { backends: [backend] });
  await t.ready;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (; sent < inflight; sent++) t.send(encodeFrame(body));
  await finished;
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  t.invalidate(new SocketClosedError('done'));
  for (const s of servers) s.invalidate(new SocketClosedError('done'));
  await listener.close();
  return { kind, cpuUsPerFrame: (cpu.user + cpu.system) / frames, userUs: cpu.user / frames, sysUs: cpu.system / frames, mbps: (frames * size * 2) / (wall / 1000) / 1e6 };
}

const out = [];
for (let r = 0; r < rounds; r++) for (const k of (process.env.KINDS ?? 'unix,shm').split(',')) out.push(await one(k));
for (const o of out) console.log(`${o.kind.padEnd(5)} cpu/frame round trip ${o.cpuUsPerFrame.toFixed(0).padStart(6)} us (user ${o.userUs.toFixed(0)}, sys ${o.sysUs.toFixed(0)})  ${o.mbps.toFixed(0)} MB/s both ways`);
rmSync(dir, { recursive: true, force: true });
process.exit(0);
