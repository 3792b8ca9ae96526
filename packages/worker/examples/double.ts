import { type FfnetError, type MessagePacket, MessageFlags, encodeMessage } from '@ffnet/serde';
import { formatAddress, tcp, tcpAddress } from '@ffnet/transport';
import { IOWorker, type MethodBinding, PendingCall, Processor, type ServiceLookup, Waiter } from '@ffnet/worker';

// Server side: service 1, method 1 doubles a number.
const double: MethodBinding = { name: 'Math.double', handler: (_ctx, n: number) => n * 2, calls: 0, errors: 0 };
const lookup: ServiceLookup = {
  service: (id) => (id === 1 ? { id: 1, name: 'Math', method: (m) => (m === 1 ? double : undefined) } : undefined),
};
const serverIO = new IOWorker({ processor: new Processor({ lookup }) });
serverIO.start();
const listener = await tcp().listen(tcpAddress('127.0.0.1', 0), {}, (socket) => serverIO.adopt(socket));

// Client side: a Waiter matches responses to calls; a PendingCall says what its outcome means.
class Call extends PendingCall {
  constructor(
    readonly resolve: (pkt: MessagePacket) => void,
    readonly reject: (err: FfnetError) => void,
  ) {
    super('Math.double');
  }
  onResponse(pkt: MessagePacket): void {
    this.resolve(pkt);
  }
  onError(err: FfnetError): void {
    this.reject(err);
  }
}
const waiter = new Waiter();
const clientIO = new IOWorker({ processor: new Processor({ waiter }) });
clientIO.start();

const response = await new Promise<MessagePacket>((resolve, reject) => {
  const call = new Call(resolve, reject);
  const uuid = waiter.register(call, 1000);
  const frame = encodeMessage({ uuid, serviceId: 1, methodId: 1, flags: MessageFlags.IsReq, version: 0, timeoutMs: 1000, payload: 21 });
  clientIO.sendAsync(formatAddress(listener.address), frame, call);
});
console.log(response.payload); // { ok: true, value: 42 }

await clientIO.stop();
await listener.close();
await serverIO.stop();
