import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ADAPTERS, ALLOWED, APPS_ONLY, checkRepo, fileCycles, NO_INSTALL, type Violation } from './layering.js';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

const show = (vs: Violation[]) => vs.map((v) => `${v.rule} ${v.where}: ${v.message}`).join('\n');

describe('the real repository', () => {
  it('has no upward or forbidden dependency, cycle, internals import or package.json/tsconfig hygiene problem', () => {
    expect(show(checkRepo(repoRoot))).toBe('');
  });

  it('the layer map is the one issue 11 states', () => {
    // A chain, lowest first: each layer may use everything under it, except the pairs the issue rules out.
    const chain = ['common', 'serde', 'event', 'device', 'connect', 'transport', 'worker', 'listener', 'server', 'rdma'];
    const ruledOut: Record<string, string[]> = {
      event: ['serde'],
      transport: ['connect', 'device'],
      worker: ['connect', 'device'],
      listener: ['connect', 'device'],
      server: ['connect', 'device'],
    };
    chain.forEach((name, i) => {
      const below = chain.slice(0, i).filter((n) => !ruledOut[name]?.includes(n));
      expect(new Set(ALLOWED[name]), name).toEqual(new Set(below));
    });
    // Adapters sit beside rdma: the tcp/unix stack up to server is below them, the verbs packages are not.
    for (const name of ADAPTERS) {
      expect(new Set(ALLOWED[name]), name).toEqual(new Set(['common', 'serde', 'event', 'transport', 'worker', 'listener', 'server']));
    }
    // Beside the chain: @ffnet/3fs stands on serde alone, and no package (only apps) may use it.
    expect(ALLOWED['3fs']).toEqual(['common', 'serde']);
    for (const name of [...chain, ...ADAPTERS]) expect(ALLOWED[name], name).not.toContain('3fs');
    // @ffnet/shm: beside the chain like 3fs, on the tcp/unix stack (server for its tests), never the verbs packages.
    expect(new Set(ALLOWED.shm)).toEqual(new Set(['common', 'serde', 'event', 'transport', 'worker', 'listener', 'server']));
    for (const name of [...chain, ...ADAPTERS, '3fs']) expect(ALLOWED[name], name).not.toContain('shm');
    expect(Object.keys(ALLOWED).sort()).toEqual([...chain, ...ADAPTERS, '3fs', 'shm'].sort());
    // The tcp/unix stack installs without the verbs stack, and only apps choose rdma.
    for (const name of ['transport', 'worker', 'listener', 'server', 'shm']) {
      expect(NO_INSTALL[name]).toEqual(expect.arrayContaining(['@ffnet/connect', '@ffnet/device', '@ffnet/rdma', 'koffi']));
    }
    expect(APPS_ONLY).toEqual(['@ffnet/rdma']);
    expect([...ADAPTERS].sort()).toEqual(['opentelemetry', 'pino', 'prometheus']);
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
    ...pkg('packages/common'),
    ...pkg('packages/serde', { deps: ['common'] }),
    ...pkg('packages/event', {
      deps: ['common'],
      files: {
        'src/timer.ts': [
          "import { type FfnetError, InvalidArgError } from '@ffnet/common';",
          "import pkgJson from '@ffnet/common/package.json' with { type: 'json' };",
          "// import { crc } from '../../serde/src/crc.js'  (a comment, not an import)",
          'const text = "import { Server } from \'@ffnet/server\'"; // a string, not an import',
          'export { text, pkgJson, InvalidArgError, type FfnetError };',
        ].join('\n'),
        'test/timer.spec.ts': [
          "import { here } from '../src/index.js';",
          "import * as self from '@ffnet/event'; // its own public entry, from a test",
          'export { here, self };',
        ].join('\n'),
      },
    }),
    ...pkg('packages/device', {
      deps: ['common', 'event'],
      json: { dependencies: { '@ffnet/common': 'workspace:^', '@ffnet/event': 'workspace:^', koffi: '3.3.4' } },
      files: { 'src/d.ts': "export type T = typeof import('@ffnet/event');\nimport 'koffi';\n" },
    }),
    ...pkg('packages/connect', { deps: ['device', 'serde'] }),
    ...pkg('packages/transport', {
      deps: ['serde', 'event'],
      // koffi as an optional peer, loaded lazily or named in types only: a tcp-only install runs without it.
      json: { peerDependencies: { koffi: '3.3.4' }, peerDependenciesMeta: { koffi: { optional: true } } },
      files: {
        // A diamond of imports, type-only ones too, and a resolution through index.ts: no cycle.
        'src/index.ts': "export * from './a.js';\nexport * from './b.js';\nexport type { C } from './c/index.js';\n",
        'src/a.ts': "import type { C } from './c/index.js';\nimport { b } from './b.js';\nexport const a: C = b;\n",
        'src/b.ts': "import type { C } from './c';\nexport const b: C = 1;\n",
        'src/c/index.ts': "import type * as K from 'koffi';\nexport type C = number | K.IKoffiLib;\n",
        'src/peer.ts': "export async function load() {\n  return await import('koffi');\n}\n",
        // Test files may import each other both ways.
        'test/x.ts': "import { y } from './y.js';\nexport const x = y;\n",
        'test/y.ts': "import { x } from './x.js';\nexport const y = 1;\nexport { x };\n",
      },
    }),
    ...pkg('packages/server', {
      deps: ['transport', 'event'],
      files: { 'src/s.ts': "const m = await import('@ffnet/transport');\nexport { m };\n" },
    }),
    ...pkg('packages/rdma', { deps: ['transport', 'connect', 'device', 'server'] }),
    ...pkg('apps/demo', {
      deps: ['server', 'serde', 'rdma'],
      json: { private: true, exports: undefined, files: undefined },
      files: {
        'src/main.ts': "import '@ffnet/server';\nimport { rdma } from '@ffnet/rdma';\nimport { crc32c } from '@ffnet/serde';\nexport { crc32c, rdma };\n",
      },
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
      'packages/event/src/up.ts': "import { here } from '@ffnet/server';\nexport { here };\n",
      'packages/common/src/up.ts': "import type { T } from '@ffnet/serde';\nexport type { T };\n",
    });
    expect(check(files)).toEqual([
      'cycle packages/common, packages/serde: dependency cycle among @ffnet/common, @ffnet/serde',
      'cycle packages/event, packages/server, packages/transport: dependency cycle among @ffnet/event, @ffnet/server, @ffnet/transport',
      'layer packages/common/src/up.ts:1: @ffnet/common imports @ffnet/serde, which is not below it',
      'layer packages/event/src/up.ts:1: @ffnet/event imports @ffnet/server, which is not below it',
      "undeclared packages/common/src/up.ts:1: imports @ffnet/serde, which @ffnet/common's package.json does not declare",
      "undeclared packages/event/src/up.ts:1: imports @ffnet/server, which @ffnet/event's package.json does not declare",
    ]);
  });

  it('catches an upward package.json dependency, the cycle it closes, and what it drags into an install', () => {
    const files = { ...cleanTree(), ...pkg('packages/event', { deps: ['common', 'device'] }) };
    expect(check(files)).toEqual([
      'cycle packages/device, packages/event: dependency cycle among @ffnet/device, @ffnet/event',
      // transport and server reach device, and its koffi, through event.
      'install packages/server/package.json: installing @ffnet/server installs @ffnet/device (@ffnet/server → @ffnet/event → @ffnet/device)',
      'install packages/server/package.json: installing @ffnet/server installs koffi (@ffnet/server → @ffnet/event → @ffnet/device → koffi)',
      'install packages/transport/package.json: installing @ffnet/transport installs @ffnet/device (@ffnet/transport → @ffnet/event → @ffnet/device)',
      'install packages/transport/package.json: installing @ffnet/transport installs koffi (@ffnet/transport → @ffnet/event → @ffnet/device → koffi)',
      'layer packages/event/package.json: @ffnet/event depends on @ffnet/device, which is not below it',
    ]);
  });

  it('catches a lower layer the graph forbids: transport on connect and device, event on serde', () => {
    const files = {
      ...cleanTree(),
      ...pkg('packages/transport', { deps: ['serde', 'event', 'connect'] }),
      ...pkg('packages/event', { deps: ['common', 'serde'] }),
    };
    files['packages/transport/src/rdma.ts'] =
      "import { IBSocket } from '@ffnet/connect';\nimport type { Device } from '@ffnet/device';\nexport { IBSocket, type Device };\n";
    files['packages/device/src/err.ts'] = "import { TimeoutError } from '@ffnet/serde';\nexport { TimeoutError };\n";
    const forbidden = 'which it must not use (FORBIDDEN in tools/repo-checks)';
    expect(check(files)).toEqual([
      'install packages/server/package.json: installing @ffnet/server installs @ffnet/connect (@ffnet/server → @ffnet/transport → @ffnet/connect)',
      'install packages/server/package.json: installing @ffnet/server installs @ffnet/device (@ffnet/server → @ffnet/transport → @ffnet/connect → @ffnet/device)',
      'install packages/server/package.json: installing @ffnet/server installs koffi (@ffnet/server → @ffnet/transport → @ffnet/connect → @ffnet/device → koffi)',
      'install packages/transport/package.json: installing @ffnet/transport installs @ffnet/connect (@ffnet/transport → @ffnet/connect)',
      'install packages/transport/package.json: installing @ffnet/transport installs @ffnet/device (@ffnet/transport → @ffnet/connect → @ffnet/device)',
      'install packages/transport/package.json: installing @ffnet/transport installs koffi (@ffnet/transport → @ffnet/connect → @ffnet/device → koffi)',
      `layer packages/event/package.json: @ffnet/event depends on @ffnet/serde, ${forbidden}`,
      `layer packages/transport/package.json: @ffnet/transport depends on @ffnet/connect, ${forbidden}`,
      `layer packages/transport/src/rdma.ts:1: @ffnet/transport imports @ffnet/connect, ${forbidden}`,
      `layer packages/transport/src/rdma.ts:2: @ffnet/transport imports @ffnet/device, ${forbidden}`,
      "undeclared packages/device/src/err.ts:1: imports @ffnet/serde, which @ffnet/device's package.json does not declare",
      "undeclared packages/transport/src/rdma.ts:2: imports @ffnet/device, which @ffnet/transport's package.json does not declare",
    ]);
  });

  it('catches koffi in a tcp/unix package: a required dependency, or a static value import', () => {
    const files = { ...cleanTree() };
    files['packages/transport/src/creds.ts'] = "import koffi from 'koffi';\nexport { koffi };\n";
    // A plain (non-optional) peer is installed by npm 7+, so it counts too.
    const optional = { peerDependenciesMeta: { koffi: { optional: false } } };
    Object.assign(files, pkg('packages/listener', { deps: ['transport'], json: { optionalDependencies: { koffi: '3.3.4' } } }));
    Object.assign(files, {
      ...pkg('packages/worker', { deps: ['transport'], json: { peerDependencies: { koffi: '3.3.4' }, ...optional } }),
    });
    expect(check(files)).toEqual([
      'install packages/listener/package.json: installing @ffnet/listener installs koffi (@ffnet/listener → koffi)',
      'install packages/transport/src/creds.ts:1: @ffnet/transport loads koffi when it loads ("koffi"); it must run without it',
      'install packages/worker/package.json: installing @ffnet/worker installs koffi (@ffnet/worker → koffi)',
    ]);
  });

  it('catches a library or a tool depending on @ffnet/rdma, which only apps may', () => {
    const files = { ...cleanTree(), ...pkg('packages/server', { deps: ['transport', 'event', 'rdma'] }) };
    files['tools/checks/package.json'] = JSON.stringify({
      name: '@ffnet/checks',
      private: true,
      type: 'module',
      devDependencies: { '@ffnet/rdma': 'workspace:^' },
    });
    expect(check(files)).toEqual([
      'cycle packages/rdma, packages/server: dependency cycle among @ffnet/rdma, @ffnet/server',
      'install packages/server/package.json: installing @ffnet/server installs @ffnet/connect (@ffnet/server → @ffnet/rdma → @ffnet/connect)',
      'install packages/server/package.json: installing @ffnet/server installs @ffnet/device (@ffnet/server → @ffnet/rdma → @ffnet/device)',
      'install packages/server/package.json: installing @ffnet/server installs @ffnet/rdma (@ffnet/server → @ffnet/rdma)',
      'install packages/server/package.json: installing @ffnet/server installs koffi (@ffnet/server → @ffnet/rdma → @ffnet/device → koffi)',
      'layer packages/server/package.json: @ffnet/server depends on @ffnet/rdma, which is not below it',
      'layer packages/server/package.json: @ffnet/server depends on @ffnet/rdma, which only apps may use',
      'layer tools/checks/package.json: @ffnet/checks depends on @ffnet/rdma, which only apps may use',
    ]);
  });

  it("catches an import cycle among a package's src files, type-only and re-exports included, and prints it", () => {
    const files = cleanTree();
    Object.assign(files, {
      // worker-like knot: three files through a type-only import and a re-export, plus one more in the same set.
      'packages/transport/src/k1.ts': "import type { K2 } from './k2.js';\nexport type K1 = K2 | 1;\n",
      'packages/transport/src/k2.ts': "export type { K3 as K2 } from './k3.js';\n",
      'packages/transport/src/k3.ts': "import type { K1 } from './k1.js';\nimport './k4.js';\nexport type K3 = K1 | 3;\n",
      'packages/transport/src/k4.ts': "const m = () => import('./k3.js');\nexport { m };\n",
      'packages/server/src/self.ts': "export * from './self.js';\n",
      'apps/demo/src/a.ts': "import { b } from './b.js';\nexport const a = b;\n",
      'apps/demo/src/b.ts': "import { a } from './a.js';\nexport const b = 1;\nexport { a };\n",
    });
    expect(check(files)).toEqual([
      'cycle apps/demo: import cycle in @ffnet/demo: src/a.ts → src/b.ts → src/a.ts',
      'cycle packages/server: import cycle in @ffnet/server: src/self.ts → src/self.ts',
      'cycle packages/transport: import cycle in @ffnet/transport: src/k1.ts → src/k2.ts → src/k3.ts → src/k1.ts (the same cycle also holds src/k4.ts)',
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

describe('fileCycles', () => {
  const graph = (edges: Record<string, string[]>) => new Map(Object.entries(edges).map(([k, v]) => [k, new Set(v)]));

  it('finds none in a DAG with shared dependencies', () => {
    expect(fileCycles(graph({ a: ['b', 'c'], b: ['d'], c: ['d'], d: [] }))).toEqual([]);
  });

  it('gives the shortest cycle back to the first file of each knot, and names the rest of the knot', () => {
    const found = fileCycles(graph({ a: ['b'], b: ['c', 'x'], c: ['a'], x: ['b'], p: ['q'], q: ['p'], z: ['z'] }));
    expect(found).toEqual([
      { path: ['z', 'z'], others: [] },
      { path: ['a', 'b', 'c', 'a'], others: ['x'] },
      { path: ['p', 'q', 'p'], others: [] },
    ]);
  });
});
