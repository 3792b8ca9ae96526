import { UnauthenticatedError, defineService, method } from '@ffnet/serde';
import { type ClientInterceptor, Client, Server, type ServerInterceptor, implement, retry } from '@ffnet/server';

const Greeter = defineService({
  name: 'Greeter',
  id: 1,
  methods: { greet: method<{ name: string }, { text: string }>(1) },
});

// Server: refuse calls without the token, and tell the caller who answered.
const requireToken: ServerInterceptor = (next) => (ctx, req) => {
  if (ctx.metadata.get('authorization') !== 'Bearer s3cret') throw new UnauthenticatedError(`${ctx.name} needs a token`);
  ctx.responseMetadata.set('served-by', 'greeter-1');
  return next(ctx, req);
};

// Client: add the token to every call and log what came back.
const addToken: ClientInterceptor = (next) => async (call) => {
  call.metadata.set('authorization', 'Bearer s3cret');
  const value = await next(call);
  console.log(`${call.service}.${call.method} answered by ${call.responseMetadata.get('served-by')}`);
  return value;
};

const server = new Server({ groups: [{ networkType: 'tcp', listener: { host: '127.0.0.1' } }], interceptors: [requireToken] });
server.addService(implement(Greeter, { greet: (_ctx, req) => ({ text: `hello ${req.name}` }) }));
await server.start();

const client = new Client({ interceptors: [retry({ maxRetries: 2 }), addToken] });
console.log(await client.stub(Greeter, server.addresses[0]!).greet({ name: 'ffnet' }, { timeoutMs: 500 }));

const anonymous = new Client();
await anonymous
  .stub(Greeter, server.addresses[0]!)
  .greet({ name: 'nobody' })
  .catch((e: unknown) => console.log((e as Error).name));

await Promise.all([client.stop(), anonymous.stop()]);
await server.stop();
