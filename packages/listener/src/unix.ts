import { lstatSync } from 'node:fs';
import { lstat, mkdir, realpath, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FfnetError, ListenFailedError } from '@ffnet/serde';
import { unix, unixAddress } from '@ffnet/transport';

/** Our uid; -1 where there is none (not POSIX), which no file has. */
function myUid(): number {
  return process.getuid?.() ?? -1;
}

/** `mode` as ls would show its permission bits, for messages. */
function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** Group or other may create, rename or delete entries in a directory with these bits, sticky or not. */
const SHARED_WRITE = 0o022;

/**
 * The directory default socket paths live in: `$XDG_RUNTIME_DIR` when it is set and is a real directory of ours
 * that nobody else can write to, else `<os tmpdir>/ffnet-<uid>` (created 0700 and checked at setup, see
 * prepareSocketDirectory). Never a shared directory like /tmp itself, where another user could bind the name
 * first and receive our clients' requests.
 */
export function defaultUnixDir(): string {
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg?.startsWith('/')) {
    try {
      const st = lstatSync(xdg);
      if (st.isDirectory() && st.uid === myUid() && (st.mode & SHARED_WRITE) === 0) return xdg;
    } catch {
      // Unusable: fall back to our own directory under the temp dir.
    }
  }
  return join(tmpdir(), `ffnet-${myUid()}`);
}

/**
 * 3FS derives the path from the port (`/tmp/domain_socket.<port>`, a random port when 0). ffnet keeps that idea
 * with its own name, in a directory only we can write to (defaultUnixDir).
 */
export function defaultUnixPath(port: number): string {
  const n = port !== 0 ? port : 1 + Math.floor(Math.random() * 0x7fffffff);
  return join(defaultUnixDir(), `ffnet.${n}.sock`);
}

function osCode(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && typeof cur === 'object' && depth < 4; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

export interface SocketDirectoryOptions {
  /** The default directory: created 0700 if missing, and it must be a real directory (no symlink) owned by us. */
  create: boolean;
  /** Skip the checks (ListenerConfig.allowSharedDirectory). */
  allowShared: boolean;
}

/**
 * Checks that nobody but us (and root) can replace the socket at `path`: its directory must not be writable by
 * group or other (a sticky bit does not help: the name can still be taken before we bind it), must be owned by
 * us or root, and must not be /tmp. ListenFailedError naming the path and the reason otherwise.
 */
export async function prepareSocketDirectory(path: string, opts: SocketDirectoryOptions): Promise<void> {
  if (opts.allowShared) return;
  const dir = dirname(path);
  const refuse = (why: string, cause?: unknown): never => {
    throw new ListenFailedError(
      `cannot listen on unix://${path}: ${why}; use a private directory (0700, owned by this user) or set allowSharedDirectory`,
      cause === undefined ? undefined : { cause },
    );
  };
  const me = myUid();
  if (opts.create) {
    try {
      await mkdir(dir, { mode: 0o700 });
    } catch (e) {
      if (osCode(e) !== 'EEXIST') refuse(`creating the directory ${dir} failed (${(e as Error).message})`, e);
    }
  }
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    // Our own default directory must be the directory itself, not a symlink someone placed there first.
    st = opts.create ? await lstat(dir) : await stat(dir);
  } catch (e) {
    return refuse(`cannot check the directory ${dir} (${(e as Error).message})`, e);
  }
  if (st.isSymbolicLink()) refuse(`the directory ${dir} is a symlink`);
  if (!st.isDirectory()) refuse(`${dir} is not a directory`);
  if (st.uid !== me && (opts.create || st.uid !== 0)) refuse(`the directory ${dir} is owned by uid ${st.uid}, not by this user (uid ${me})`);
  if ((st.mode & SHARED_WRITE) !== 0) refuse(`the directory ${dir} is writable by group or other (mode ${octal(st.mode)}), who could take the name`);
  let real = dir;
  try {
    real = await realpath(dir);
  } catch {
    // stat just succeeded; a failure here leaves the name as given.
  }
  if (real === '/tmp') refuse('/tmp is shared by every user');
}

/**
 * Makes `path` free to bind. A socket file nobody accepts on (ECONNREFUSED) was left by a dead process and is
 * removed; a socket someone still accepts on, one owned by another user, or anything that is not a socket
 * (including a symlink, which is never followed) is never touched.
 */
export async function clearStaleSocket(path: string, signal?: AbortSignal): Promise<void> {
  const where = `unix://${path}`;
  let seen: { dev: number; ino: number };
  try {
    const st = await lstat(path);
    seen = { dev: st.dev, ino: st.ino };
    if (!st.isSocket()) {
      throw new ListenFailedError(`cannot listen on ${where}: the path exists and is not a socket, refusing to replace it`);
    }
    if (st.uid !== myUid()) {
      throw new ListenFailedError(`cannot listen on ${where}: the existing socket file is owned by uid ${st.uid}, not by this user, refusing to remove it`);
    }
  } catch (e) {
    if (FfnetError.is(e)) throw e;
    if (osCode(e) === 'ENOENT') return;
    throw new ListenFailedError(`cannot listen on ${where}: ${(e as Error).message}`, { cause: e });
  }
  let live = false;
  try {
    const probe = await unix().connect(unixAddress(path), { timeoutMs: 1000, ...(signal ? { signal } : {}) });
    probe.destroy();
    live = true;
  } catch (e) {
    const code = osCode((e as { cause?: unknown }).cause);
    if (code === 'ENOENT') return;
    if (code !== 'ECONNREFUSED') {
      throw new ListenFailedError(`cannot listen on ${where}: probing the existing socket file failed (${(e as Error).message})`, {
        cause: e,
      });
    }
  }
  if (live) throw new ListenFailedError(`cannot listen on ${where}: another process is accepting connections on it`);
  try {
    // The probe took a while: only the very file that was checked is removed.
    const again = await lstat(path);
    if (again.dev !== seen.dev || again.ino !== seen.ino) {
      throw new ListenFailedError(`cannot listen on ${where}: the socket file was replaced while it was being checked`);
    }
    await unlink(path);
  } catch (e) {
    if (FfnetError.is(e)) throw e;
    if (osCode(e) !== 'ENOENT') {
      throw new ListenFailedError(`cannot remove the stale socket file ${path}: ${(e as Error).message}`, { cause: e });
    }
  }
}
