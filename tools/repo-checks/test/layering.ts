// The repo's structural rules as a function over a directory tree, so the same checker runs on the real repo and
// on synthetic fixtures that prove it catches what it claims to.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * The layer order of packages/*, lowest first. A package may depend on packages before it, never after, minus the
 * exceptions in FORBIDDEN. `rdma` sits on top: it plugs the verbs stack into transport/worker/server from outside.
 * The adapters to other libraries' APIs (ADAPTERS) sit beside it, and use only the tcp/unix stack.
 */
export const LAYERS = ['common', 'serde', 'event', 'device', 'connect', 'transport', 'worker', 'listener', 'server', 'rdma'] as const;

/** What the RPC stack must be able to run without: the verbs stack and its FFI. */
const VERBS = ['connect', 'device'] as const;

/**
 * Lower layers a package still must not use. event needs the errors, not the wire format, so it takes them from
 * common. device does use serde, for one wire thing: RDMARemoteBuf's 3FS binary form as a codec extension. The
 * tcp/unix stack (transport up to server) runs without the verbs packages, which only rdma uses.
 */
export const FORBIDDEN: Readonly<Record<string, readonly string[]>> = {
  event: ['serde'],
  transport: VERBS,
  worker: VERBS,
  listener: VERBS,
  server: VERBS,
};

/**
 * Adapter packages (a metrics, logging or tracing library behind one of common's interfaces): beside rdma, above
 * server, and like the tcp/unix stack they never reach the verbs packages. Their runtime dependency is common's
 * interface; their tests run a real server (a devDependency).
 */
export const ADAPTERS = ['opentelemetry', 'pino', 'prometheus'] as const;

/**
 * Packages beside the chain: each may use only the packages listed, and no package may use it (apps may). `3fs` is
 * generated definitions of 3FS's services, on serde alone; nothing in the stack should depend on them.
 */
export const LEAVES: Readonly<Record<string, readonly string[]>> = {
  '3fs': ['common', 'serde'],
  // The same-host shared-memory backend: at run time it needs common, serde and transport only (koffi is an optional
  // peer, loaded lazily); its tests run a Server and Client over it (devDependency). Like rdma, only apps choose it.
  shm: ['common', 'serde', 'event', 'transport', 'worker', 'listener', 'server'],
};

/** Who may depend on whom among packages/*, derived from LAYERS, FORBIDDEN and ADAPTERS, plus the LEAVES. */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = Object.fromEntries([
  ...LAYERS.map((name, i) => [name, LAYERS.slice(0, i).filter((below) => !FORBIDDEN[name]?.includes(below))]),
  ...ADAPTERS.map((name) => [name, LAYERS.filter((n) => n !== 'rdma' && !(VERBS as readonly string[]).includes(n))]),
  ...Object.entries(LEAVES),
]);

/**
 * What a package must not make npm install: names that may not be reachable from it through required runtime
 * `dependencies` (its own, or those of any workspace package it depends on), and may not be loaded by a static value
 * import from its src. A type-only import, or a lazy load of an optional peer, keeps the package usable without them.
 * This is what lets a tcp-only user install transport, worker, listener and server without koffi (11 MB).
 */
export const NO_INSTALL: Readonly<Record<string, readonly string[]>> = Object.fromEntries(
  ['transport', 'worker', 'listener', 'server', 'shm', ...ADAPTERS].map((name) => [name, ['@ffnet/connect', '@ffnet/device', '@ffnet/rdma', 'koffi']]),
);

/** Packages that only apps may depend on: the plug-ins a deployment chooses, never a library's own choice. */
export const APPS_ONLY: readonly string[] = ['@ffnet/rdma'];

const SCOPE = '@ffnet/';
const GROUPS = ['packages', 'apps', 'tools'] as const;
const SOURCE_DIRS = ['src', 'test'] as const;
const SOURCE_EXT = /\.(?:[cm]?ts|tsx|[cm]?js)$/;
const DEP_FIELDS = ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies'] as const;

export type Rule = 'layer' | 'cycle' | 'internal' | 'undeclared' | 'hygiene' | 'install';

export interface Violation {
  rule: Rule;
  /** Repo-relative file (with line for imports), or the package directory. */
  where: string;
  message: string;
  /** For a rule about one package's dependency: the package, and what it depends on or imports (a cycle in a
   * package's own files names only the package). Lets a caller match a violation without parsing the message. */
  from?: string;
  to?: string;
}

interface Pkg {
  name: string;
  /** Repo-relative, e.g. `packages/event`. */
  rel: string;
  dir: string;
  group: (typeof GROUPS)[number];
  json: Record<string, unknown>;
}

