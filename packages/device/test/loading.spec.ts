import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FfnetError, StatusCode } from '@ffnet/common';
import { describe, expect, it } from 'vitest';
import { describeDevices, formatDevices, IBManager, openDevices, verbsAvailable } from '../src/index.js';

const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const REASONS = ['no-library', 'no-kernel-support', 'no-devices'];

/**
 * Imports the built package in a fresh node whose module loading is sabotaged by `preload` (a CommonJS
 * --require script), then prints verbsAvailable() and the outcome of openDevices() as JSON.
 */
function importWith(preload: string): { avail: { available: boolean; reason?: string; detail: string }; open: string } {
  const file = join(tmpdir(), `ffnet-device-preload-${process.pid}-${Math.random().toString(36).slice(2)}.cjs`);
  writeFileSync(file, preload);
  const script = `
    const d = await import(${JSON.stringify(entry)});
    let open;
    try { d.openDevices(); open = 'opened'; } catch (e) { open = e.name + ' ' + e.code; }
    const buf = d.RDMABuf.allocate(4096);
    buf.buffer.fill(1);
    buf.release();
    console.log(JSON.stringify({ avail: d.verbsAvailable(), open }));`;
  const r = spawnSync(process.execPath, ['--require', file, '--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe('loading without RDMA', () => {
  it('reports why verbs are unavailable here, with an explanation (verbs suites run in the rxe VM via pnpm test:rdma)', () => {
    const a = verbsAvailable();
    console.log(
      `verbsAvailable() on this host: ${JSON.stringify(a)}. The verbs suites (test/rdma) run against a real device in the Soft-RoCE VM: pnpm test:rdma`,
    );
    if (a.available) {
      // A host with a real device: the remaining checks are the VM suite's job.
      expect(a.devices).toBeGreaterThan(0);
      return;
    }
    expect(a.devices).toBe(0);
    expect(REASONS).toContain(a.reason);
    const explained: Record<string, RegExp> = {
      'no-library': /could not be loaded/,
      'no-kernel-support': /ENOSYS \(38\).*no RDMA \(uverbs\) support/,
      'no-devices': /no RDMA device|ibv_get_device_list failed/,
    };
    expect(a.detail).toMatch(explained[a.reason!]!);
  });

  it('openDevices fails with a typed error naming the reason, unless allowNoUsableDevices', () => {
    if (verbsAvailable().available) return;
    let caught: unknown;
    try {
      openDevices();
    } catch (e) {
      caught = e;
    }
    expect(FfnetError.is(caught)).toBe(true);
    const e = caught as FfnetError;
    expect([StatusCode.IBInitFailed, StatusCode.IBDeviceNotFound]).toContain(e.code);
    expect(e.message).toContain(verbsAvailable().reason!);
    expect(openDevices({ allowNoUsableDevices: true })).toEqual([]);
    expect(IBManager.start({ allowNoUsableDevices: true })).toEqual([]);
    IBManager.stop();
  });

  it('describeDevices never throws and formats the reason for `ffnet devices`', () => {
    const r = describeDevices();
    expect(r.availability).toEqual(verbsAvailable());
    if (!r.availability.available) {
      expect(r.devices).toEqual([]);
      expect(formatDevices(r)).toBe(`no RDMA devices (${r.availability.reason}): ${r.availability.detail}\n`);
    }
  });

  it('import never throws when koffi cannot load; verbsAvailable says no-library and RDMABuf still works', () => {
    const r = importWith(`
      const Module = require('node:module');
      const load = Module._load;
      Module._load = function (request, ...rest) {
        if (request === 'koffi') throw new Error('simulated: koffi native binary missing');
        return load.call(this, request, ...rest);
      };`);
    expect(r.avail.available).toBe(false);
    expect(r.avail.reason).toBe('no-library');
    expect(r.avail.detail).toContain('koffi');
    expect(r.avail.detail).toContain('simulated: koffi native binary missing');
    expect(r.open).toBe('IBInitFailedError 2015');
  });

  it('import never throws when libibverbs.so.1 is missing; verbsAvailable says no-library', () => {
    const r = importWith(`
      const Module = require('node:module');
      const load = Module._load;
      Module._load = function (request, ...rest) {
        const m = load.call(this, request, ...rest);
        if (request !== 'koffi' || m.__sabotaged) return m;
        const realLoad = m.load;
        m.load = (path, ...a) => {
          if (String(path).startsWith('libibverbs')) throw new Error('simulated: cannot open libibverbs.so.1');
          return realLoad.call(m, path, ...a);
        };
        m.__sabotaged = true;
        return m;
      };`);
    expect(r.avail).toEqual({ available: false, devices: 0, reason: 'no-library', detail: expect.stringContaining('libibverbs.so.1 could not be loaded') });
    expect(r.open).toBe('IBInitFailedError 2015');
  });
});
