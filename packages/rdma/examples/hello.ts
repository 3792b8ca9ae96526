import { isRdmaCall, rdma } from '@ffnet/rdma';
import { defineService, method } from '@ffnet/serde';
import { Client, Server, implement } from '@ffnet/server';
import { tcp, unix } from '@ffnet/transport';

const Hello = defineService({ name: 'Hello', id: 500, methods: { hi: method<{ name: string }, { text: string; rdma: boolean }>(1) } });

const verbs = rdma();
const usable = verbs.available().ok; // false without an RDMA device: explains why in .reason
const backends = [tcp(), unix(), verbs];
const server = new Server({
  backends,
  groups: [
    { networkType: 'tcp', listener: { host: '127.0.0.1', port: 0 } },
    ...(usable ? [{ networkType: 'rdma' as const, listener: { host: '0.0.0.0', port: 0 } }] : []),
  ],
});
server.addService(
  implement(Hello, {
    // Over rdma:// a handler could RDMA-write into a buffer the caller described (writeTransmission(ctx)); over
    // tcp:// the data travels inline. isRdmaCall(ctx) tells which.
    hi: (ctx, req) => ({ text: `hello ${req.name}`, rdma: isRdmaCall(ctx) }),
  }),
);
await server.start();

const client = new Client({ backends });
for (const address of server.addresses) {
  console.log(address, await client.stub(Hello, address).hi({ name: 'ffnet' }));
}
await client.stop();
await server.stop();
