import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without type declarations
import { checkCycles } from '../cycles.mjs';

const script = fileURLToPath(new URL('../cycles.mjs', import.meta.url));
const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'ffnet-cycles-'));
  roots.push(root);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
  return root;
}

const run = (root: string) => spawnSync(process.execPath, [script, root], { encoding: 'utf8' });

describe('cycles.mjs', () => {
  it('passes a package whose imports only run one way', () => {
    const root = tree({
      'packages/a/src/index.ts': "export * from './x.js';\nexport { y } from './y.js';\n",
      'packages/a/src/x.ts': "import { y } from './y.js';\nexport const x = y;\n",
      'packages/a/src/y.ts': "// import { x } from './x.js'; (a comment is not an edge)\nexport const y = 1;\n",
    });
    expect(checkCycles(root)).toEqual([]);
    const r = run(root);
    expect(r.status).toBe(0);
  });

  it('fails on a cycle, type-only imports included, and prints the loop', () => {
    const root = tree({
      'packages/a/src/index.ts': "export * from './x.js';\n",
      'packages/a/src/x.ts': "import type { Y } from './y.js';\nexport interface X { y?: Y }\n",
      'packages/a/src/y.ts': "import { z } from './z.js';\nexport interface Y { z: typeof z }\n",
      'packages/a/src/z.ts': "export type { X } from './x.js';\nexport const z = 1;\n",
      'packages/b/src/index.ts': "export const b = import('./index.js');\n",
    });
    const found = checkCycles(root) as { pkg: string; files: string[] }[];
    expect(found.map((c) => c.pkg).sort()).toEqual(['packages/a', 'packages/b']);
    expect(found.find((c) => c.pkg === 'packages/a')!.files).toEqual(['packages/a/src/x.ts', 'packages/a/src/y.ts', 'packages/a/src/z.ts']);
    const r = run(root);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('import cycle in packages/a: packages/a/src/x.ts → packages/a/src/y.ts → packages/a/src/z.ts → packages/a/src/x.ts');
  });

  it('finds no cycle in @ffnet/worker or @ffnet/server other than the RDMA transmission module (moving out)', () => {
    const repo = fileURLToPath(new URL('../../..', import.meta.url));
    const found = (checkCycles(repo) as { pkg: string; files: string[] }[]).filter((c) => c.pkg === 'packages/worker' || c.pkg === 'packages/server');
    expect(found.map((c) => c.files)).toEqual(found.length === 0 ? [] : [['packages/worker/src/call-context.ts', 'packages/worker/src/transmission.ts']]);
  });
});
