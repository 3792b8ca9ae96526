import { lstat, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InvalidArgError, PermissionDeniedError } from '@ffnet/serde';

/**
 * Before dialling `path` for a caller that requires the server to run as `uid`: the socket file must be a socket
 * (not a symlink to one) owned by `uid`, in a directory owned by `uid` or root. A missing file is left to the
 * connect to report. This only narrows the window: the peer credentials checked after connecting decide.
 */
export async function checkUnixOwner(path: string, uid: number): Promise<void> {
  if (!Number.isInteger(uid) || uid < 0 || uid > 0xffff_ffff) throw new InvalidArgError(`ownerUid must be a uid (an integer >= 0), got ${uid}`);
  const peer = `unix://${path}`;
  const dir = dirname(path);
  let d: Awaited<ReturnType<typeof stat>>;
  try {
    d = await stat(dir);
  } catch (e) {
    // Nothing to connect to either; the connect gives the usual ConnectFailedError.
    if ((e as { code?: string }).code === 'ENOENT') return;
    throw new PermissionDeniedError(`cannot check the directory ${dir} of the unix socket: ${(e as Error).message}`, { peer, cause: e });
  }
  if (d.uid !== uid && d.uid !== 0) {
    throw new PermissionDeniedError(`the directory ${dir} of the unix socket is owned by uid ${d.uid}, expected uid ${uid} (or root)`, { peer });
  }
  let s: Awaited<ReturnType<typeof lstat>>;
  try {
    s = await lstat(path);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return;
    throw new PermissionDeniedError(`cannot check the unix socket ${path}: ${(e as Error).message}`, { peer, cause: e });
  }
  if (s.isSymbolicLink()) throw new PermissionDeniedError(`the unix socket path ${path} is a symlink, refusing to follow it`, { peer });
  if (s.uid !== uid) throw new PermissionDeniedError(`the unix socket ${path} is owned by uid ${s.uid}, expected uid ${uid}`, { peer });
}
