#!/bin/bash
# test-rdma.sh (`pnpm test:rdma`): runs every workspace package's test/rdma/*.spec.ts inside the Soft-RoCE VM,
# all in one boot, against a real verbs device (rxe0). Builds the VM image when missing (tools/rxe-vm/build.sh,
# into $RXE_VM_DIR or /tmp/rxe-vm), builds the packages under test (turbo, cached), shares the repo over 9p at
# its own path (so pnpm's node_modules symlinks resolve) and prints a per-package summary.
# Exits non-zero when any suite fails, when no rdma test ran, or when the VM never reported.
#   --no-build   skip `turbo run build` (dist/ must be current)      FFNET_RDMA_FILTER=<dir substring> selects packages
# Needs root (qemu with 9p as root, image build), Debian 12; tools/setup-system.sh installs the host packages.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=1
for a in "$@"; do
  case "$a" in
    --no-build) BUILD=0;;
    *) echo "test-rdma.sh: unknown argument $a" >&2; exit 2;;
  esac
done

cd "$REPO"
pkgs=()
for d in packages/* apps/* tools/*; do
  [ -f "$d/package.json" ] || continue
  [ -n "${FFNET_RDMA_FILTER:-}" ] && [[ "$d" != *"$FFNET_RDMA_FILTER"* ]] && continue
  ls "$d"/test/rdma/*.spec.ts >/dev/null 2>&1 && pkgs+=("$d")
done
if ((${#pkgs[@]} == 0)); then
  echo "test-rdma: no package has test/rdma/*.spec.ts${FFNET_RDMA_FILTER:+ (filter $FFNET_RDMA_FILTER)}: nothing ran" >&2
  exit 1
fi
echo "test-rdma: suites in ${pkgs[*]}"
[ -d "$REPO/node_modules/vitest" ] || { echo "test-rdma: run pnpm install first (the VM uses the repo's node_modules)" >&2; exit 2; }

if [ "$BUILD" = 1 ]; then
  filters=()
  for d in "${pkgs[@]}"; do filters+=("--filter=./$d..."); done
  echo "test-rdma: building ${pkgs[*]} and their dependencies"
  pnpm exec turbo run build "${filters[@]}" --output-logs=errors-only || { echo "test-rdma: build failed" >&2; exit 1; }
fi

bash "$HERE/build.sh" || { echo "test-rdma: VM image build failed" >&2; exit 1; }

dirs=()
for d in "${pkgs[@]}"; do dirs+=("$REPO/$d"); done
W=${RXE_VM_DIR:-/tmp/rxe-vm}
bash "$HERE/run.sh" --share "$REPO" --timeout "${FFNET_RDMA_VM_TIMEOUT:-3600}" \
  --cmd "sh '$REPO/tools/rxe-vm/guest-suites.sh' '$REPO' ${dirs[*]}"
rc=$?

LOG=$W/last-run.log
done_line=$(grep -a 'FFNET-RDMA DONE' "$LOG" | tail -1 | sed 's/^\[[ 0-9.]*\] //')
echo
echo "================ pnpm test:rdma (Soft-RoCE VM) ================"
grep -a 'FFNET-RDMA-SUITE ' "$LOG" | sed 's/^\[[ 0-9.]*\] //'
if [ -z "$done_line" ]; then
  echo "test-rdma: FAILED: the VM never printed its summary (boot failure or timeout); see $LOG"
  exit 1
fi
echo "$done_line"
passed=$(sed -n 's/.*tests_passed=\([0-9]*\).*/\1/p' <<< "$done_line")
if [ "$rc" != 0 ] || [ "${passed:-0}" = 0 ]; then
  echo "test-rdma: FAILED (guest exit $rc, ${passed:-0} tests passed)"
  exit 1
fi
echo "test-rdma: OK"
