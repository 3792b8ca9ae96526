#!/usr/bin/env node
// @ts-check
// Generates src/generated/{schemas,services}.ts from the 3FS serde kit's services.json (the schemas 3FS's own
// reflection dumped). `generate(services)` is pure so the drift test can compare its output with the committed files.
//
//   node scripts/generate.mjs [--kit DIR]   (else FFNET_3FS_KIT, else the first shared/3fs-serde walking up from here)
//
// The output is already in biome's format: the committed files are byte-for-byte what this returns, so a formatter
// pass would be drift.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const WIDTH = 160;

/** Kit service name → exported definition name (3FS's C++ class names carry a `Serde` suffix the users never see). */
const SERVICE_NAMES = { Service: 'Echo', MetaSerde: 'Meta', StorageSerde: 'Storage' };

const PRIMITIVES = {
  bool: 's.bool',
  u8: 's.u8',
  u16: 's.u16',
  u32: 's.u32',
  u64: 's.u64',
  i8: 's.i8',
  i16: 's.i16',
  i32: 's.i32',
  i64: 's.i64',
  f32: 's.f32',
  f64: 's.f64',
  string: 's.string',
  void: 's.void',
  status: 's.status',
};

/** `fixed` types with a builder of their own in the DSL (their layout is known); other fixed types are raw bytes. */
const FIXED_BUILDERS = { Uuid: 's.uuid', Address: 's.address', Duration: 's.duration' };
/** `convert` types with a builder of their own; the others are encoded as their `as` type under their own name. */
const CONVERT_BUILDERS = { UtcTime: 's.utcTime' };
/**
 * `convert`s whose `string` carries binary bytes, not text: ChunkId is a packed (u64, u64) in 3FS, ibv_gid 16 raw
 * bytes. They become `s.bytes` (same wire as string) so their values are Uint8Array, not a lossy JS string.
 */
const BINARY_CONVERTS = new Set(['ChunkId', 'ibv_gid']);
/**
 * Plain `string` fields that carry arbitrary bytes (the DSL's `s.string` refuses bytes that are not UTF-8): the
 * conformance service's binary fields. 3FS's own string fields hold text (names, paths, tokens, config).
 */
const BINARY_FIELDS = new Set(['kit::conf::Everything.bin', 'kit::conf::BytesReq.data', 'kit::conf::BytesRsp.data', 'kit::conf::FillRsp.data']);

/** @param {string} name */
const lastSegment = (name) => (name.includes('::') ? name.slice(name.lastIndexOf('::') + 2) : name);
/** @param {string} name */
const namespaceOf = (name) => (name.includes('::') ? name.slice(0, name.lastIndexOf('::')) : '');
/** @param {string} s */
const pascal = (s) =>
  s
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');

