import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const example = readFileSync(new URL('../examples/echo.ts', import.meta.url), 'utf8');

describe('README example', () => {
  it('is examples/echo.ts verbatim', () => {
    expect(readme).toContain(`\`\`\`ts\n${example}\`\`\``);
  });

  it('runs: a 1 MiB frame echoed over shm://', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      await import('../examples/echo.js');
      expect(log.mock.calls).toEqual([[true, true]]);
    } finally {
      log.mockRestore();
    }
  });
});
