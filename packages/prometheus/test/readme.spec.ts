// The README example runs verbatim (as a module inside this package, so `@ffnet/prometheus` resolves to the built
// package by self-reference) and prints exactly what the README says it prints.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const file = fileURLToPath(new URL('./readme-example.tmp.mjs', import.meta.url));
afterAll(() => rmSync(file, { force: true }));

it('README example prints what the README says', () => {
  const code = /## Example\n\n```js\n([\s\S]*?)```/.exec(readme)?.[1];
  const printed = /\nPrints:\n\n```\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(code).toContain("from '@ffnet/prometheus'");
  expect(printed).toBeTruthy();
  writeFileSync(file, code!);
  const out = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 20_000 });
  expect(out).toBe(printed);
});
