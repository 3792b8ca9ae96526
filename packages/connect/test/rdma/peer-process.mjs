// An IBConnect server in its own process, so a test can kill it outright (SIGKILL: the kernel destroys its QP
// without any CLOSE) and see how the other end notices. Requests arrive over the IPC channel (advanced
// serialization keeps the GID bytes binary); built code is used, as `pnpm test:rdma` builds before running.
import { IBManager } from '@ffnet/device';
import { IBConnectServer } from '../../dist/index.js';

IBManager.start({ portRefreshMs: 0 });
const server = new IBConnectServer({
  onSocket: (s) => s.setHandlers({ data() {}, close() {} }),
});
process.on('message', (m) => {
  try {
    const value = m.method === 'query' ? server.query() : server.connect(m.req, { peer: 'parent process' });
    process.send({ id: m.id, ok: true, value });
  } catch (e) {
    process.send({ id: m.id, ok: false, code: e.code ?? 999, message: e.message });
  }
});
process.send({ ready: true });