/** @param {string} s */
const quote = (s) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
/** @param {string} s */
const jsString = (s) => {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '\\' || ch === "'") out += `\\${ch}`;
    else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `'${out}'`;
};
const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A JSON value as a one-line TS literal. */
function inlineLiteral(v) {
  if (v === null) return 'null';
  if (typeof v === 'string') return jsString(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(inlineLiteral).join(', ')}]`;
  const entries = Object.entries(v);
  if (entries.length === 0) return '{}';
  return `{ ${entries.map(([k, x]) => `${propKey(k)}: ${inlineLiteral(x)}`).join(', ')} }`;
}

/** @param {string} k */
const propKey = (k) => (IDENT.test(k) ? k : quote(k));

/**
 * A JSON value as a TS literal in biome's style: on one line when it fits from column `col` (with `tail` more
 * characters after it on that line), else one entry per line at `indent`.
 */
function literal(v, indent, col, tail = 1) {
  const inline = inlineLiteral(v);
  // biome (like prettier) always breaks an array of two or more objects or arrays that each have two or more entries.
  const crowded = Array.isArray(v) && v.length > 1 && v.every((x) => x !== null && typeof x === 'object' && Object.keys(x).length > 1);
  if (v === null || typeof v !== 'object' || (!crowded && col + inline.length + tail <= WIDTH)) return inline;
  const pad = ' '.repeat(indent + 2);
  if (Array.isArray(v)) return `[\n${v.map((x) => `${pad}${literal(x, indent + 2, indent + 2)},`).join('\n')}\n${' '.repeat(indent)}]`;
  const entries = Object.entries(v);
  return `{\n${entries.map(([k, x]) => `${pad}${propKey(k)}: ${literal(x, indent + 2, indent + 2 + propKey(k).length + 2)},`).join('\n')}\n${' '.repeat(indent)}}`;
}

/**
 * The value a field takes when nothing is said about it: what the DSL gives a field without an explicit default.
 * Fields whose kit default differs from it get one in the generated `defaults`.
 */
function naturalDefault(t, types) {
  if (typeof t === 'string') {
    if (t === 'bool') return false;
    if (t === 'string') return '';
    if (t === 'void') return null;
    if (t === 'status') return { code: 0, message: '' };
    if (t === 'u64' || t === 'i64') return '0';
    return 0;
  }
  switch (t.kind) {
    case 'vector':
    case 'set':
    case 'map':
      return [];
    case 'optional':
      return null;
    case 'alias':
      return naturalDefault(t.of, types);
    case 'convert':
      return naturalDefault(t.as, types);
    case 'enum':
      return t.repr === 'u64' || t.repr === 'i64' ? '0' : 0;
    case 'fixed':
      return { $hex: '00'.repeat(t.size) };
    case 'custom':
      return { addr: '0', size: '0', rkeys: [] };
    case 'variant':
      return { tag: t.alternatives[0].tag, value: naturalDefault(t.alternatives[0].type, types) };
    case 'result':
      return { ok: naturalDefault(t.of, types) };
    case 'pair':
      return [naturalDefault(t.first, types), naturalDefault(t.second, types)];
    case 'ref':
      return structDefault(types[t.name], types);
    default:
      throw new Error(`no natural default for ${JSON.stringify(t)}`);
  }
}

function structDefault(st, types) {
  /** @type {Record<string, unknown>} */
  const out = {};
  for (const level of st.levels) for (const f of level) out[f.name] = 'default' in f ? f.default : naturalDefault(f.type, types);
  return out;
}

/**
 * Deep equality of two defaults of type `t`, where Uuids always compare equal: 3FS's ClientId draws a random Uuid
 * in its default constructor, so the kit's recorded default is one random draw, and a generated constant would
 * pretend every client shares it. Uuids default to zero here instead.
 */
function sameDefault(a, b, t, types) {
  if (typeof t === 'object' && t.kind === 'fixed' && t.name === 'Uuid') return true;
  if (typeof t === 'object' && t.kind === 'ref') {
    const st = types[t.name];
    for (const level of st.levels) {
      for (const f of level) if (!sameDefault(a?.[f.name], b?.[f.name], f.type, types)) return false;
    }
    return true;
  }
  if (typeof t === 'object' && t.kind === 'alias') return sameDefault(a, b, t.of, types);
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * @param {{ source: string, services: any[], types: Record<string, any> }} kit services.json
 * @returns {{ 'schemas.ts': string, 'services.ts': string }}
 */
export function generate(kit) {
  const { types } = kit;
  const commit = /@([0-9a-f]{40})$/.exec(kit.source)?.[1];
  if (!commit) throw new Error(`services.json source ${JSON.stringify(kit.source)} does not name a 3FS commit`);

  // Named things: structs (plus the base classes that exist only as a level of a derived struct), enums, aliases,
  // converts and fixed types. Each gets one exported identifier: its short C++ name, or namespace-qualified when two
  // share one.
  /** @type {Map<string, { kind: string, name: string, short: string, ns: string, def: any, deps: Set<string> }>} */
  const named = new Map();
  const add = (key, kind, name, def) => {
    const prev = named.get(key);
    if (prev) {
      if (JSON.stringify(prev.def) !== JSON.stringify(def)) throw new Error(`${kind} ${name} has two different definitions`);
      return;
    }
    named.set(key, { kind, name, short: lastSegment(name), ns: namespaceOf(name), def, deps: new Set() });
  };

  const collect = (t, owner) => {
    if (typeof t === 'string') return;
    switch (t.kind) {
      case 'ref':
        if (!types[t.name]) throw new Error(`unknown struct ${t.name}`);
        owner?.deps.add(`struct:${t.name}`);
        return;
      case 'vector':
      case 'set':
      case 'optional':
      case 'result':
        return collect(t.of, owner);
      case 'map':
        collect(t.key, owner);
        return collect(t.value, owner);
      case 'pair':
        collect(t.first, owner);
        return collect(t.second, owner);
      case 'variant':
        for (const a of t.alternatives) collect(a.type, owner);
        return;
      case 'enum':
        add(`enum:${t.name}`, 'enum', t.name, t);
        owner?.deps.add(`enum:${t.name}`);
        return;
      case 'alias':
        collect(t.of, owner);
        add(`alias:${t.name}`, 'alias', t.name, t);
        owner?.deps.add(`alias:${t.name}`);
        return;
      case 'convert':
        if (CONVERT_BUILDERS[t.name]) return;
        collect(t.as, owner);
        add(`convert:${t.name}`, 'convert', t.name, t);
        owner?.deps.add(`convert:${t.name}`);
        return;
      case 'fixed':
        if (FIXED_BUILDERS[t.name]) return;
        add(`fixed:${t.name}`, 'fixed', t.name, { kind: 'fixed', name: t.name, size: t.size });
        owner?.deps.add(`fixed:${t.name}`);
        return;
      case 'custom':
        if (t.name !== 'RDMARemoteBuf') throw new Error(`unknown custom type ${t.name}`);
        return;
      default:
        throw new Error(`unexpected type kind ${t.kind}`);
    }
  };

  for (const name of Object.keys(types).sort()) {
    const st = types[name];
    if (st.kind !== 'struct' || st.levels.length !== st.levelClasses.length || st.levels.length === 0) {
      throw new Error(`${name}: not a struct with one field list per level class`);
    }
    const ns = namespaceOf(name);
    // Level i > 0 derives from level i - 1. A base class that is also a type of its own keeps its name and
    // definition; one that appears only as a level gets a struct named after its class in the derived namespace.
    let baseKey;
    for (let i = 0; i < st.levels.length; i++) {
      const last = i === st.levels.length - 1;
      const className = last ? name : `${ns}::${st.levelClasses[i]}`;
      const key = `struct:${className}`;
      const def = { fields: st.levels[i], base: baseKey, tag: last ? st.tag : undefined };
      if (last) {
        named.set(key, { kind: 'struct', name, short: lastSegment(name), ns, def, deps: new Set() });
      } else if (types[className]) {
        const own = types[className];
        if (JSON.stringify(own.levels) !== JSON.stringify(st.levels.slice(0, i + 1))) throw new Error(`${name}: base ${className} differs from its own definition`);
      } else {
        const fields = st.levels[i].map((f) => ({ ...f, default: undefined }));
        add(key, 'struct', className, { fields, base: baseKey, tag: undefined, synthetic: true });
      }
      const entry = named.get(key);
      if (entry && baseKey) entry.deps.add(baseKey);
      for (const f of st.levels[i]) collect(f.type, entry);
      baseKey = key;
    }
  }

  // Identifiers: short names, qualified by namespace where they collide with each other or with a reserved name.
  const reserved = new Set(['s', 'defineService', 'method', 'fromJson', 'Infer', ...kit.services.map((sv) => SERVICE_NAMES[sv.name] ?? sv.name), 'services']);
  const byShort = new Map();
  for (const [key, n] of named) {
    const base = pascal(n.short);
    byShort.set(base, [...(byShort.get(base) ?? []), key]);
  }
  /** @type {Map<string, string>} */
  const ident = new Map();
  for (const [base, keys] of byShort) {
    for (const key of keys) {
      const n = named.get(key);
      const qualified = pascal(n.ns.replace(/^hf3fs(::)?/, '').replace(/^kit::/, '')) + base;
      ident.set(key, keys.length > 1 || reserved.has(base) ? qualified : base);
    }
  }
  const seen = new Set();
  for (const [key, id] of ident) {
    if (seen.has(id)) throw new Error(`identifier ${id} (${key}) is taken twice`);
    seen.add(id);
  }

  /** A type as a DSL expression; `indent` is where its line starts (a variant of several alternatives breaks, as biome does). */
  const expr = (t, indent = 0) => {
    if (typeof t === 'string') {
      const p = PRIMITIVES[t];
      if (!p) throw new Error(`unknown primitive ${t}`);
      return p;
    }
    switch (t.kind) {
      case 'ref':
        return ident.get(`struct:${t.name}`);
      case 'vector':
        return `s.vector(${expr(t.of, indent)})`;
      case 'set':
        return `s.set(${expr(t.of, indent)})`;
      case 'optional':
        return `s.optional(${expr(t.of, indent)})`;
      case 'result':
        return `s.result(${expr(t.of, indent)})`;
      case 'map':
        return `s.map(${expr(t.key)}, ${expr(t.value)})`;
      case 'pair':
        return `s.pair(${expr(t.first)}, ${expr(t.second)})`;
      case 'variant': {
        const alts = t.alternatives.map((a) => `{ tag: ${quote(a.tag)}, type: ${expr(a.type, indent + 2)} }`);
        if (alts.length < 2) return `s.variant([${alts.join(', ')}])`;
        const pad = ' '.repeat(indent + 2);
        return `s.variant([\n${alts.map((a) => `${pad}${a},`).join('\n')}\n${' '.repeat(indent)}])`;
      }
      case 'enum':
        return ident.get(`enum:${t.name}`);
      case 'alias':
        return ident.get(`alias:${t.name}`);
      case 'convert':
        return CONVERT_BUILDERS[t.name] ?? ident.get(`convert:${t.name}`);
      case 'fixed':
        return FIXED_BUILDERS[t.name] ?? ident.get(`fixed:${t.name}`);
      case 'custom':
        return 's.rdmaRemoteBuf';
      default:
        throw new Error(`unexpected type kind ${t.kind}`);
    }
  };

  let usesFromJson = false;
  /** A field's default as a TS value: a literal for scalars, else the kit's JSON form read through the field's schema. */
  const defaultExpr = (f, indent, col) => {
    let t = f.type;
    while (typeof t === 'object' && t.kind === 'alias') t = t.of;
    if (typeof t === 'object' && t.kind === 'enum') t = t.repr;
    if (t === 'bool' || t === 'u8' || t === 'u16' || t === 'u32' || t === 'i8' || t === 'i16' || t === 'i32' || t === 'f32' || t === 'f64') {
      return String(f.default);
    }
    if (t === 'u64' || t === 'i64') return `${f.default}n`;
    usesFromJson = true;
    const head = `fromJson(${expr(f.type)}, `;
    return `${head}${col === undefined ? inlineLiteral(f.default) : literal(f.default, indent, col + head.length, 2)})`;
  };

  // Topological order: every const is declared before its first use (the kit's types have no cycles).
  const order = [];
  const state = new Map();
  const visit = (key, path) => {
    if (state.get(key) === 2) return;
    if (state.get(key) === 1) throw new Error(`reference cycle: ${[...path, key].join(' → ')}`);
    state.set(key, 1);
    for (const d of [...(named.get(key)?.deps ?? [])].sort()) visit(d, [...path, key]);
    state.set(key, 2);
    order.push(key);
  };
  const kindRank = { alias: 0, convert: 1, fixed: 2, enum: 3, struct: 4 };
  for (const key of [...named.keys()].sort((a, b) => kindRank[named.get(a).kind] - kindRank[named.get(b).kind] || a.localeCompare(b))) visit(key, []);

  const header = [
    `// Generated by packages/3fs/scripts/generate.mjs from the 3FS serde kit's services.json, which 3FS's own reflection`,
    `// dumped at github.com/deepseek-ai/3FS@${commit}. Do not edit: run \`pnpm --filter @ffnet/3fs generate\`.`,
  ];

  const body = [];
  for (const key of order) {
    const n = named.get(key);
    const id = ident.get(key);
    let init;
    if (n.kind === 'alias') init = `s.alias(${quote(n.name)}, ${expr(n.def.of)})`;
    else if (n.kind === 'convert') init = `s.alias(${quote(n.name)}, ${BINARY_CONVERTS.has(n.name) && n.def.as === 'string' ? 's.bytes' : expr(n.def.as)})`;
    else if (n.kind === 'fixed') init = `s.fixed(${quote(n.name)}, ${n.def.size})`;
    else if (n.kind === 'enum') {
      const repr = PRIMITIVES[n.def.repr];
      const wide = n.def.repr === 'u64' || n.def.repr === 'i64';
      const values = Object.fromEntries(Object.entries(n.def.values).map(([k, v]) => [k, wide ? `${v}n` : v]));
      const head = `export const ${id} = s.enum(${quote(n.name)}, ${repr}, `;
      init = `s.enum(${quote(n.name)}, ${repr}, ${literal(values, 0, head.length + 2).replace(/'(-?\d+n)'/g, '$1')})`;
    } else {
      const defaults = [];
      if (!n.def.synthetic) {
        for (const f of n.def.fields) {
          if (!('default' in f) || f.default === undefined) continue;
          if (sameDefault(f.default, naturalDefault(f.type, types), f.type, types)) continue;
          defaults.push(f);
        }
      }
      // Lines are built at one indent; with options the whole fields object is shifted by two below.
      const lines = n.def.fields.map((f) => `  ${propKey(f.name)}: ${f.type === 'string' && BINARY_FIELDS.has(`${n.name}.${f.name}`) ? 's.bytes' : expr(f.type, 2)},`);
      const opts = [];
      if (n.def.base) opts.push(`base: ${ident.get(n.def.base)}`);
      // C++ lets a derived class hide a base field with one of the same name; the DSL wants that said.
      const inherited = new Set();
      for (let b = n.def.base; b !== undefined; b = named.get(b)?.def.base) for (const f of named.get(b)?.def.fields ?? []) inherited.add(f.name);
      const redeclared = n.def.fields.filter((f) => inherited.has(f.name)).map((f) => quote(f.name));
      if (redeclared.length > 0) opts.push(`redeclares: [${redeclared.join(', ')}]`);
      if (n.def.tag !== undefined && n.def.tag !== lastSegment(n.name)) opts.push(`tag: ${quote(n.def.tag)}`);
      const fieldsObj = `{\n${lines.join('\n')}\n}`;
      if (opts.length === 0 && defaults.length === 0) {
        init = `s.struct(${quote(n.name)}, ${fieldsObj})`;
      } else {
        const inlineDefaults = defaults.map((f) => `${f.name}: ${defaultExpr(f, 4)}`);
        const optsInline = `{ ${[...opts, ...(defaults.length ? [`defaults: { ${inlineDefaults.join(', ')} }`] : [])].join(', ')} }`;
        let optsText;
        if (!optsInline.includes('\n') && 2 + optsInline.length + 1 <= WIDTH) optsText = optsInline;
        else {
          const dl = defaults.map((f) => {
            const inl = `${f.name}: ${defaultExpr(f, 6)}`;
            if (!inl.includes('\n') && 6 + inl.length + 1 <= WIDTH) return `      ${inl},`;
            return `      ${f.name}: ${defaultExpr(f, 6, 6 + f.name.length + 2)},`;
          });
          const dInline = `defaults: { ${inlineDefaults.join(', ')} }`;
          const dText = defaults.length === 0 ? [] : !dInline.includes('\n') && 4 + dInline.length + 1 <= WIDTH ? [`    ${dInline},`] : ['    defaults: {', ...dl, '    },'];
          optsText = `{\n${[...opts.map((o) => `    ${o},`), ...dText].join('\n')}\n  }`;
        }
        init = `s.struct(\n  ${quote(n.name)},\n  ${fieldsObj.replace(/\n/g, '\n  ')},\n  ${optsText},\n)`;
      }
    }
    body.push(`/** \`${n.name}\` */`, `export const ${id} = ${init};`, `export type ${id} = Infer<typeof ${id}>;`, '');
  }

  // biome's import order: names compared case-insensitively, a `type` marker ignored.
  const imports = [...(usesFromJson ? ['fromJson'] : []), 'type Infer', 's'];
  const schemas = [...header, '', `import { ${imports.join(', ')} } from '@ffnet/serde';`, '', ...body].join('\n');

  // Services: one defineService per kit service, with 3FS's service and method ids.
  const svc = [];
  const exported = [];
  const used = new Set();
  for (const sv of kit.services) {
    const name = SERVICE_NAMES[sv.name] ?? sv.name;
    exported.push(name);
    const methods = sv.methods.map((m) => {
      if (m.responsePayload?.kind !== 'result' || JSON.stringify(m.responsePayload.of) !== JSON.stringify(m.response)) {
        throw new Error(`${sv.name}.${m.name}: the response payload is not Result<response>`);
      }
      const req = expr(m.request);
      const rsp = expr(m.response);
      used.add(req);
      used.add(rsp);
      return `    ${m.name}: method(${m.id}, { request: ${req}, response: ${rsp} }),`;
    });
    svc.push(
      `/** \`${sv.cpp}\` (${sv.header}): service id ${sv.id}. */`,
      `export const ${name} = defineService({`,
      `  name: ${quote(name)},`,
      `  id: ${sv.id},`,
      '  methods: {',
      ...methods,
      '  },',
      '});',
      '',
    );
  }
  svc.push('/** Every service above, for lookups by name or id. */', `export const services = [${exported.join(', ')}] as const;`, '');
  const typeImports = [...used].filter((u) => IDENT.test(u)).sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : 0));
  const importLine = `import { ${typeImports.join(', ')} } from './schemas.js';`;
  const importText =
    importLine.length <= WIDTH ? importLine : `import {\n${typeImports.map((t) => `  ${t},`).join('\n')}\n} from './schemas.js';`;
  const services = [...header, '', `import { defineService, method } from '@ffnet/serde';`, importText, '', ...svc].join('\n');

  return { 'schemas.ts': schemas, 'services.ts': services };
}

function locateKit(argv) {
  const i = argv.indexOf('--kit');
  if (i >= 0 && argv[i + 1]) return resolve(argv[i + 1]);
  if (process.env.FFNET_3FS_KIT) return resolve(process.env.FFNET_3FS_KIT);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'shared', '3fs-serde');
    if (existsSync(join(candidate, 'services.json'))) return candidate;
    const up = dirname(dir);
    if (up === dir) throw new Error('the 3FS serde kit was not found: pass --kit DIR or set FFNET_3FS_KIT');
    dir = up;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const kit = locateKit(process.argv.slice(2));
  const out = generate(JSON.parse(readFileSync(join(kit, 'services.json'), 'utf8')));
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'generated');
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(out)) writeFileSync(join(dir, file), text);
  console.log(`generated ${Object.keys(out).join(', ')} in ${dir} from ${kit}`);
}
