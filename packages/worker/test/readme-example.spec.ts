import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const example = readFileSync(new URL('../examples/double.ts', import.meta.url), 'utf8');

describe('README example', () => {
  it('is examples/double.ts verbatim', () => {
    expect(readme).toContain(`\`\`\`ts\n${example}\`\`\``);
  });

  it('runs: a request through two IOWorkers over TCP', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      await import('../examples/double.js');
      expect(log.mock.calls).toEqual([[{ ok: true, value: 42 }]]);
    } finally {
      log.mockRestore();
    }
  });
});
