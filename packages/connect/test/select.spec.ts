import { describe, expect, it } from 'vitest';
import { type IBQueryDevice, type LocalPortCandidate, selectDevice } from '../src/index.js';

const IB = 1;
const ETH = 2;

const local = (dev: number, port: number, linkLayer: number, zones: string[], active = true): LocalPortCandidate => ({
  dev,
  devName: `mlx5_${dev}`,
  port,
  linkLayer,
  zones,
  active,
});
const remote = (dev: number, ports: { port: number; linkLayer: number; zones: string[] }[]): IBQueryDevice => ({ dev, devName: `srv${dev}`, ports });

const pick = (s: ReturnType<typeof selectDevice>) => (s ? `${s.local.devName}:${s.local.port}->${s.remote.devName}:${s.remote.port}` : null);

describe('selectDevice', () => {
  it('pairs ports of the same link layer that share a zone', () => {
    const l = [local(0, 1, ETH, ['a']), local(1, 1, ETH, ['b'])];
    const r = [remote(0, [{ port: 1, linkLayer: ETH, zones: ['b'] }])];
    for (let c = 0; c < 4; c++) expect(pick(selectDevice(l, r, c))).toBe('mlx5_1:1->srv0:1');
  });

  it('falls back to any zone only when allowUnknownZone', () => {
    const l = [local(0, 1, ETH, ['a'])];
    const r = [remote(3, [{ port: 2, linkLayer: ETH, zones: ['z'] }])];
    expect(pick(selectDevice(l, r, 0))).toBe('mlx5_0:1->srv3:2');
    expect(selectDevice(l, r, 0, { allowUnknownZone: false })).toBeNull();
  });

  it('never pairs different link layers or inactive local ports', () => {
    const r = [remote(0, [{ port: 1, linkLayer: IB, zones: ['a'] }])];
    expect(selectDevice([local(0, 1, ETH, ['a'])], r, 0)).toBeNull();
    expect(selectDevice([local(0, 1, IB, ['a'], false)], r, 0)).toBeNull();
    expect(selectDevice([], r, 0)).toBeNull();
    expect(selectDevice([local(0, 1, IB, ['a'])], [], 0)).toBeNull();
  });

  it('round-robins over the matching pairs with the counter', () => {
    const l = [local(0, 1, ETH, ['a']), local(1, 1, ETH, ['a'])];
    const r = [remote(0, [{ port: 1, linkLayer: ETH, zones: ['a'] }]), remote(1, [{ port: 1, linkLayer: ETH, zones: ['a'] }])];
    const seen = [0, 1, 2, 3, 4, 5, 6, 7].map((c) => pick(selectDevice(l, r, c)));
    expect(new Set(seen.slice(0, 4)).size).toBe(4);
    expect(seen.slice(4)).toEqual(seen.slice(0, 4));
    // Large and negative counters still pick a valid pair.
    expect(seen).toContain(pick(selectDevice(l, r, 2 ** 31 + 3)));
    expect(seen).toContain(pick(selectDevice(l, r, -5)));
  });

  it('prefers InfiniBand pairs when there are any, unless told not to', () => {
    const l = [local(0, 1, IB, ['a']), local(1, 1, ETH, ['a'])];
    const r = [
      remote(0, [
        { port: 1, linkLayer: IB, zones: ['a'] },
        { port: 2, linkLayer: ETH, zones: ['a'] },
      ]),
    ];
    for (let c = 0; c < 5; c++) expect(selectDevice(l, r, c)!.linkLayer).toBe(IB);
    const both = [0, 1].map((c) => selectDevice(l, r, c, { preferIB: false })!.linkLayer);
    expect(both).toEqual([IB, ETH]);
  });

  it('uses the zone-matching pairs before considering the others', () => {
    const l = [local(0, 1, ETH, ['a']), local(1, 1, ETH, ['b'])];
    const r = [remote(0, [{ port: 1, linkLayer: ETH, zones: ['a'] }])];
    for (let c = 0; c < 4; c++) expect(pick(selectDevice(l, r, c))).toBe('mlx5_0:1->srv0:1');
  });
});
