import { chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FfnetError, StatusCode } from '@ffnet/serde';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type BackendListener, type BackendSocket, Transport, unix, unixAddress } from '../src/index.js';

// Tests run as root (uid 0), which may chown files to any uid: that is how a squatter's socket is faked here.
const me = process.getuid!();
const OTHER = me === 65534 ? 65533 : 65534;
const dir = mkdtempSync(join(tmpdir(), 'ffnet-owner-'));
const listeners: BackendListener[] = [];
const sockets: BackendSocket[] = [];
let seq = 0;

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(listeners.splice(0).map((l) => l.close()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A listening unix socket in `where`, counting the connections it accepts. */
async function serve(where = dir): Promise<{ path: string; accepted: () => number }> {
  const path = join(where, `s${++seq}.sock`);
  let n = 0;
  listeners.push(
    await unix().listen(unixAddress(path), {}, (s) => {
      n++;
      s.destroy();
    }),
  );
  return { path, accepted: () => n };
}

async function failure(p: Promise<unknown>): Promise<FfnetError> {
  try {
    const s = await p;
    sockets.push(s as BackendSocket);
  } catch (e) {
    return e as FfnetError;
  }
  throw new Error('expected a rejection');
}

describe('unix connect with a required owner uid', () => {
  it('connects when the socket, its directory and the listening process all belong to that uid', async () => {
    const { path, accepted } = await serve();
    sockets.push(await unix().connect(unixAddress(path), { ownerUid: me }));
    await expect.poll(accepted).toBe(1);
  });

  it('refuses a socket whose owner is another uid before connecting, naming the path and both uids', async () => {
    const { path, accepted } = await serve();
    const err = await failure(unix().connect(unixAddress(path), { ownerUid: OTHER }));
    expect(err.code).toBe(StatusCode.PermissionDenied);
    expect(err.message).toContain(path);
    expect(err.message).toContain(`owned by uid ${me}, expected uid ${OTHER}`);
    expect(err.peer).toBe(`unix://${path}`);
    // The refused dial never reached the server: a later plain connect is the first one it sees.
    sockets.push(await unix().connect(unixAddress(path)));
    await expect.poll(accepted).toBe(1);
  });

  it('refuses a socket file chowned to another uid (a squatter) while expecting ours', async () => {
    const { path } = await serve();
    chownSync(path, OTHER, OTHER);
    const err = await failure(unix().connect(unixAddress(path), { ownerUid: me }));
    expect(err.code).toBe(StatusCode.PermissionDenied);
    expect(err.message).toContain(`owned by uid ${OTHER}, expected uid ${me}`);
  });

  it('checks the listening process (SO_PEERCRED), not only the file: a file chowned to the expected uid is not enough', async () => {
    // The file now claims uid OTHER, but the process that listens on it runs as `me`.
    const { path } = await serve();
    chownSync(path, OTHER, OTHER);
    const err = await failure(unix().connect(unixAddress(path), { ownerUid: OTHER }));
    expect(err.code).toBe(StatusCode.PermissionDenied);
    expect(err.message).toContain(`the process listening on ${path} is not uid ${OTHER}: it runs as uid ${me}`);
  });

  it('refuses a symlink to a socket and a directory owned by another uid', async () => {
    const { path } = await serve();
    const link = join(dir, `link${++seq}.sock`);
    symlinkSync(path, link);
    const viaLink = await failure(unix().connect(unixAddress(link), { ownerUid: me }));
    expect(viaLink.code).toBe(StatusCode.PermissionDenied);
    expect(viaLink.message).toContain('is a symlink');
    // Without the requirement the symlink is followed as before.
    sockets.push(await unix().connect(unixAddress(link)));

    const foreign = join(dir, `foreign${++seq}`);
    mkdirSync(foreign, { mode: 0o755 });
    const inForeign = await serve(foreign);
    chownSync(foreign, OTHER, OTHER);
    const err = await failure(unix().connect(unixAddress(inForeign.path), { ownerUid: me }));
    expect(err.code).toBe(StatusCode.PermissionDenied);
    expect(err.message).toContain(`directory ${foreign} of the unix socket is owned by uid ${OTHER}, expected uid ${me}`);
  });

  it('a Transport passes unixOwnerUid down: refused with PermissionDeniedError, accepted with the right uid', async () => {
    const { path } = await serve();
    const closes: (FfnetError | undefined)[] = [];
    const handler = { onFrame() {}, onClose: (_t: Transport, e: FfnetError | undefined) => closes.push(e) };
    const bad = Transport.connect(`unix://${path}`, handler, { unixOwnerUid: OTHER });
    await expect(bad.ready).rejects.toMatchObject({ code: StatusCode.PermissionDenied });
    const good = Transport.connect(`unix://${path}`, handler, { unixOwnerUid: me });
    await good.ready;
    await good.close();
  });
});
