import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { StatusCode } from '@ffnet/serde';
import { describe, expect, it } from 'vitest';

// koffi is an optional peer dependency. This runs a process in which loading it fails (transport's
// fixtures/no-koffi.cjs), against the built package.
const dir = fileURLToPath(new URL('.', import.meta.url));
const preload = fileURLToPath(new URL('../../transport/test/fixtures/no-koffi.cjs', import.meta.url));

function run(): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--require', preload, 'fixtures/no-koffi.mjs'], { cwd: dir, timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`no-koffi scenario failed: ${error.message}; stderr: ${stderr}`));
      else resolve(JSON.parse(stdout.trim()) as Record<string, unknown>);
    });
  });
}

describe('without koffi', () => {
  it('imports, reports available() false with the reason, and refuses connect and listen with NotImplementedError', async () => {
    const out = await run();
    expect(out.available).toMatchObject({ ok: false });
    expect((out.available as { reason: string }).reason).toMatch(/koffi, an optional peer dependency of @ffnet\/shm, cannot be loaded \(simulated/);
    for (const what of ['connect', 'listen']) {
      expect(out[what]).toMatchObject({ name: 'NotImplementedError', code: StatusCode.NotImplemented });
      expect((out[what] as { message: string }).message).toMatch(/shm:\/\/ cannot be used here: koffi/);
    }
  });
});
