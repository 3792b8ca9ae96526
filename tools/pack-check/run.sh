#!/usr/bin/env bash
# pnpm check:pack — what a tcp-only user installs. Packs the packages a tcp/unix server and client need, installs
# the tarballs with npm into an empty directory (third-party dependencies come from the npm registry), runs a tcp
# Server + Client echo call there, and fails if koffi, @ffnet/connect, @ffnet/device or @ffnet/rdma got installed.
# Prints the installed packages and their size. Needs the packages built (`pnpm build`).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PKGS=(common serde event transport worker listener server)
FORBIDDEN=(koffi @ffnet/connect @ffnet/device @ffnet/rdma)

work=$(mktemp -d /tmp/ffnet-pack-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tarballs" "$work/app"

for p in "${PKGS[@]}"; do
  [ -f "$REPO/packages/$p/dist/index.js" ] || { echo "check:pack: packages/$p is not built (run pnpm build)" >&2; exit 2; }
  # pnpm pack turns workspace:^ ranges into the packages' versions, as a publish would.
  (cd "$REPO/packages/$p" && pnpm pack --pack-destination "$work/tarballs" >/dev/null)
done

cd "$work/app"
echo '{ "name": "ffnet-pack-check", "private": true, "type": "module" }' > package.json
# All tarballs in one install, so each @ffnet dependency resolves to its tarball rather than the registry.
npm install --no-audit --no-fund --loglevel=error "$work"/tarballs/*.tgz

cat > echo.mjs <<'JS'
import { Client, EchoService, Server } from '@ffnet/server';
const server = new Server({ groups: [{ networkType: 'tcp', listener: { host: '127.0.0.1', port: 0 } }] });
await server.start();
const client = new Client({ timeoutMs: 5000 });
try {
  const address = server.addresses[0];
  const rsp = await client.stub(EchoService, address).echo({ str: 'tcp only' });
  if (rsp.str !== 'tcp only') throw new Error(`echo returned ${JSON.stringify(rsp)}`);
  console.log(`check:pack: echo over ${address} ok`);
} finally {
  await client.stop();
  await server.stop();
}
JS
node echo.mjs

echo "check:pack: installed packages:"
npm ls --all --parseable 2>/dev/null | sed "s|^$work/app/node_modules/||;s|^$work/app$||" | grep -v '^$' | sort -u | sed 's/^/  /'
echo "check:pack: node_modules is $(du -sh node_modules | cut -f1) ($(du -sb node_modules | cut -f1) bytes)"

bad=()
for f in "${FORBIDDEN[@]}"; do
  if [ -e "node_modules/$f" ] || find node_modules -path "*/node_modules/$f/package.json" -print -quit | grep -q .; then bad+=("$f"); fi
done
if ((${#bad[@]} > 0)); then
  echo "check:pack: FAILED: a tcp-only install contains ${bad[*]}" >&2
  exit 1
fi
echo "check:pack: OK (none of ${FORBIDDEN[*]} installed)"