interface ImportRef {
  specifier: string;
  file: string;
  line: number;
  /** `src` or `test`. */
  area: string;
  /** Erased by the compiler: `import type`, `export type`, `typeof import()`. It still counts for cycles. */
  typeOnly: boolean;
  /** Loaded when the code runs, not when the module loads: `import()` and `require()`. */
  lazy: boolean;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** JSON with the comments and trailing commas tsconfig files may carry. */
function readJsonc(file: string): Json {
  const text = readFileSync(file, 'utf8');
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      out += text.slice(start, i + 1);
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (c === '/' && text[i + 1] === '*') {
      i = text.indexOf('*/', i + 2);
      if (i < 0) break;
      i++;
    } else {
      out += c;
    }
  }
  return JSON.parse(out.replace(/,(\s*[}\]])/g, '$1')) as Json;
}

function listPackages(root: string): Pkg[] {
  const pkgs: Pkg[] = [];
  for (const group of GROUPS) {
    const base = join(root, group);
    if (!existsSync(base)) continue;
    for (const entry of readdirSync(base).sort()) {
      const dir = join(base, entry);
      const file = join(dir, 'package.json');
      if (!existsSync(file)) continue;
      const json = JSON.parse(readFileSync(file, 'utf8')) as Json;
      pkgs.push({ name: String(json.name), rel: `${group}/${entry}`, dir, group, json });
    }
  }
  return pkgs;
}

function* walk(dir: string): Generator<string> {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir).sort()) {
    if (entry === 'node_modules' || entry === 'dist') continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) yield* walk(path);
    else if (SOURCE_EXT.test(entry)) yield path;
  }
}

/** Every module specifier a file names: import/export … from, import(), import type, require(), import x = require(). */
function importsOf(file: string, root: string, area: string): ImportRef[] {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const refs: ImportRef[] = [];
  const add = (node: ts.Node | undefined, typeOnly = false, lazy = false) => {
    if (node === undefined || !ts.isStringLiteralLike(node)) return;
    const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
    refs.push({ specifier: node.text, file: relative(root, file), line, area, typeOnly, lazy });
  };
  const visit = (node: ts.Node): void => {
    // Only a clause-level `type` erases the import: under verbatimModuleSyntax `import { type A }` still loads it.
    if (ts.isImportDeclaration(node)) add(node.moduleSpecifier, node.importClause?.isTypeOnly === true);
    else if (ts.isExportDeclaration(node)) add(node.moduleSpecifier, node.isTypeOnly);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node.isTypeOnly);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal, true);
    else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const isImport = callee.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(callee) && callee.text === 'require';
      if (isImport || isRequire) add(node.arguments[0], false, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return refs;
}

/** `@ffnet/x` for `@ffnet/x/sub/path`, and the `./sub/path` part. */
function splitBare(spec: string): { name: string; subpath: string } {
  const parts = spec.split('/');
  const n = spec.startsWith('@') ? 2 : 1;
  const rest = parts.slice(n).join('/');
  return { name: parts.slice(0, n).join('/'), subpath: rest ? `./${rest}` : '.' };
}

function exportedSubpath(pkg: Pkg, subpath: string): boolean {
  const exp = pkg.json.exports;
  if (!isObject(exp)) return subpath === '.';
  for (const key of Object.keys(exp)) {
    if (key === subpath) return true;
    if (key.endsWith('*') && subpath.startsWith(key.slice(0, -1))) return true;
  }
  return false;
}

function depsOf(pkg: Pkg, fields: readonly string[] = DEP_FIELDS): Map<string, string> {
  const deps = new Map<string, string>();
  for (const field of fields) {
    const block = pkg.json[field];
    if (isObject(block)) for (const [k, v] of Object.entries(block)) deps.set(k, String(v));
  }
  return deps;
}

const short = (name: string): string => (name.startsWith(SCOPE) ? name.slice(SCOPE.length) : name);

function within(dir: string, path: string): boolean {
  return path === dir || path.startsWith(dir + sep);
}

