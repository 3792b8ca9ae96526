import { createRequire } from 'node:module';
import type { LibraryHandle } from 'koffi';

// koffi is an optional peer dependency of @ffnet/transport: loaded on first use, never at import, so that the
// package imports on machines where it (or its binary for the platform) is missing.
let loaded: { lib: LibraryHandle } | string | undefined;

/** Linux's C library through koffi, or why it cannot be had (not Linux, koffi missing). */
export function libc(): { lib: LibraryHandle } | string {
  if (loaded === undefined) {
    if (process.platform !== 'linux') {
      loaded = `not Linux (${process.platform})`;
    } else {
      try {
        const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
        loaded = { lib: koffi.load('libc.so.6') };
      } catch (e) {
        loaded = `koffi, an optional peer dependency of @ffnet/transport, cannot be loaded (${e instanceof Error ? e.message : String(e)})`;
      }
    }
  }
  return loaded;
}
