import { defineService, method } from '@ffnet/serde';
import { type AuthRequest, Client, CoreService, implement, type Principal, Server, staticToken, tokenCredentials } from '@ffnet/server';

const Notes = defineService({
  name: 'Notes',
  id: 2,
  methods: {
    read: method<{ id: number }, { text: string }>(1),
    write: method<{ id: number; text: string }, Record<string, never>>(2),
  },
});

// Who holds which token. In real life: an identity provider, or token introspection.
const users: Record<string, Principal> = {
  'Bearer rita-token': { id: 'rita', roles: ['reader'] },
  'Bearer otto-token': { id: 'otto', roles: ['reader', 'writer', 'admin'] },
};

const notes = new Map<number, string>();
const server = new Server({
  groups: [{ networkType: 'tcp', listener: { host: '127.0.0.1' } }],
  // Once per connection: the first call's `authorization` → a principal (undefined refuses the call).
  authenticate: (req: AuthRequest) => {
    const token = req.metadata?.get('authorization');
    const user = typeof token === 'string' ? users[token] : undefined;
    return user && { ...user, expiresAt: Date.now() + 60_000 };
  },
  // Every call: readers read, writers write. Core's admin methods also want the role `admin`.
  authorize: ({ service, method, identity }) => service !== 'Notes' || method === 'read' || identity.principal?.roles?.includes('writer') === true,
  onAuthError: (e) => console.log(`refused (${e.kind}) ${e.method}`),
});
server.addService(
  implement(Notes, {
    read: (_ctx, req) => ({ text: notes.get(req.id) ?? '' }),
    write: (ctx, req) => {
      notes.set(req.id, `${req.text}, by ${ctx.peerIdentity.principal?.id}`);
      return {};
    },
  }),
);
await server.start();
const address = server.addresses[0]!;

// Tokens that expire: fetched once, cached, refreshed before expiresAt.
const otto = new Client({ credentials: tokenCredentials({ fetch: async () => ({ token: 'Bearer otto-token', expiresAt: Date.now() + 3_600_000 }) }) });
await otto.stub(Notes, address).write({ id: 1, text: 'hello' });
console.log((await otto.stub(Notes, address).read({ id: 1 })).text);
console.log((await otto.stub(CoreService, address).stats({})).auth);

const rita = new Client({ credentials: staticToken('Bearer rita-token') });
await rita
  .stub(Notes, address)
  .write({ id: 2, text: 'mine' })
  .catch((e: Error) => console.log(e.name));

const anonymous = new Client();
await anonymous
  .stub(Notes, address)
  .read({ id: 1 })
  .catch((e: Error) => console.log(e.name));

await Promise.all([otto.stop(), rita.stop(), anonymous.stop()]);
await server.stop();