export function checkRepo(root: string): Violation[] {
  const out: Violation[] = [];
  const pkgs = listPackages(root);
  const byName = new Map(pkgs.map((p) => [p.name, p]));
  const report = (rule: Rule, where: string, message: string, from?: string, to?: string) =>
    out.push({ rule, where, message, ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) });
  const edges = new Map<string, Set<string>>(pkgs.map((p) => [p.name, new Set<string>()]));

  for (const pkg of pkgs) {
    const deps = depsOf(pkg);
    const layered = pkg.group === 'packages';
    const allowed = layered ? ALLOWED[short(pkg.name)] : undefined;
    if (layered && allowed === undefined) {
      report('layer', pkg.rel, `${pkg.name} has no place in the layer order (add it to ALLOWED)`);
    }

    // Declared dependencies.
    for (const [dep, range] of deps) {
      if (!dep.startsWith(SCOPE)) continue;
      if (!byName.has(dep)) {
        report('hygiene', `${pkg.rel}/package.json`, `depends on ${dep}, which is not a workspace package`);
        continue;
      }
      edges.get(pkg.name)?.add(dep);
      if (range !== 'workspace:^') {
        report('hygiene', `${pkg.rel}/package.json`, `${dep} must be "workspace:^", not "${range}"`);
      }
      if (dep === pkg.name) report('cycle', `${pkg.rel}/package.json`, `${pkg.name} depends on itself`);
      else if (allowed !== undefined && !allowed.includes(short(dep))) {
        report('layer', `${pkg.rel}/package.json`, `${pkg.name} depends on ${dep}, ${whyNot(pkg.name, dep)}`, pkg.name, dep);
      }
      if (APPS_ONLY.includes(dep) && pkg.group !== 'apps') {
        report('layer', `${pkg.rel}/package.json`, `${pkg.name} depends on ${dep}, which only apps may use`, pkg.name, dep);
      }
    }

    // Imports in src/ and test/ (apps and packages; tools are exempt).
    if (pkg.group === 'tools') continue;
    for (const area of SOURCE_DIRS) {
      const files = [...walk(join(pkg.dir, area))];
      const fileEdges = new Map<string, Set<string>>(files.map((f) => [f, new Set<string>()]));
      for (const file of files) {
        for (const ref of importsOf(file, root, area)) {
          checkImport(pkg, ref, deps, allowed);
          const target = ref.specifier.startsWith('.') ? resolveSource(dirname(file), ref.specifier) : undefined;
          if (target !== undefined && fileEdges.has(target)) fileEdges.get(file)?.add(target);
        }
      }
      // Test files may lean on each other freely; the rule is about the shipped code.
      if (area !== 'src') continue;
      for (const { path, others } of fileCycles(fileEdges)) {
        const show = (fs: string[]) => fs.map((f) => relative(pkg.dir, f)).join(' → ');
        const more = others.length > 0 ? ` (the same cycle also holds ${others.map((f) => relative(pkg.dir, f)).join(', ')})` : '';
        report('cycle', pkg.rel, `import cycle in ${pkg.name}: ${show(path)}${more}`, pkg.name);
      }
    }
  }

  // What a tcp/unix user installs with a package: the closure of required runtime dependencies.
  for (const pkg of pkgs) {
    const banned = pkg.group === 'packages' ? NO_INSTALL[short(pkg.name)] : undefined;
    if (banned === undefined) continue;
    for (const [name, via] of installClosure(pkg, byName)) {
      if (!banned.includes(name)) continue;
      const chain = [...via, name].join(' → ');
      report('install', `${pkg.rel}/package.json`, `installing ${pkg.name} installs ${name} (${chain})`, pkg.name, name);
    }
  }

  function checkImport(pkg: Pkg, ref: ImportRef, deps: Map<string, string>, allowed: readonly string[] | undefined) {
    const where = `${ref.file}:${ref.line}`;
    const spec = ref.specifier;
    if (spec.startsWith('.') || isAbsolute(spec)) {
      const target = resolve(dirname(join(root, ref.file)), spec);
      if (within(pkg.dir, target)) return;
      const owner = pkgs.find((p) => within(p.dir, target));
      // A test may run a shared suite from a dependency's test/ (the transport compliance suite over rdma()):
      // test code is never published, so this exposes no internals.
      if (owner && deps.has(owner.name) && within(join(pkg.dir, 'test'), join(root, ref.file)) && within(join(owner.dir, 'test'), target)) return;
      report(
        'internal',
        where,
        owner ? `reaches into ${owner.name} by path ("${spec}"); import "${owner.name}" instead` : `reaches outside ${pkg.name} by path ("${spec}")`,
      );
      return;
    }
    const { name, subpath } = splitBare(spec);
    const target = byName.get(name);
    const banned = pkg.group === 'packages' ? NO_INSTALL[short(pkg.name)] : undefined;
    // Workspace packages are the layer rule's business; this catches a third-party module (koffi) loaded eagerly.
    if (target === undefined && banned?.includes(name) && ref.area === 'src' && !ref.typeOnly && !ref.lazy) {
      report('install', where, `${pkg.name} loads ${name} when it loads ("${spec}"); it must run without it`, pkg.name, name);
    }
    if (target === undefined) return;
    if (subpath !== '.' && (/^\.\/(?:src|dist)(?:\/|$)/.test(subpath) || !exportedSubpath(target, subpath))) {
      report('internal', where, `imports "${spec}", which is not a public entry of ${name}`);
    }
    if (name === pkg.name) {
      // A test may go through its own public entry; source that imports itself builds against its own stale dist.
      if (ref.area === 'src') report('cycle', where, `${pkg.name} imports itself ("${spec}")`);
      return;
    }
    edges.get(pkg.name)?.add(name);
    if (!deps.has(name)) {
      report('undeclared', where, `imports ${name}, which ${pkg.name}'s package.json does not declare`, pkg.name, name);
    }
    if (allowed !== undefined && !allowed.includes(short(name))) {
      report('layer', where, `${pkg.name} imports ${name}, ${whyNot(pkg.name, name)}`, pkg.name, name);
    }
    if (APPS_ONLY.includes(name) && pkg.group !== 'apps') {
      report('layer', where, `${pkg.name} imports ${name}, which only apps may use`, pkg.name, name);
    }
  }

  for (const scc of components(edges)) {
    report('cycle', scc.map((n) => byName.get(n)?.rel ?? n).join(', '), `dependency cycle among ${scc.join(', ')}`);
  }

  for (const pkg of pkgs) if (pkg.group === 'packages') checkManifest(pkg, byName, report);
  return out;
}

