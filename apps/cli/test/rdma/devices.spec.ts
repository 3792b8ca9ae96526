import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 120_000 }, (err, stdout) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout });
    });
  });
}

describe('ffnet devices on rxe0', () => {
  it('lists rxe0, its ACTIVE port and the RoCE v2 GID that ibv_devinfo -v shows', async () => {
    const r = await run(process.execPath, [MAIN, 'devices']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/hca_id:\s+rxe0/);
    expect(r.stdout).toMatch(/state:\s+PORT_ACTIVE|state:\s+ACTIVE/);
    const info = await run('ibv_devinfo', ['-v', '-d', 'rxe0']);
    expect(info.code).toBe(0);
    // ibv_devinfo prints e.g. "GID[  1]:		::ffff:10.0.2.15, RoCE v2"
    const roce = [...info.stdout.matchAll(/GID\[\s*(\d+)\]:\s+(\S+), RoCE v2/g)].map((m) => m[2]!);
    expect(roce.length).toBeGreaterThan(0);
    for (const gid of roce) expect(r.stdout).toContain(gid);

    const j = await run(process.execPath, [MAIN, 'devices', '--json']);
    expect(j.code).toBe(0);
    const report = JSON.parse(j.stdout) as { availability: { available: boolean }; devices: { name: string }[] };
    expect(report.availability.available).toBe(true);
    expect(report.devices.map((d) => d.name)).toContain('rxe0');
  });
});
