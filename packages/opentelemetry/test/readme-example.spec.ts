import { readFileSync } from 'node:fs';
import { context, trace } from '@opentelemetry/api';
import { describe, expect, it, vi } from 'vitest';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const example = readFileSync(new URL('../examples/traced-greeter.ts', import.meta.url), 'utf8');

describe('README example', () => {
  it('is examples/traced-greeter.ts verbatim', () => {
    expect(readme).toContain(`\`\`\`ts\n${example}\`\`\``);
  });

  it('runs: one trace from the client span through the server span to the handler span', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      await import('../examples/traced-greeter.js');
      expect(log.mock.calls.map((c) => c[0])).toEqual([
        'INTERNAL lookup under SERVER Greeter/greet',
        'SERVER Greeter/greet under CLIENT Greeter/greet',
        'CLIENT Greeter/greet',
      ]);
    } finally {
      log.mockRestore();
      context.disable();
      trace.disable();
    }
  });
});