/** Why `dep` is not allowed under `name`: above it in LAYERS, or a lower layer FORBIDDEN to it. */
function whyNot(name: string, dep: string): string {
  const layers: readonly string[] = LAYERS;
  if (FORBIDDEN[short(name)]?.includes(short(dep))) return `which it must not use (FORBIDDEN in tools/repo-checks)`;
  if (!layers.includes(short(dep))) return `which has no place in the layer order`;
  return 'which is not below it';
}

const SOURCE_SUFFIXES: readonly (readonly [string, readonly string[]])[] = [
  ['.js', ['.ts', '.tsx', '.js']],
  ['.mjs', ['.mts', '.mjs']],
  ['.cjs', ['.cts', '.cjs']],
  ['', ['.ts', '.tsx', '.js', '/index.ts', '/index.js']],
];

/** The source file a relative specifier names, the way TypeScript's NodeNext resolution maps `./x.js` to `x.ts`. */
function resolveSource(fromDir: string, spec: string): string | undefined {
  const base = resolve(fromDir, spec);
  if (existsSync(base) && statSync(base).isFile()) return base;
  for (const [ext, candidates] of SOURCE_SUFFIXES) {
    if (ext !== '' && !base.endsWith(ext)) continue;
    const stem = base.slice(0, base.length - ext.length);
    for (const c of candidates) if (existsSync(stem + c)) return stem + c;
  }
  return undefined;
}

/**
 * One concrete cycle per strongly connected set of files (and per file importing itself), each as a path that ends
 * where it starts. The shortest cycle through the set's first file is shown: enough to see which import to cut,
 * and the rest of the set follows in the message if it holds more files.
 */
export function fileCycles(edges: Map<string, Set<string>>): { path: string[]; others: string[] }[] {
  const found: { path: string[]; others: string[] }[] = [];
  for (const file of [...edges.keys()].sort()) if (edges.get(file)?.has(file)) found.push({ path: [file, file], others: [] });
  for (const scc of components(edges)) {
    const inSet = new Set(scc);
    const start = scc[0] as string;
    // Breadth-first from start inside the set, back to start.
    const prev = new Map<string, string>();
    const queue = [start];
    let end: string | undefined;
    for (let i = 0; i < queue.length && end === undefined; i++) {
      const v = queue[i] as string;
      for (const w of [...(edges.get(v) ?? [])].sort()) {
        if (w === start) {
          end = v;
          break;
        }
        if (inSet.has(w) && !prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    const path = [start];
    for (let v = end; v !== undefined && v !== start; v = prev.get(v)) path.splice(1, 0, v);
    path.push(start);
    found.push({ path, others: scc.filter((f) => !path.includes(f)) });
  }
  return found;
}

/**
 * What npm puts in node_modules for a package: its `dependencies`, `optionalDependencies` (installed whenever they
 * build) and peers not marked optional in `peerDependenciesMeta` (npm 7+ installs those), followed through every
 * workspace package reached. Each name maps to the chain of packages that brings it.
 */
function installClosure(pkg: Pkg, byName: Map<string, Pkg>): Map<string, string[]> {
  const installed = (p: Pkg): string[] => {
    const meta = isObject(p.json.peerDependenciesMeta) ? p.json.peerDependenciesMeta : {};
    const peers = [...depsOf(p, ['peerDependencies']).keys()].filter((n) => {
      const m = meta[n];
      return !(isObject(m) && m.optional === true);
    });
    return [...depsOf(p, ['dependencies', 'optionalDependencies']).keys(), ...peers];
  };
  const via = new Map<string, string[]>();
  const queue: [Pkg, string[]][] = [[pkg, [pkg.name]]];
  while (queue.length > 0) {
    const [p, chain] = queue.shift() as [Pkg, string[]];
    for (const name of installed(p)) {
      if (via.has(name) || name === pkg.name) continue;
      via.set(name, chain);
      const next = byName.get(name);
      if (next !== undefined) queue.push([next, [...chain, name]]);
    }
  }
  return via;
}

/** Strongly connected components of more than one node (Tarjan): each is a set that depends on itself. */
function components(edges: Map<string, Set<string>>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const strongConnect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        strongConnect(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) found.push(scc.sort());
    }
  };
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) strongConnect(v);
  return found;
}

