// The README example runs verbatim against the real pino (as a module inside this package, so `@ffnet/pino`
// resolves to the built package by self-reference) and prints the records the README shows.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const file = fileURLToPath(new URL('./readme-example.tmp.mjs', import.meta.url));
afterAll(() => rmSync(file, { force: true }));

it('README example logs what the README says', () => {
  const code = /## Example\n\n```js\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(code).toContain("from '@ffnet/pino'");
  writeFileSync(file, code!);
  const out = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const records = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const shown = /\n```\n(\{[\s\S]*?)```/.exec(readme)?.[1];
  const msgs = [...(shown ?? '').matchAll(/"msg":"([^"]+)"/g)].map((m) => m[1]);
  expect(msgs).toEqual(['connection opened', 'admin call refused', 'connection closed']);
  for (const msg of msgs) expect(records.some((r) => r.msg === msg)).toBe(true);
  expect(records.find((r) => r.msg === 'admin call refused')).toMatchObject({ level: 40, component: 'server', method: 'Core.stats', access: 'admin' });
  expect(records.find((r) => r.msg === 'connection closed' && r.incoming === true)).toMatchObject({ level: 20, component: 'transport', code: 2013 });
});
