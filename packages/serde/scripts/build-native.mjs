// Compiles native/crc32c.c into dist/crc32c.node with the system C compiler against the Node-API headers.
// Runs at install and before `tsc -b`. It never fails the install or the build: without a compiler, headers
// or a supported CPU architecture it prints one line and @ffnet/serde uses @node-rs/crc32 instead.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(pkg, 'native', 'crc32c.c');
const dist = join(pkg, 'dist');
const out = join(dist, 'crc32c.node');
// Read by src/crc.ts so crc32cImplementation() can say why the addon is missing.
const skipNote = join(dist, 'crc32c.skipped.txt');

const archFlags = { x64: [], arm64: ['-march=armv8-a+crc'] }[process.arch];
// Node resolves the addon's napi_* imports from its own binary; macOS linkers need to be told so.
const platformFlags = process.platform === 'darwin' ? ['-undefined', 'dynamic_lookup'] : [];

function skip(why) {
  const line = `@ffnet/serde: native CRC-32C not built (${why}); using the @node-rs/crc32 / JS fallback`;
  console.log(line);
  writeFileSync(skipNote, `${why}\n`);
  process.exit(0);
}

mkdirSync(dist, { recursive: true });
if (existsSync(out) && statSync(out).mtimeMs > statSync(source).mtimeMs) process.exit(0);
rmSync(skipNote, { force: true });

if (archFlags === undefined) skip(`no hardware CRC-32C path for ${process.arch}`);
if (process.platform === 'win32') skip('the build script does not drive MSVC');
const nodeInclude = process.env.npm_config_nodedir
  ? join(process.env.npm_config_nodedir, 'include', 'node')
  : join(dirname(process.execPath), '..', 'include', 'node');
if (!existsSync(join(nodeInclude, 'node_api.h'))) skip(`no Node-API headers at ${nodeInclude}`);

// CC may carry arguments of its own ("ccache gcc", "clang --target=…").
const [cc = 'cc', ...ccArgs] = (process.env.CC ?? '').trim().split(/\s+/).filter(Boolean);
// Written beside the target and renamed, so an interrupted compile never looks up to date.
const tmp = `${out}.${process.pid}.tmp`;
const args = [...ccArgs, '-O2', '-fPIC', '-shared', ...archFlags, ...platformFlags, '-I', nodeInclude, source, '-o', tmp];
const run = spawnSync(cc, args, { encoding: 'utf8' });
if (run.error) {
  skip(run.error.code === 'ENOENT' ? `C compiler '${cc}' not found` : `${cc}: ${run.error.message}`);
}
if (run.status !== 0) {
  rmSync(tmp, { force: true });
  const first = `${run.stderr}`.split('\n').find((l) => /error/i.test(l)) ?? `exit code ${run.status}`;
  skip(`${cc} failed: ${first.trim()}`);
}
renameSync(tmp, out);