/** The package.json/tsconfig rules every publishable package follows (issue 2 §1). */
function checkManifest(pkg: Pkg, byName: Map<string, Pkg>, report: (rule: Rule, where: string, message: string) => void) {
  const where = `${pkg.rel}/package.json`;
  const bad = (message: string) => report('hygiene', where, message);
  const j = pkg.json;
  const dirName = pkg.rel.split('/')[1];
  if (j.name !== `${SCOPE}${dirName}`) bad(`name must be "${SCOPE}${dirName}", not ${JSON.stringify(j.name)}`);
  if (j.type !== 'module') bad('"type" must be "module" (ESM only)');

  const exp = j.exports;
  if (!isObject(exp) || !isObject(exp['.'])) bad('"exports" must map "." to a conditions object');
  else {
    for (const [key, value] of Object.entries(exp)) {
      if (isObject(value) && 'types' in value && Object.keys(value)[0] !== 'types') {
        bad(`exports["${key}"]: "types" must be the first condition`);
      }
    }
    if (!('types' in (exp['.'] as Json))) bad('exports["."] must have a "types" condition, first');
  }

  const files = j.files;
  if (!Array.isArray(files) || !files.includes('dist')) bad('"files" must be a list that includes "dist"');

  const engines = j.engines;
  const node = isObject(engines) ? engines.node : undefined;
  if (typeof node !== 'string' || !/^>=\s*20(?:\.\d+){0,2}$/.test(node.trim())) {
    bad(`engines.node must be ">=20", not ${JSON.stringify(node)}`);
  }

  for (const required of ['src/index.ts', 'tsconfig.json']) {
    if (!existsSync(join(pkg.dir, required))) report('hygiene', pkg.rel, `missing ${required}`);
  }

  // tsconfig references build what package.json says the package uses; the two must name the same packages.
  const runtime = [...depsOf(pkg, ['dependencies'])].map(([n]) => n).filter((n) => byName.has(n));
  const all = [...depsOf(pkg)].map(([n]) => n).filter((n) => byName.has(n));
  for (const [file, expected] of [
    ['tsconfig.json', runtime],
    ['tsconfig.test.json', all],
  ] as const) {
    const path = join(pkg.dir, file);
    if (!existsSync(path)) continue;
    const config = readJsonc(path);
    const opts = isObject(config.compilerOptions) ? config.compilerOptions : {};
    if (file === 'tsconfig.json' && opts.composite !== true) {
      report('hygiene', `${pkg.rel}/${file}`, '"compilerOptions.composite" must be true');
    }
    if (file === 'tsconfig.test.json' && !('references' in config)) continue;
    const refs = Array.isArray(config.references) ? config.references : [];
    const named = new Set<string>();
    for (const ref of refs) {
      const refPath = isObject(ref) && typeof ref.path === 'string' ? resolve(pkg.dir, ref.path) : '';
      const refDir = refPath.endsWith('.json') ? dirname(refPath) : refPath;
      const target = [...byName.values()].find((p) => p.dir === refDir);
      if (target) named.add(target.name);
      else report('hygiene', `${pkg.rel}/${file}`, `reference ${JSON.stringify(ref)} is not a workspace package`);
    }
    const missing = expected.filter((n) => !named.has(n));
    const extra = [...named].filter((n) => !expected.includes(n));
    if (missing.length || extra.length) {
      report(
        'hygiene',
        `${pkg.rel}/${file}`,
        `references disagree with package.json: ${[...missing.map((n) => `missing ${n}`), ...extra.map((n) => `extra ${n}`)].join(', ')}`,
      );
    }
  }
}
