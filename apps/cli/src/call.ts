import { Client } from '@ffnet/server';
import { allBackends } from './backends.js';
import { type Command, intFlag, parse, UsageError } from './command.js';
import { normalizeAddress, resolveMethod, toJson } from './services.js';

export const call: Command = {
  usage: 'ffnet call <addr> <Service.method> [json] [--timeout ms]\n  e.g. ffnet call tcp://127.0.0.1:8000 Echo.echo \'{"str":"hi"}\'',
  async run(argv) {
    const { values, positionals } = parse(argv, { timeout: { type: 'string' } });
    const [rawAddr, spec, json = '{}', ...extra] = positionals;
    if (rawAddr === undefined || spec === undefined || extra.length > 0) throw new UsageError('expected <addr> <Service.method> [json]');
    const address = normalizeAddress(rawAddr);
    const m = resolveMethod(spec);
    let req: unknown;
    try {
      req = JSON.parse(json);
    } catch (e) {
      throw new UsageError(`the request is not valid JSON: ${(e as Error).message}`);
    }
    const timeoutMs = intFlag(values.timeout, 'timeout', 5000, 1);
    const client = new Client({ timeoutMs, backends: allBackends() });
    try {
      const rsp = await client.callRaw(address, m.serviceId, m.methodId, req);
      process.stdout.write(`${toJson(rsp)}\n`);
      return 0;
    } finally {
      await client.stop();
    }
  },
};
