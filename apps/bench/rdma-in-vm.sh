#!/bin/bash
# pnpm bench:rdma — W1–W5 over rdma:// in the Soft-RoCE VM (tools/rxe-vm), ffnet next to perftest's ib_write_bw.
# A function check plus a ratio: under TCG emulation the absolute figures mean nothing, and both ends share rxe0.
# Not part of CI or test:all.  --no-build skips `turbo run build`; extra arguments go to dist/main.js.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
W=${RXE_VM_DIR:-/tmp/rxe-vm}
PT=$W/perftest
OUT=${FFNET_BENCH_RDMA_OUT:-$REPO/apps/bench/results/rdma-vm-latest.json}
BUILD=1
if [ "${1:-}" = --no-build ]; then BUILD=0; shift; fi

[ "$BUILD" = 1 ] && (cd "$REPO" && pnpm exec turbo run build --filter @ffnet/bench...)
bash "$REPO/tools/rxe-vm/build.sh"

# The VM image carries no perftest: fetch the Debian package and its libraries once, share them into the guest.
if [ ! -x "$PT/root/usr/bin/ib_write_bw" ]; then
  mkdir -p "$PT/debs" "$PT/lib"
  (cd "$PT/debs" && apt-get download perftest libibumad3 librdmacm1 libpci3)
  for d in "$PT"/debs/*.deb; do dpkg -x "$d" "$PT/root"; done
  # Whatever else it links (providers, libnl, libpci's libz/libudev) comes from this host, which runs the same
  # Debian release as the image; libc and libibverbs stay the guest's own.
  LD_LIBRARY_PATH="$PT/root/usr/lib/x86_64-linux-gnu" ldd "$PT/root/usr/bin/ib_write_bw" "$PT"/root/usr/lib/x86_64-linux-gnu/libpci.so.3 |
    awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u | grep -v -e '/libc\.so' -e '/libibverbs\.so' |
    while read -r l; do cp -L "$l" "$PT/lib/"; done
fi

ARGS=("$@")
# 3 s measured per run: under TCG a 1 MiB write takes tens of ms, and 1 s gives too few calls for a stable ratio.
[ ${#ARGS[@]} -eq 0 ] && ARGS=(--warmup 1 --measure 3 --transports rdma --workloads W1,W2,W3,W4,W5 --peers ffnet,ib_write_bw --reps 3)
# --baseline DIR (an older built checkout, run beside this one) must be visible in the guest too, at the same path.
SHARES=(--share "$REPO" --share "$PT")
for ((i = 0; i < ${#ARGS[@]}; i++)); do
  if [ "${ARGS[$i]}" = --baseline ] && [ $((i + 1)) -lt ${#ARGS[@]} ]; then
    ARGS[i + 1]=$(cd "${ARGS[$((i + 1))]}" && pwd)
    SHARES+=(--share "${ARGS[$((i + 1))]}")
  fi
done
# W5 runs batched, 4 descriptors per request with the answer posted behind its WRITEs (README "Issue 15: the
# response behind the WRITE, and batching"); FFNET_BENCH_W5_BATCH=1 FFNET_BENCH_W5_UNTIL=completed is the unbatched form.
GUEST_ENV="PATH=$PT/root/usr/bin:\$PATH LD_LIBRARY_PATH=$PT/lib FFNET_BENCH_RDMA_CONTROL=${FFNET_BENCH_RDMA_CONTROL:-0} FFNET_BENCH_W5_BATCH=${FFNET_BENCH_W5_BATCH:-4} FFNET_BENCH_W5_UNTIL=${FFNET_BENCH_W5_UNTIL:-posted} FFNET_BENCH_START_TIMEOUT_MS=${FFNET_BENCH_START_TIMEOUT_MS:-120000}"
# One VM boot; the pinning is off because both ends share the guest's CPUs and one rxe0 anyway. Nothing but the
# bench runs in the guest, so what it would count as other processes' CPU is rxe's own kernel work for the run
# (and the host's load never shows: TCG reports no steal): otherCpu is recorded but judges nothing here unless
# --max-other-cpu is passed again.
bash "$REPO/tools/rxe-vm/run.sh" "${SHARES[@]}" --timeout "${FFNET_BENCH_RDMA_TIMEOUT:-3600}" \
  --cmd "cd $REPO/apps/bench && $GUEST_ENV node dist/main.js --pin off --max-other-cpu off --out $OUT ${ARGS[*]}"
