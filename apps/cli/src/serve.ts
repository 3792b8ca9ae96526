import { readFileSync } from 'node:fs';
import { InvalidConfigError } from '@ffnet/serde';
import { Server, type ServiceGroupConfig } from '@ffnet/server';
import { allBackends } from './backends.js';
import { type Command, parse, UsageError } from './command.js';

/**
 * `HOST:PORT`, `:PORT` or `PORT` (optionally with `tcp://`). Host `0.0.0.0` (or none) listens on every matching
 * interface, as 3FS does; any other host binds just that address.
 */
function hostPortGroup(networkType: 'tcp' | 'rdma', raw: string, filter: string[] | undefined): ServiceGroupConfig {
  const text = raw.replace(/^(tcp|rdma):\/\//i, '');
  const m = /^(?:(.*):)?(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new UsageError(`--${networkType} expects HOST:PORT, :PORT or PORT, got '${raw}'`);
  const host = m[1] ?? '';
  return {
    networkType,
    listener: { port, ...(host !== '' && host !== '0.0.0.0' ? { host } : {}), ...(filter ? { filter } : {}) },
  };
}

function readConfig(file: string): ServiceGroupConfig[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InvalidConfigError(`cannot read config ${file}: ${(e as Error).message}`, { cause: e });
  }
  const groups = (parsed as { groups?: unknown } | null)?.groups;
  if (!Array.isArray(groups))
    throw new InvalidConfigError(`config ${file} needs a "groups" array, e.g. {"groups":[{"networkType":"tcp","listener":{"port":8000}}]}`);
  return groups as ServiceGroupConfig[];
}

/** Resolves when SIGINT/SIGTERM arrives or Core.shutdown is called; a second signal exits at once. */
function stopRequested(): { promise: Promise<string>; request(why: string): void } {
  let request!: (why: string) => void;
  const promise = new Promise<string>((resolve) => {
    request = resolve;
  });
  let count = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++count > 1) process.exit(130);
    request(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return { promise, request };
}

export const serve: Command = {
  usage:
    'ffnet serve [--tcp HOST:PORT]... [--unix PATH]... [--rdma HOST:PORT]... [--filter NIC,...] [--config FILE]\n' +
    '  one service group per flag (default --tcp 127.0.0.1:8000); serves the built-in Echo and Core services.\n' +
    '  --tcp 0.0.0.0:PORT listens on every en/eth/bond/xgbe/ib/lo interface (narrow with --filter).\n' +
    '  --config FILE: JSON {"groups":[{"networkType":"tcp","listener":{"port":8000,"filter":["eth0"]}}]}\n' +
    '  --allow-shutdown: Core.shutdown from local peers stops the server (default: refused with PermissionDenied)',
  async run(argv) {
    const { values, positionals } = parse(argv, {
      tcp: { type: 'string', multiple: true },
      unix: { type: 'string', multiple: true },
      rdma: { type: 'string', multiple: true },
      filter: { type: 'string' },
      config: { type: 'string' },
      'allow-shutdown': { type: 'boolean' },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const filter = values.filter?.split(',').filter((s) => s !== '');
    const groups: ServiceGroupConfig[] = [
      ...(values.config ? readConfig(values.config) : []),
      ...(values.tcp ?? []).map((t) => hostPortGroup('tcp', t, filter)),
      ...(values.unix ?? []).map((p): ServiceGroupConfig => ({ networkType: 'unix', listener: { path: p.replace(/^unix:\/\//i, '') } })),
      ...(values.rdma ?? []).map((t) => hostPortGroup('rdma', t, filter)),
    ];
    if (groups.length === 0) groups.push(hostPortGroup('tcp', '127.0.0.1:8000', filter));

    const stop = stopRequested();
    const server = new Server({
      backends: allBackends(),
      groups,
      onShutdown: () => stop.request('Core.shutdown'),
      // A tool for this host: Core.stats and getConfig answer local peers (a unix peer running as this uid, or
      // loopback), and so does Core.shutdown with --allow-shutdown; without it nobody may stop the server.
      admin: { inspect: 'local', shutdown: values['allow-shutdown'] ? 'local' : 'none' },
    });
    await server.start();
    server.groups.forEach((g, i) => {
      for (const b of g.listener.bound) {
        const nic = b.interface ? ` ${b.interface}/${b.kind}` : '';
        process.stdout.write(`listening ${b.address}  (group ${i} ${g.networkType}${nic})\n`);
      }
    });
    process.stdout.write('ready\n');
    const why = await stop.promise;
    process.stdout.write(`stopping (${why})\n`);
    await server.stop();
    process.stdout.write('stopped\n');
    return 0;
  },
};
