// zeromq.js (the `zeromq` package, v6, libzmq through its prebuilt addon): the message library people reach
// for instead of an RPC framework. DEALER client, ROUTER server, one connection: a DEALER keeps any number of
// requests in flight (REQ/REP would allow one), and the ROUTER answers each on the connection it came from.
// A call is a two-frame message [slot id (4 bytes LE), payload]; the reply carries the id back, so replies
// may come in any order, as in the other peers. Defaults otherwise, except what a run needs: linger 0
// (closing drops nothing the run counts) and the ROUTER in `mandatory` mode, so that a full pipe makes it
// wait instead of silently dropping a reply.
import { Dealer, Router } from 'zeromq';
import type { RpcWorkload } from '../workloads.js';
import { payload, responder } from '../workloads.js';
import type { DoneFn, Endpoint, Peer, PeerClient, PeerServer } from './types.js';
import { sizeError } from './types.js';

export function zmqAddress(ep: Endpoint): string {
  if (ep.transport === 'unix') return `ipc://${ep.path}`;
  if (ep.transport === 'tcp') return `tcp://${ep.host}:${ep.port === 0 ? '*' : ep.port}`;
  throw new Error(`zeromq: no ${ep.transport} transport (tcp and unix only)`);
}

async function serveLoop(router: Router, respond: (req: Buffer) => Buffer): Promise<void> {
  try {
    for await (const msg of router) {
      const [peerId, id, body] = msg;
      // A malformed message is skipped: a run whose client never gets its reply fails on its own.
      if (peerId === undefined || id === undefined || body === undefined) continue;
      await router.send([peerId, id, respond(body)]);
    }
  } catch (err) {
    // Closing the socket rejects its pending receive: the end of the loop, not an error.
    if (!router.closed) console.error(`zeromq server: ${String(err)}`);
  }
}

class Client implements PeerClient {
  private readonly req: Buffer;
  /** One id frame per slot, made once. */
  private readonly ids: Buffer[] = [];
  /**
   * Calls waiting to be queued: zeromq.js allows one pending send per socket (a second one fails with EBUSY
   * while the first waits on the high-water mark), so calls are queued here and sent in order.
   */
  private readonly queue: number[] = [];
  private sending = false;

  constructor(
    private readonly sock: Dealer,
    private readonly w: RpcWorkload,
    private readonly done: DoneFn,
  ) {
    this.req = payload(w.reqSize);
    for (let slot = 0; slot < w.inflight; slot++) {
      const id = Buffer.allocUnsafe(4);
      id.writeUInt32LE(slot, 0);
      this.ids.push(id);
    }
    void this.receiveLoop();
  }

  call(slot: number): void {
    this.queue.push(slot);
    if (!this.sending) void this.pump();
  }

  close(): Promise<void> {
    this.sock.close();
    return Promise.resolve();
  }

  private async pump(): Promise<void> {
    this.sending = true;
    try {
      for (let slot = this.queue.shift(); slot !== undefined; slot = this.queue.shift()) {
        await this.sock.send([this.ids[slot]!, this.req]);
      }
    } catch (err) {
      if (!this.sock.closed) this.done(-1, err as Error);
    }
    this.sending = false;
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const msg of this.sock) {
        const [id, body] = msg;
        if (id === undefined || id.length !== 4 || body === undefined) {
          this.done(-1, new Error(`zeromq: malformed reply of ${msg.length} frames`));
          return;
        }
        this.done(id.readUInt32LE(0), body.length === this.w.rspSize ? undefined : sizeError('zeromq', body.length, this.w.rspSize));
      }
    } catch (err) {
      if (!this.sock.closed) this.done(-1, err as Error);
    }
  }
}

export const peer: Peer = {
  name: 'zeromq',

  async serve(listen: Endpoint, w: RpcWorkload): Promise<PeerServer> {
    const router = new Router({ linger: 0, mandatory: true });
    await router.bind(zmqAddress(listen));
    let endpoint = listen;
    if (listen.transport === 'tcp') {
      const port = Number(/:(\d+)$/.exec(router.lastEndpoint ?? '')?.[1]);
      if (!Number.isInteger(port) || port <= 0) throw new Error(`zeromq: cannot read the bound port from '${router.lastEndpoint}'`);
      endpoint = { ...listen, port };
    }
    const loop = serveLoop(router, responder(w));
    return {
      endpoint,
      close: async () => {
        router.close();
        await loop;
      },
    };
  },

  async connect(endpoint: Endpoint, w: RpcWorkload, done: DoneFn): Promise<PeerClient> {
    const sock = new Dealer({ linger: 0 });
    sock.connect(zmqAddress(endpoint));
    return new Client(sock, w, done);
  },
};
