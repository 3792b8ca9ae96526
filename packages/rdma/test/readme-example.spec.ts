import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const example = readFileSync(new URL('../examples/hello.ts', import.meta.url), 'utf8');

describe('README example', () => {
  it('is examples/hello.ts verbatim', () => {
    expect(readme).toContain(`\`\`\`ts\n${example}\`\`\``);
  });

  it('shows examples/secure-handshake.ts verbatim (run by the VM suite, test/rdma/handshake-security.spec.ts)', () => {
    const secure = readFileSync(new URL('../examples/secure-handshake.ts', import.meta.url), 'utf8');
    expect(readme).toContain(`\`\`\`ts\n${secure}\`\`\``);
  });

  it('runs: over tcp:// here (no RDMA device), the handler seeing no RDMA', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      await import('../examples/hello.js');
      // This host has no verbs device, so only the tcp group exists.
      expect(log).toHaveBeenCalledTimes(1);
      const [address, rsp] = log.mock.calls[0]! as [string, { text: string; rdma: boolean }];
      expect(address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
      expect(rsp).toEqual({ text: 'hello ffnet', rdma: false });
    } finally {
      log.mockRestore();
    }
  });
});
