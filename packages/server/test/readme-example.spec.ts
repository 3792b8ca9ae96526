import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const example = readFileSync(new URL('../examples/greeter.ts', import.meta.url), 'utf8');

describe('README example', () => {
  it('is examples/greeter.ts verbatim', () => {
    expect(readme).toContain(`\`\`\`ts\n${example}\`\`\``);
  });

  it('runs: a service and a client talking over TCP', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      await import('../examples/greeter.js');
      expect(log).toHaveBeenCalledTimes(1);
      const printed = log.mock.calls[0]![0] as { text: string };
      expect(printed.text).toMatch(/^hello ffnet, you are tcp:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      log.mockRestore();
    }
  });

  it('has the interceptor example verbatim, and it runs: a token added by the client, checked by the server', async () => {
    const auth = readFileSync(new URL('../examples/auth-interceptor.ts', import.meta.url), 'utf8');
    expect(readme).toContain(`\`\`\`ts\n${auth}\`\`\``);
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      await import('../examples/auth-interceptor.js');
      expect(log.mock.calls.map((c) => c[0])).toEqual(['Greeter.greet answered by greeter-1', { text: 'hello ffnet' }, 'UnauthenticatedError']);
    } finally {
      log.mockRestore();
    }
  });

  it('has the security example verbatim, and it runs: token identities, an authorizer, credentials, admin by role', async () => {
    const auth = readFileSync(new URL('../examples/auth.ts', import.meta.url), 'utf8');
    expect(readme).toContain(`\`\`\`ts\n${auth}\`\`\``);
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      await import('../examples/auth.js');
      expect(log.mock.calls.map((c) => c[0])).toEqual([
        'hello, by otto',
        { authenticated: 1, refused: 0, denied: 0, closed: 0 },
        'refused (denied) Notes.write',
        'PermissionDeniedError',
        'refused (unauthenticated) Notes.read',
        'UnauthenticatedError',
      ]);
    } finally {
      log.mockRestore();
    }
  });
});
