import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

describe('pnpm start (the demo main job)', () => {
  it('serves tcp and unix, drives both, prints the table and exits 0', async () => {
    expect(existsSync(MAIN), 'build the demo first (npx tsc -b)').toBe(true);
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [MAIN, '--duration', '0.3', '--concurrency', '8'], {
      timeout: 20_000,
    });
    expect(stderr).toBe('');
    const lines = stdout.trimEnd().split('\n');
    const header = lines.findIndex((l) => l.startsWith('transport'));
    expect(lines[header]!.split(/\s{2,}/)).toEqual(['transport', 'address', 'calls', 'p50', 'p99', 'calls/s']);
    const rows = lines.slice(header + 1).map((l) => l.split(/\s{2,}/));
    expect(rows.map((r) => r[0])).toEqual(['tcp', 'unix']);
    const sockets: string[] = [];
    for (const [transport, address, calls, p50, p99, rate] of rows as string[][]) {
      expect(address).toMatch(transport === 'tcp' ? /^tcp:\/\/127\.0\.0\.1:\d+$/ : /^unix:\/\/\/.+\.sock$/);
      if (transport === 'unix') sockets.push(address!.slice('unix://'.length));
      expect(Number(calls)).toBeGreaterThan(0);
      expect(Number(rate)).toBeGreaterThan(0);
      const ms = (s: string) => Number.parseFloat(s) * (s.endsWith(' s') ? 1000 : 1);
      expect(p50).toMatch(/^[\d.]+ m?s$/);
      expect(p99).toMatch(/^[\d.]+ m?s$/);
      expect(ms(p50!)).toBeGreaterThan(0);
      expect(ms(p99!)).toBeGreaterThanOrEqual(ms(p50!));
    }
    // It cleaned up after itself.
    for (const s of sockets) expect(existsSync(s)).toBe(false);
  });
});
