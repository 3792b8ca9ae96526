import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ALLOWED, type Violation, checkRepo } from './layering.js';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

const show = (vs: Violation[]) => vs.map((v) => `${v.rule} ${v.where}: ${v.message}`).join('\n');

describe('the real repository', () => {
  it('has no upward dependency, cycle, internals import or package.json/tsconfig hygiene problem', () => {
    const violations = checkRepo(repoRoot);
    expect(show(violations)).toBe('');
  });

  it('the layer map is the one the issue states', () => {
    // A chain: each layer may use everything under it, and serde/event sit below all of them.
    const chain = ['device', 'connect', 'transport', 'worker', 'listener', 'server'];
    chain.forEach((name, i) => {
      expect(new Set(ALLOWED[name])).toEqual(new Set(['serde', 'event', ...chain.slice(0, i)]));
    });
    expect(ALLOWED.serde).toEqual([]);
    expect(ALLOWED.event).toEqual(['serde']);
  });
});

// ---- synthetic trees: prove the checker finds each kind of violation, and nothing on a clean tree ----

type Files = Record<string, string>;

interface PkgSpec {
  deps?: string[];
  devDeps?: string[];
  /** Extra files, relative to the package directory. */
  files?: Files;
  /** Overrides merged over the generated package.json. */
  json?: Record<string, unknown>;
  /** tsconfig references; default: one per @ffnet dependency. */
  refs?: string[];
}

const fixtureRoots: string[] = [];
afterAll(() => {
  for (const root of fixtureRoots) rmSync(root, { recursive: true, force: true });
});

function pkg(rel: string, spec: PkgSpec = {}): Files {
  const dirName = rel.split('/')[1] as string;
  const deps = spec.deps ?? [];
  const ws = (names: string[]) => Object.fromEntries(names.map((n) => [`@ffnet/${n}`, 'workspace:^']));
  const json = {
    name: `@ffnet/${dirName}`,
    version: '0.0.0',
    type: 'module',
    engines: { node: '>=20' },
    exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' }, './package.json': './package.json' },
    files: ['dist', 'README.md'],
    dependencies: ws(deps),
    devDependencies: ws(spec.devDeps ?? []),
    ...spec.json,
  };
  const upToRoot = rel.startsWith('packages/') ? '../' : '../../packages/';
  const refs = (spec.refs ?? deps).map((n) => `    { "path": "${upToRoot}${n}" }, // @ffnet/${n}`).join('\n');
  return {
    [`${rel}/package.json`]: JSON.stringify(json, null, 2),
    // Comments and trailing commas, as tsconfig allows.
    [`${rel}/tsconfig.json`]: `{\n  /* build */\n  "compilerOptions": { "composite": true, "outDir": "dist" },\n  "references": [\n${refs}\n  ],\n}\n`,
    [`${rel}/src/index.ts`]: 'export const here = 1;\n',
    [`${rel}/README.md`]: '# fixture\n',
    ...Object.fromEntries(Object.entries(spec.files ?? {}).map(([f, text]) => [`${rel}/${f}`, text])),
  };
}

/** A well-formed miniature of the repo, including legal things a naive checker would flag. */
function cleanTree(): Files {
  return {
    ...pkg('packages/serde'),
    ...pkg('packages/event', {
      deps: ['serde'],
      files: {
        'src/timer.ts': [
          "import { type FfnetError, InvalidArgError } from '@ffnet/serde';",
          "import pkgJson from '@ffnet/serde/package.json' with { type: 'json' };",
          "// import { crc } from '../../serde/src/crc.js'  (a comment, not an import)",
          'const text = "import { Server } from \'@ffnet/server\'"; // a string, not an import',
          "export { text, pkgJson, InvalidArgError, type FfnetError };",
        ].join('\n'),
        'test/timer.spec.ts': [
          "import { here } from '../src/index.js';",
          "import * as self from '@ffnet/event'; // its own public entry, from a test",
          'export { here, self };',
        ].join('\n'),
      },
    }),
    ...pkg('packages/device', { deps: ['serde', 'event'], files: { 'src/d.ts': "export type T = typeof import('@ffnet/event');\n" } }),
    ...pkg('packages/connect', { deps: ['device', 'serde'] }),
    ...pkg('packages/server', { deps: ['connect', 'event'], files: { 'src/s.ts': "const m = await import('@ffnet/connect');\nexport { m };\n" } }),
    ...pkg('apps/demo', {
      deps: ['server', 'serde'],
      json: { private: true, exports: undefined, files: undefined },
      files: { 'src/main.ts': "import '@ffnet/server';\nimport { crc32c } from '@ffnet/serde';\nexport { crc32c };\n" },
    }),
    // tools are exempt from the import rules.
    'tools/checks/package.json': JSON.stringify({ name: '@ffnet/checks', private: true, type: 'module' }),
    'tools/checks/test/x.spec.ts': "import '../../../packages/serde/src/index.js';\n",
  };
}

