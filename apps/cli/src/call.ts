import { type AnySchema, defaultOf, FfnetError, fromJson, type Schema, toJson as schemaJson } from '@ffnet/serde';
import { Client } from '@ffnet/server';
import { allBackends } from './backends.js';
import { type Command, intFlag, parse, UsageError } from './command.js';
import { FFNET_SERVICES, normalizeAddress, type ResolvedMethod, resolveMethod, THREEFS_SERVICES, toJson } from './services.js';

const ENVELOPES = ['ffnet', '3fs'] as const;

export const call: Command = {
  usage:
    'ffnet call [--envelope ffnet|3fs] <addr> <Service.method> [json] [--timeout ms]\n' +
    '  e.g. ffnet call tcp://127.0.0.1:8000 Echo.echo \'{"str":"hi"}\'\n' +
    '       ffnet call --envelope 3fs tcp://127.0.0.1:8000 Core.echo \'{"str":"hi"}\'   (3FS services from @ffnet/3fs)',
  async run(argv) {
    const { values, positionals } = parse(argv, { timeout: { type: 'string' }, envelope: { type: 'string' } });
    const [rawAddr, spec, json = '{}', ...extra] = positionals;
    if (rawAddr === undefined || spec === undefined || extra.length > 0) throw new UsageError('expected <addr> <Service.method> [json]');
    const envelope = (values.envelope ?? 'ffnet') as (typeof ENVELOPES)[number];
    if (!ENVELOPES.includes(envelope)) throw new UsageError(`--envelope must be ffnet or 3fs, got '${envelope}'`);
    const threefs = envelope === '3fs';
    const address = normalizeAddress(rawAddr);
    const m = resolveMethod(spec, threefs ? THREEFS_SERVICES : FFNET_SERVICES);
    if (threefs && (m.request === undefined || m.response === undefined)) {
      // 3FS bodies carry no types: without the method's schemas there is nothing to write the request with.
      throw new UsageError(`--envelope 3fs needs a method with schemas; ${m.label} has none (name one of the 3FS services)`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch (e) {
      throw new UsageError(`the request is not valid JSON: ${(e as Error).message}`);
    }
    const req = requestFromJson(m, parsed);
    const timeoutMs = intFlag(values.timeout, 'timeout', 5000, 1);
    const client = new Client({ timeoutMs, backends: allBackends(), envelope });
    try {
      // Through the definition when there is one, so the client checks the request and response against the schemas.
      const rsp =
        m.def !== undefined && m.method !== undefined
          ? await client.call(address, m.def, m.method, req as never)
          : await client.callRaw(address, m.serviceId, m.methodId, req);
      const text = m.response === undefined ? toJson(rsp) : JSON.stringify(schemaJson(m.response, rsp as never), null, 2);
      process.stdout.write(`${text}\n`);
      return 0;
    } finally {
      await client.stop();
    }
  },
};

/**
 * The request value: the JSON as is for a method without schemas, else read through the request schema (the kit's
 * JSON conventions: 64-bit integers as decimal strings, `{"$hex"}` for bytes), so a field that does not fit is a
 * command-line mistake naming the field, before anything is sent. Struct fields left out take their defaults, as a
 * 3FS decoder keeps the defaults of fields missing from a table (3FS structs run to a dozen nested fields).
 */
function requestFromJson(m: ResolvedMethod, parsed: unknown): unknown {
  if (m.request === undefined) return parsed;
  try {
    return fromJson(m.request, withDefaults(m.request, schemaJson(m.request, defaultOf(m.request) as never), parsed));
  } catch (e) {
    const why = FfnetError.is(e) ? e.reason : (e as Error).message;
    throw new UsageError(`the request does not fit ${m.label}: ${why}`, { cause: e });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `given` with the struct fields it leaves out taken from `dflt` (both JSON forms), recursively into structs only. */
function withDefaults(schema: Schema, dflt: unknown, given: unknown): unknown {
  let sc = schema as AnySchema;
  while (sc.kind === 'alias' || sc.kind === 'lazy') sc = (sc.kind === 'alias' ? sc.of : sc.resolve()) as AnySchema;
  if (sc.kind !== 'struct' || !isObject(given) || !isObject(dflt)) return given;
  const out: Record<string, unknown> = { ...given };
  for (const f of sc.fields) out[f.name] = f.name in given ? withDefaults(f.type, dflt[f.name], given[f.name]) : dflt[f.name];
  return out;
}
