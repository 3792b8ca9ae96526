#!/usr/bin/env node
import { type Command, describeError, UsageError } from './command.js';

/**
 * Subcommands, loaded on demand so that `ffnet devices` does not pull in the RPC stack. Adding a command is one
 * entry here plus a module exporting a Command.
 */
const COMMANDS: Record<string, { summary: string; load(): Promise<Command> }> = {
  serve: { summary: 'run a server with the built-in services', load: async () => (await import('./serve.js')).serve },
  call: { summary: 'call one method and print the JSON response', load: async () => (await import('./call.js')).call },
  ping: { summary: 'measure Echo latency and throughput', load: async () => (await import('./ping.js')).ping },
  stats: { summary: 'calls, errors and latency per method of a running server', load: async () => (await import('./stats.js')).stats },
  devices: {
    summary: 'list RDMA devices',
    load: async () => {
      const { runDevices } = await import('./devices.js');
      return { usage: 'ffnet devices [--json]', run: runDevices };
    },
  },
};

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: ffnet <command> [options]\n\ncommands:\n${lines.join('\n')}\n\n'ffnet <command> --help' shows a command's options.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(help());
    return name === undefined ? 2 : 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    process.stderr.write(`ffnet: unknown command '${name}'\n\n${help()}`);
    return 2;
  }
  const cmd = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: ${cmd.usage}\n`);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    process.stderr.write(`ffnet ${name}: ${describeError(e)}\n`);
    if (e instanceof UsageError) {
      process.stderr.write(`usage: ${cmd.usage}\n`);
      return 2;
    }
    return 1;
  }
}

// Exit explicitly: a lingering handle must not keep a finished command alive (stdout is synchronous for files and pipes on Linux).
process.exit(await main(process.argv.slice(2)));
