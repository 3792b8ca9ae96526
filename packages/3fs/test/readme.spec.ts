// The README's first example, run as written: extracted from the README, executed by node from this package's
// directory (so `@ffnet/3fs` resolves to this package), and its output compared with the `// ` lines after it.
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));

it('the README example runs and prints what the README says', async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const block = /```js\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(block).toBeDefined();
  const code = block!.split('\n').filter((l) => !l.startsWith('// ') || !/^\/\/ (Storage|\[|Echo=)/.test(l));
  const expected = block!
    .split('\n')
    .filter((l) => /^\/\/ (Storage|\[|Echo=)/.test(l))
    .map((l) => l.slice(3));
  expect(expected).toHaveLength(3);
  const file = `${pkgDir}readme-example-${process.pid}.mjs`;
  writeFileSync(file, code.join('\n'));
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [file], { cwd: pkgDir, timeout: 20_000 }, (err, out, errOut) =>
        err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out),
      );
    });
    expect(stdout.trimEnd().split('\n')).toEqual(expected);
  } finally {
    rmSync(file, { force: true });
  }
});
