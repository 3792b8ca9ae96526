import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENUM_PREFIXES, OPS, PORT_ATTR_COMPAT_SIZE, S } from '../src/layout.js';

// The binding's offsets against the real <infiniband/verbs.h>. This must run (CI installs gcc and the
// headers through tools/setup-system.sh); a machine without them fails here rather than skipping.
const source = fileURLToPath(new URL('./fixtures/verbs-layout.c', import.meta.url));
const SETUP_HINT = 'install gcc and the rdma-core headers first: sudo bash tools/setup-system.sh (needs gcc + libibverbs-dev)';

interface Truth {
  sizes: Map<string, number>;
  fields: Map<string, number>;
  ops: Map<string, number>;
  enums: Map<string, number>;
  misc: Map<string, number>;
}

let truth: Truth;
let dir: string;

beforeAll(() => {
  const gcc = spawnSync('gcc', ['--version'], { encoding: 'utf8' });
  if (gcc.error || gcc.status !== 0) throw new Error(`gcc is not available (${gcc.error?.message ?? gcc.stderr}); ${SETUP_HINT}`);
  dir = mkdtempSync(join(tmpdir(), 'ffnet-verbs-layout-'));
  const exe = join(dir, 'verbs-layout');
  const cc = spawnSync('gcc', ['-Wall', '-o', exe, source], { encoding: 'utf8' });
  if (cc.status !== 0) {
    const missing = /infiniband\/verbs\.h/.test(cc.stderr) ? 'infiniband/verbs.h not found. ' : '';
    throw new Error(`compiling ${source} failed. ${missing}${SETUP_HINT}\n${cc.stderr}`);
  }
  truth = { sizes: new Map(), fields: new Map(), ops: new Map(), enums: new Map(), misc: new Map() };
  for (const line of execFileSync(exe, { encoding: 'utf8' }).split('\n')) {
    const [kind, a, b, c] = line.split(' ');
    if (kind === 'S') truth.sizes.set(a!, Number(b));
    else if (kind === 'F') truth.fields.set(`${a}.${b}`, Number(c));
    else if (kind === 'O') truth.ops.set(a!, Number(b));
    else if (kind === 'E') truth.enums.set(a!, Number(b));
    else if (kind === 'P') truth.misc.set(a!, Number(b));
  }
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('verbs layout table vs <infiniband/verbs.h>', () => {
  it('every struct size and field offset matches, and every C fact has a table entry', () => {
    const mismatches: string[] = [];
    let checked = 0;
    const seen = new Set<string>();
    for (const [struct, fields] of Object.entries(S)) {
      for (const [field, value] of Object.entries(fields)) {
        const key = field === 'size' ? struct : `${struct}.${field}`;
        const c = field === 'size' ? truth.sizes.get(struct) : truth.fields.get(key);
        seen.add(key);
        checked++;
        if (c !== value) mismatches.push(`${key}: binding ${value}, C ${c ?? 'not printed'}`);
      }
    }
    const untracked = [...truth.sizes.keys(), ...truth.fields.keys()].filter((k) => !seen.has(k));
    expect(mismatches).toEqual([]);
    expect(untracked).toEqual([]);
    expect(checked).toBeGreaterThan(150);
  });

  it('the inline-verbs ops slots are where verbs.h reads them', () => {
    expect(Object.fromEntries(truth.ops)).toEqual({ ...OPS });
    expect(truth.misc.get('port_attr_compat')).toBe(PORT_ATTR_COMPAT_SIZE);
  });

  it('every enum value matches its IBV_* constant', () => {
    const mismatches: string[] = [];
    const seen = new Set<string>();
    for (const [prefix, table] of ENUM_PREFIXES) {
      for (const [k, v] of Object.entries(table)) {
        const name = prefix + k;
        seen.add(name);
        if (truth.enums.get(name) !== v) mismatches.push(`${name}: binding ${v}, C ${truth.enums.get(name) ?? 'not printed'}`);
      }
    }
    expect(mismatches).toEqual([]);
    expect([...truth.enums.keys()].filter((k) => !seen.has(k))).toEqual([]);
    expect(seen.size).toBeGreaterThan(100);
  });
});
