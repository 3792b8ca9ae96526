import { defineService, method } from '@ffnet/serde';
import { Client, Server, implement } from '@ffnet/server';

const Greeter = defineService({
  name: 'Greeter',
  id: 1,
  methods: { greet: method<{ name: string }, { text: string }>(1) },
});

const server = new Server({ groups: [{ networkType: 'tcp', listener: { host: '127.0.0.1' } }] });
server.addService(
  implement(Greeter, {
    greet: async (ctx, req) => ({ text: `hello ${req.name}, you are ${ctx.peer}` }),
  }),
);
await server.start();

const client = new Client();
const greeter = client.stub(Greeter, server.addresses[0]!);
console.log(await greeter.greet({ name: 'ffnet' }, { timeoutMs: 500 }));

await client.stop();
await server.stop();
