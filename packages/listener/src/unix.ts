import { lstat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FfnetError, ListenFailedError } from '@ffnet/serde';
import { getBackend, unixAddress } from '@ffnet/transport';

/**
 * 3FS derives the path from the port (`/tmp/domain_socket.<port>`, a random port when 0). ffnet keeps that idea
 * under the OS temp dir with its own name, so two stacks on one host do not fight over the same files.
 */
export function defaultUnixPath(port: number): string {
  const n = port !== 0 ? port : 1 + Math.floor(Math.random() * 0x7fffffff);
  return join(tmpdir(), `ffnet.${n}.sock`);
}

function osCode(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && typeof cur === 'object' && depth < 4; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Makes `path` free to bind. A socket file nobody accepts on (ECONNREFUSED) was left by a dead process and is
 * removed; a socket someone still accepts on, or anything that is not a socket, is never touched.
 */
export async function clearStaleSocket(path: string, signal?: AbortSignal): Promise<void> {
  const where = `unix://${path}`;
  try {
    const st = await lstat(path);
    if (!st.isSocket()) {
      throw new ListenFailedError(`cannot listen on ${where}: the path exists and is not a socket, refusing to replace it`);
    }
  } catch (e) {
    if (FfnetError.is(e)) throw e;
    if (osCode(e) === 'ENOENT') return;
    throw new ListenFailedError(`cannot listen on ${where}: ${(e as Error).message}`, { cause: e });
  }
  let live = false;
  try {
    const probe = await getBackend('unix').connect(unixAddress(path), { timeoutMs: 1000, ...(signal ? { signal } : {}) });
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
    await unlink(path);
  } catch (e) {
    if (osCode(e) !== 'ENOENT') {
      throw new ListenFailedError(`cannot remove the stale socket file ${path}: ${(e as Error).message}`, { cause: e });
    }
  }
}
