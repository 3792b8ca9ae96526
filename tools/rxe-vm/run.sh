#!/bin/bash
# run.sh: boot the Soft-RoCE VM (image from build.sh) and run one command in it, or open a shell.
#
#   tools/rxe-vm/run.sh --share /work/main --cmd 'cd /work/main && ibv_devinfo -v'
#   tools/rxe-vm/run.sh --shell                  # serial console shell with rxe0 up (poweroff -f, or Ctrl-a x)
#
# --share DIR       share DIR over 9p and mount it at the same path in the guest (repeatable)
# --cmd CMD         run CMD (sh) in the guest; run.sh exits with its status (255: it never reported one)
# --netdev NAME     dummy0 (default) or eth0 (virtio-net + qemu user networking)
# --mem 2G --smp 2 --timeout SEC (default 1800) --tcg | --kvm (default: kvm only with kvm_intel/kvm_amd)
# Output: the guest console, each line prefixed with host seconds since start; also in $RXE_VM_DIR/last-run.log.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
W=${RXE_VM_DIR:-/tmp/rxe-vm}
ACCEL=auto MODE=ctl NETDEV=dummy0 MEM=2G SMP=2 TIMEOUT=1800 CMD=
SHARES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --share) SHARES+=("$(readlink -f "$2")"); shift;;
    --cmd) CMD=$2; shift;;
    --shell) MODE=shell;;
    --netdev) NETDEV=$2; shift;;
    --mem) MEM=$2; shift;;
    --smp) SMP=$2; shift;;
    --timeout) TIMEOUT=$2; shift;;
    --tcg) ACCEL=tcg;;
    --kvm) ACCEL=kvm;;
    -h|--help) sed -n '2,13p' "$0"; exit 0;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2;;
  esac
  shift
done
[ -f "$W/ffnet-vmlinuz" ] && [ -f "$W/ffnet-initrd.cpio" ] || { echo "run.sh: no image in $W; run tools/rxe-vm/build.sh" >&2; exit 2; }
[ "$MODE" = shell ] || [ -n "$CMD" ] || { echo "run.sh: give --cmd or --shell" >&2; exit 2; }

if [ "$ACCEL" = auto ]; then
  # Only real hardware KVM. A /dev/kvm backed by kvm_pvm (nested "pagetable VM") cannot boot a stock Debian
  # kernel: it hangs after "Probing EDD". TCG is slow but always works.
  if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then ACCEL=kvm; else ACCEL=tcg; fi
fi
if [ "$ACCEL" = kvm ]; then ACC=(-accel kvm -cpu host); else ACC=(-accel tcg,thread=multi -cpu max); fi

NET=(-nic none)
[ "$NETDEV" = eth0 ] && NET=(-nic user,model=virtio-net-pci)

FS=()
APPEND="console=ttyS0 quiet loglevel=4 panic=-1 ffnet.mode=$MODE ffnet.netdev=$NETDEV"
i=0
for s in "${SHARES[@]}"; do
  FS+=(-virtfs "local,path=$s,mount_tag=share$i,security_model=none,id=share$i")
  APPEND="$APPEND ffnet.mnt.share$i=$s"
  i=$((i + 1))
done
CTL=
if [ "$MODE" = ctl ]; then
  CTL=$(mktemp -d "$W/ctl.XXXXXX")
  printf '%s\n' "$CMD" > "$CTL/cmd.sh"
  FS+=(-virtfs "local,path=$CTL,mount_tag=ctl,security_model=none,id=ctl")
fi

QEMU=(qemu-system-x86_64 -nographic -no-reboot -m "$MEM" -smp "$SMP" "${ACC[@]}"
      -kernel "$W/ffnet-vmlinuz" -initrd "$W/ffnet-initrd.cpio" -append "$APPEND" "${NET[@]}" "${FS[@]}")
echo "[rxe-vm] accel=$ACCEL netdev=$NETDEV mem=$MEM smp=$SMP timeout=${TIMEOUT}s"
[ "$MODE" = shell ] && exec "${QEMU[@]}"

LOG=$W/last-run.log
T0=$EPOCHREALTIME
timeout --foreground -k 10 "$TIMEOUT" "${QEMU[@]}" < /dev/null 2>&1 | while IFS= read -r line; do
  printf '[%7.2f] %s\n' "$(bc <<< "$EPOCHREALTIME - $T0")" "${line%$'\r'}"
done | tee "$LOG"
QRC=${PIPESTATUS[0]}
RC=$(cat "$CTL/rc" 2>/dev/null || echo 255)
rm -rf "$CTL"
echo "[rxe-vm] wall $(bc <<< "$EPOCHREALTIME - $T0")s, qemu rc=$QRC$([ "$QRC" = 124 ] && echo ' (timeout)'), command rc=$RC"
exit "$RC"
