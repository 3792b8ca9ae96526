#!/bin/bash
# setup-system.sh: install every system package the ffnet test suites need (Debian 12, run as root).
# Idempotent: packages already installed are left alone, and apt-get update runs only when something is missing.
#   - gcc + libibverbs-dev: @ffnet/device's layout test compiles a C program against <infiniband/verbs.h>
#   - libibverbs1 + ibverbs-providers + ibverbs-utils + rdma-core: the verbs library, the rxe provider, ibv_devinfo
#   - qemu-system-x86, qemu-utils, busybox-static, cpio, kmod, bc: the Soft-RoCE VM of `pnpm test:rdma`
#   - openssl: @ffnet/transport's tls tests make their CA and certificates at test time
#   - iproute2: `ip` (listener tests' netns/veth) and `rdma` (rxe link setup inside the VM)
set -euo pipefail

PKGS=(
  gcc libc6-dev libibverbs-dev libibverbs1 ibverbs-providers ibverbs-utils rdma-core
  qemu-system-x86 qemu-utils busybox-static cpio kmod bc iproute2 ca-certificates openssl
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-system.sh: run as root (sudo bash tools/setup-system.sh)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null || ! grep -qs 'ID=debian' /etc/os-release; then
  echo "setup-system.sh: expects Debian 12 with apt-get; install the equivalents of: ${PKGS[*]}" >&2
  exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup-system.sh: all ${#PKGS[@]} packages already installed"
  exit 0
fi
echo "setup-system.sh: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup-system.sh: done"
