import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { StatusCode } from '@ffnet/serde';
import { describe, expect, it } from 'vitest';

// koffi is an optional peer dependency: a tcp/unix install may not have it. This runs a process in which loading
// it fails (fixtures/no-koffi.cjs), against the built package.
const dir = fileURLToPath(new URL('.', import.meta.url));

function run(): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--require', './fixtures/no-koffi.cjs', 'fixtures/no-koffi.mjs'], { cwd: dir, timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`no-koffi scenario failed: ${error.message}; stderr: ${stderr}`));
      else resolve(JSON.parse(stdout.trim()) as Record<string, unknown>);
    });
  });
}

describe('without koffi', () => {
  it('unix works, peer credentials are unknown, and an owner check fails closed saying why', async () => {
    const out = await run();
    expect(out.echoed).toBe('no koffi');
    // malloc stays glibc's, and the state says why (allocator.ts).
    expect(out.allocator).toMatchObject({ tuned: false });
    expect((out.allocator as { reason: string }).reason).toMatch(/^koffi, an optional peer dependency of @ffnet\/transport, cannot be loaded/);
    // Unknown, never "local": code granting trust by credentials sees undefined.
    expect(out.peerCredentials).toBeNull();
    expect(out.ownerCheck).toMatchObject({ name: 'PermissionDeniedError', code: StatusCode.PermissionDenied });
    expect((out.ownerCheck as { message: string }).message).toMatch(
      /SO_PEERCRED\) cannot be read here: koffi, an optional peer dependency of @ffnet\/transport, cannot be loaded \(simulated/,
    );
  });
});
