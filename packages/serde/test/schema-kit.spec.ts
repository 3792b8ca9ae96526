// The one rule every kit-based test uses to find ../shared/3fs-serde, and its failure when the kit is absent.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { findKit, kitPaths, loadServices, loadVectors } from './fixtures/kit.js';

it('finds the kit by walking up from the repo root, and loads its files', () => {
  const dir = findKit(undefined);
  expect(dir.endsWith(join('shared', '3fs-serde'))).toBe(true);
  expect(kitPaths.peer.startsWith(kitPaths.dir)).toBe(true);
  expect(loadVectors().length).toBeGreaterThan(0);
  expect(Object.keys(loadServices().types).length).toBeGreaterThan(0);
});

it('FFNET_3FS_KIT wins, and a wrong one is a clear error', () => {
  expect(findKit(kitPaths.dir, '/')).toBe(kitPaths.dir);
  expect(() => findKit('/nonexistent/kit')).toThrow(/FFNET_3FS_KIT=\/nonexistent\/kit has no vectors\.json/);
});

it('a missing kit fails with what to do, never a skip', () => {
  const lonely = mkdtempSync(join(tmpdir(), 'ffnet-nokit-'));
  try {
    expect(() => findKit(undefined, lonely)).toThrow(/3FS serde conformance kit was not found: set FFNET_3FS_KIT/);
  } finally {
    rmSync(lonely, { recursive: true, force: true });
  }
});