function check(files: Files): string[] {
  const root = mkdtempSync(join(tmpdir(), 'ffnet-layering-'));
  fixtureRoots.push(root);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), text);
  }
  return checkRepo(root)
    .map((v) => `${v.rule} ${v.where}: ${v.message}`)
    .sort();
}

describe('the checker on synthetic trees', () => {
  it('finds nothing in a clean tree (comments, strings, type imports, self-import from a test, exported subpaths)', () => {
    expect(check(cleanTree())).toEqual([]);
  });

  it('catches an upward import in src (undeclared, type-only too) and the cycles it closes', () => {
    const files = cleanTree();
    Object.assign(files, {
      'packages/device/src/up.ts': "import { here } from '@ffnet/server';\nexport { here };\n",
      'packages/serde/src/up.ts': "import type { T } from '@ffnet/event';\nexport type { T };\n",
    });
    expect(check(files)).toEqual([
      'cycle packages/connect, packages/device, packages/server: dependency cycle among @ffnet/connect, @ffnet/device, @ffnet/server',
      'cycle packages/event, packages/serde: dependency cycle among @ffnet/event, @ffnet/serde',
      'layer packages/device/src/up.ts:1: @ffnet/device imports @ffnet/server, which is not below it',
      'layer packages/serde/src/up.ts:1: @ffnet/serde imports @ffnet/event, which is not below it',
      'undeclared packages/device/src/up.ts:1: imports @ffnet/server, which @ffnet/device\'s package.json does not declare',
      'undeclared packages/serde/src/up.ts:1: imports @ffnet/event, which @ffnet/serde\'s package.json does not declare',
    ]);
  });

  it('catches an upward package.json dependency and the cycle it closes', () => {
    const files = { ...cleanTree(), ...pkg('packages/event', { deps: ['serde', 'device'] }) };
    expect(check(files)).toEqual([
      'cycle packages/device, packages/event: dependency cycle among @ffnet/device, @ffnet/event',
      'layer packages/event/package.json: @ffnet/event depends on @ffnet/device, which is not below it',
    ]);
  });

  it('catches a cycle where no layer rule applies (between apps), made of a dependency and an import', () => {
    const files = {
      ...cleanTree(),
      ...pkg('apps/a', { deps: ['b'], json: { private: true } }),
      ...pkg('apps/b', { deps: ['a'], json: { private: true }, files: { 'src/x.ts': "export * from '@ffnet/a';\n" } }),
    };
    expect(check(files)).toEqual(['cycle apps/a, apps/b: dependency cycle among @ffnet/a, @ffnet/b']);
  });

  it('catches a package importing itself from src', () => {
    const files = cleanTree();
    files['packages/connect/src/self.ts'] = "export * from '@ffnet/connect';\n";
    expect(check(files)).toEqual(['cycle packages/connect/src/self.ts:1: @ffnet/connect imports itself ("@ffnet/connect")']);
  });

  it("catches reaching into another package's internals by path or by deep specifier, in src and test", () => {
    const files = cleanTree();
    Object.assign(files, {
      'packages/connect/src/deep.ts': [
        "import { frame } from '../../serde/src/frame.js';",
        "export * from '@ffnet/serde/src/frame.js';",
        "const m = await import('@ffnet/serde/dist/index.js');",
        "import { x } from '@ffnet/device/internal';",
        'export { frame, m, x };',
      ].join('\n'),
      'packages/connect/test/outside.spec.ts': "import { shared } from '../../../vitest.shared.mjs';\nexport { shared };\n",
      'apps/demo/test/deep.spec.ts': "const s = require('../../../packages/serde/src/index.js');\nexport { s };\n",
      // A dependency's shared test suite may be run from a test, never from src, and never a non-dependency's.
      'packages/connect/test/suite.spec.ts': [
        "import { suite } from '../../device/test/suite.js';",
        "import { other } from '../../server/test/suite.js';",
        'export { suite, other };',
      ].join('\n'),
      'packages/connect/src/suite.ts': "import { suite } from '../../device/test/suite.js';\nexport { suite };\n",
    });
    expect(check(files)).toEqual([
      'internal apps/demo/test/deep.spec.ts:1: reaches into @ffnet/serde by path ("../../../packages/serde/src/index.js"); import "@ffnet/serde" instead',
      'internal packages/connect/src/deep.ts:1: reaches into @ffnet/serde by path ("../../serde/src/frame.js"); import "@ffnet/serde" instead',
      'internal packages/connect/src/deep.ts:2: imports "@ffnet/serde/src/frame.js", which is not a public entry of @ffnet/serde',
      'internal packages/connect/src/deep.ts:3: imports "@ffnet/serde/dist/index.js", which is not a public entry of @ffnet/serde',
      'internal packages/connect/src/deep.ts:4: imports "@ffnet/device/internal", which is not a public entry of @ffnet/device',
      'internal packages/connect/src/suite.ts:1: reaches into @ffnet/device by path ("../../device/test/suite.js"); import "@ffnet/device" instead',
      'internal packages/connect/test/outside.spec.ts:1: reaches outside @ffnet/connect by path ("../../../vitest.shared.mjs")',
      'internal packages/connect/test/suite.spec.ts:2: reaches into @ffnet/server by path ("../../server/test/suite.js"); import "@ffnet/server" instead',
    ]);
  });

  it('catches package.json and tsconfig hygiene problems', () => {
    const files = {
      ...cleanTree(),
      ...pkg('packages/worker', {
        deps: ['serde', 'event'],
        refs: ['event', 'device'],
        json: {
          type: 'commonjs',
          exports: { '.': { import: './dist/index.js', types: './dist/index.d.ts' } },
          files: undefined,
          engines: { node: '>=18' },
          dependencies: { '@ffnet/serde': 'workspace:*', '@ffnet/event': 'workspace:^', '@ffnet/nope': '1.0.0' },
        },
      }),
      ...pkg('packages/extra'),
    };
    files['packages/worker/tsconfig.json'] = files['packages/worker/tsconfig.json']?.replace('"composite": true', '"composite": false') ?? '';
    delete files['packages/extra/src/index.ts'];
    expect(check(files)).toEqual([
      'hygiene packages/extra: missing src/index.ts',
      'hygiene packages/worker/package.json: "files" must be a list that includes "dist"',
      'hygiene packages/worker/package.json: "type" must be "module" (ESM only)',
      'hygiene packages/worker/package.json: @ffnet/serde must be "workspace:^", not "workspace:*"',
      'hygiene packages/worker/package.json: depends on @ffnet/nope, which is not a workspace package',
      'hygiene packages/worker/package.json: engines.node must be ">=20", not ">=18"',
      'hygiene packages/worker/package.json: exports["."]: "types" must be the first condition',
      'hygiene packages/worker/tsconfig.json: "compilerOptions.composite" must be true',
      'hygiene packages/worker/tsconfig.json: references disagree with package.json: missing @ffnet/serde, extra @ffnet/device',
      'layer packages/extra: @ffnet/extra has no place in the layer order (add it to ALLOWED)',
    ]);
  });
});
