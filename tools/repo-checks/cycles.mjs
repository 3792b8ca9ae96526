#!/usr/bin/env node
// Import cycles between the files of one package's src/, type-only imports included: a type cycle still ties the
// modules together for every reader and refactor, so it counts. Prints each cycle and exits 1 if there is one.
//
//   node tools/repo-checks/cycles.mjs [repoRoot]
//
// Standalone (no dependencies) so that the repo-checks suite can call checkCycles() or run it as a script.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = /\.(?:[cm]?ts|tsx)$/;
// Static imports and re-exports (`import x from`, `import type {…} from`, `export * from`, `import './x'`) and
// dynamic import('…'). Comments are stripped first so an example in a comment is not an edge.
const SPECIFIERS = /(?:\bimport|\bexport)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

function listFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p));
    else if (SOURCE.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The file a relative specifier names (`./x.js` is `./x.ts` in source), or undefined. */
function resolveLocal(from, spec) {
  if (!spec.startsWith('.')) return undefined;
  const base = resolve(dirname(from), spec);
  const stem = base.replace(/\.[cm]?js$/, '');
  for (const c of [base, `${stem}.ts`, `${stem}.tsx`, `${stem}.mts`, `${stem}.cts`, join(base, 'index.ts')]) {
    if (existsSync(c) && statSync(c).isFile()) return c;
  }
  return undefined;
}

/** Strongly connected components with more than one file (or a file importing itself): Tarjan's algorithm. */
function cyclesOf(graph) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v), idx.get(w)));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? new Set()).has(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

/** One path around a component, for the message: a → b → … → a. */
function loopIn(scc, graph) {
  const members = new Set(scc);
  const start = scc[0];
  const path = [start];
  const seen = new Set([start]);
  let v = start;
  for (;;) {
    const next = [...(graph.get(v) ?? [])].filter((w) => members.has(w));
    const back = next.find((w) => w === start);
    if (back !== undefined && path.length > 1) return [...path, start];
    const fresh = next.find((w) => !seen.has(w));
    if (fresh === undefined) return [...path, back ?? next[0]];
    path.push(fresh);
    seen.add(fresh);
    v = fresh;
  }
}

/** Every cycle inside one package's src, as `{ pkg, files, loop }` with paths relative to `root`. */
export function checkCycles(root) {
  const found = [];
  for (const group of ['packages', 'apps', 'tools']) {
    const groupDir = join(root, group);
    if (!existsSync(groupDir)) continue;
    for (const name of readdirSync(groupDir)) {
      const src = join(groupDir, name, 'src');
      if (!existsSync(src) || !statSync(src).isDirectory()) continue;
      const graph = new Map();
      for (const file of listFiles(src)) {
        const edges = new Set();
        const text = stripComments(readFileSync(file, 'utf8'));
        for (const m of text.matchAll(SPECIFIERS)) {
          const target = resolveLocal(file, m[1] ?? m[2]);
          if (target !== undefined) edges.add(target);
        }
        graph.set(file, edges);
      }
      for (const scc of cyclesOf(graph)) {
        const rel = (f) => relative(root, f);
        found.push({ pkg: `${group}/${name}`, files: scc.map(rel), loop: loopIn(scc, graph).map(rel) });
      }
    }
  }
  return found;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..'));
  const cycles = checkCycles(root);
  for (const c of cycles) console.log(`import cycle in ${c.pkg}: ${c.loop.join(' → ')}${c.files.length > c.loop.length - 1 ? ` (component: ${c.files.join(', ')})` : ''}`);
  if (cycles.length > 0) process.exit(1);
  console.log('no import cycles inside any package');
}
