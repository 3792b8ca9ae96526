// The repo's structural rules as a function over a directory tree, so the same checker runs on the real repo and
// on synthetic fixtures that prove it catches what it claims to.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * Who may depend on whom among packages/*: device ← connect ← transport ← worker ← listener ← server, with serde
 * and event below whoever uses them, serde depending on nothing of ours and event only on serde.
 */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  serde: [],
  event: ['serde'],
  device: ['serde', 'event'],
  connect: ['device', 'serde', 'event'],
  transport: ['connect', 'device', 'serde', 'event'],
  worker: ['transport', 'connect', 'device', 'serde', 'event'],
  listener: ['worker', 'transport', 'connect', 'device', 'serde', 'event'],
  server: ['listener', 'worker', 'transport', 'connect', 'device', 'serde', 'event'],
  // Plugs RDMA into the stack from above: nothing but apps may depend on it.
  rdma: ['server', 'listener', 'worker', 'transport', 'connect', 'device', 'serde', 'event'],
};

const SCOPE = '@ffnet/';
const GROUPS = ['packages', 'apps', 'tools'] as const;
const SOURCE_DIRS = ['src', 'test'] as const;
const SOURCE_EXT = /\.(?:[cm]?ts|tsx|[cm]?js)$/;
const DEP_FIELDS = ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies'] as const;

export type Rule = 'layer' | 'cycle' | 'internal' | 'undeclared' | 'hygiene';

export interface Violation {
  rule: Rule;
  /** Repo-relative file (with line for imports), or the package directory. */
  where: string;
  message: string;
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
  const add = (node: ts.Node | undefined) => {
    if (node === undefined || !ts.isStringLiteralLike(node)) return;
    const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
    refs.push({ specifier: node.text, file: relative(root, file), line, area });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const isImport = callee.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(callee) && callee.text === 'require';
      if (isImport || isRequire) add(node.arguments[0]);
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
  const report = (rule: Rule, where: string, message: string) => out.push({ rule, where, message });
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
        report('layer', `${pkg.rel}/package.json`, `${pkg.name} depends on ${dep}, which is not below it`);
      }
    }

    // Imports in src/ and test/ (apps and packages; tools are exempt).
    if (pkg.group === 'tools') continue;
    for (const area of SOURCE_DIRS) {
      for (const file of walk(join(pkg.dir, area))) {
        for (const ref of importsOf(file, root, area)) {
          checkImport(pkg, ref, deps, allowed);
        }
      }
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
        owner
          ? `reaches into ${owner.name} by path ("${spec}"); import "${owner.name}" instead`
          : `reaches outside ${pkg.name} by path ("${spec}")`,
      );
      return;
    }
    const { name, subpath } = splitBare(spec);
    const target = byName.get(name);
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
    if (!deps.has(name)) report('undeclared', where, `imports ${name}, which ${pkg.name}'s package.json does not declare`);
    if (allowed !== undefined && !allowed.includes(short(name))) {
      report('layer', where, `${pkg.name} imports ${name}, which is not below it`);
    }
  }

  for (const scc of cycles(edges)) {
    report('cycle', scc.map((n) => byName.get(n)?.rel ?? n).join(', '), `dependency cycle among ${scc.join(', ')}`);
  }

  for (const pkg of pkgs) if (pkg.group === 'packages') checkManifest(pkg, byName, report);
  return out;
}

/** Strongly connected components of more than one package (Tarjan): each is a set that depends on itself. */
function cycles(edges: Map<string, Set<string>>): string[][] {
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
