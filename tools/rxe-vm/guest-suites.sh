#!/bin/sh
# guest-suites.sh REPO PKGDIR...: runs inside the rxe VM (started by test-rdma.sh). For each package directory,
# runs its test/rdma suites with vitest (FFNET_RDMA_SUITE=1 switches vitest.shared.mjs to test/rdma/**), then
# prints one summary line per package and a final FFNET-RDMA DONE line that test-rdma.sh checks.
REPO=$1
shift
VITEST="$REPO/node_modules/vitest/vitest.mjs"
# TCG runs node ~10-30x slower than the host: per-test and per-hook limits are generous on purpose.
TEST_TIMEOUT=${FFNET_RDMA_TEST_TIMEOUT:-600000}

# Registered memory is pinned and counts against RLIMIT_MEMLOCK. We run as root (CAP_IPC_LOCK bypasses it), but
# raise it anyway so the suites never depend on that detail.
memlock=$(ulimit -l)
ulimit -l unlimited 2>/dev/null
echo "=== guest: kernel $(uname -r), node $(node --version), uid $(id -u), memlock limit $memlock -> $(ulimit -l)"
rdma link show
ibv_devices
export FFNET_RDMA_SUITE=1 CI=1 NO_COLOR=1 FORCE_COLOR=0 UV_THREADPOOL_SIZE=4
failed=0
suites=0
total_passed=0
total_failed=0
summary=""
for dir in "$@"; do
  name=$(sed -n 's/^[[:space:]]*"name":[[:space:]]*"\([^"]*\)".*/\1/p' "$dir/package.json" | head -1)
  log=/tmp/rdma-suite-$suites.log
  echo
  echo "=== $name ($dir): vitest run, FFNET_RDMA_SUITE=1"
  t0=$(cut -d' ' -f1 /proc/uptime)
  # Streamed to the console as it runs (a slow suite shows progress on the host) and kept for the counts.
  { (cd "$dir" && node "$VITEST" run --testTimeout="$TEST_TIMEOUT" --hookTimeout="$TEST_TIMEOUT" --no-file-parallelism --reporter=verbose) 2>&1
    echo $? > /tmp/rdma-suite.rc; } | tee "$log"
  rc=$(cat /tmp/rdma-suite.rc)
  t1=$(cut -d' ' -f1 /proc/uptime)
  # vitest's final "Tests  1 failed | 2 passed (3)" line.
  counts=$(awk '/^ *Tests  /{p=0; f=0; if (match($0, /[0-9]+ passed/)) p=substr($0, RSTART, RLENGTH-7); if (match($0, /[0-9]+ failed/)) f=substr($0, RSTART, RLENGTH-7)} END{print p+0, f+0}' "$log")
  passed=${counts% *}
  nfail=${counts#* }
  [ "$rc" = 0 ] && [ "$passed" -gt 0 ] && verdict=PASS || { verdict=FAIL; failed=$((failed + 1)); }
  suites=$((suites + 1))
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + nfail))
  line="FFNET-RDMA-SUITE $verdict $name: $passed passed, $nfail failed, vitest exit $rc, $(awk "BEGIN{printf \"%.1f\", $t1-$t0}")s"
  summary="$summary$line
"
done
echo
echo "=== rdma suites summary"
printf '%s' "$summary"
echo "FFNET-RDMA DONE suites=$suites failed=$failed tests_passed=$total_passed tests_failed=$total_failed"
[ "$failed" = 0 ] && [ "$total_passed" -gt 0 ]
