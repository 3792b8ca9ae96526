// Every struct of 3FS's real services (services.json, dumped by 3FS's reflection) through fromNeutral: the
// recorded defaults are what defaultOf gives and what a decoder keeps for empty tables, and they round-trip.
import { describe, expect, it } from 'vitest';
import { decode3fs, defaultOf, encode3fs, fromNeutral, type Schema, type StructSchema, toJson } from '../src/index.js';
import { loadServices } from './fixtures/kit.js';

const kit = loadServices();
const names = Object.keys(kit.types);
const build = (t: unknown): Schema => fromNeutral(t, kit.types, { strings: 'bytes' });

it('the kit has its 214 struct types and 8 services with 73 methods', () => {
  expect(names.length).toBe(214);
  expect(kit.services.length).toBe(8);
  expect(kit.services.reduce((n, svc) => n + svc.methods.length, 0)).toBe(73);
});

describe('services.json methods', () => {
  for (const svc of kit.services) {
    it(`${svc.name} (${svc.id}): every request, response and response payload builds and has a default`, () => {
      for (const m of svc.methods) {
        for (const t of [m.request, m.response, m.responsePayload]) {
          const sc = build(t);
          expect(decode3fs(sc, encode3fs(sc, defaultOf(sc))), `${svc.name}.${m.name}`).toEqual(defaultOf(sc));
        }
      }
    });
  }
});

describe('services.json types', () => {
  for (const name of names) {
    const def = kit.types[name];
    if (!def) continue;
    const withDefaults = def.levels.flat().filter((f) => 'default' in f);
    it(`${name}: default value matches the recorded defaults and round-trips`, () => {
      const sc = build(def) as StructSchema;
      const value = defaultOf(sc);
      const json = toJson(sc, value) as Record<string, unknown>;
      for (const f of withDefaults) expect(json[f.name], f.name).toEqual(f.default);
      const wire = encode3fs(sc, value);
      expect(toJson(sc, decode3fs(sc, wire))).toEqual(json);
      // Empty tables: every field is missing, so a decoder keeps every default.
      expect(sc.levels.length).toBe(def.levels.length);
      const empty = new Uint8Array(sc.levels.length);
      expect(toJson(sc, decode3fs(sc, empty))).toEqual(json);
    });
  }
});
