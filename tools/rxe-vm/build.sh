#!/bin/bash
# build.sh: build the Soft-RoCE test VM image: a stock Debian kernel plus an initramfs holding busybox, kmod,
# the rdma_rxe/ib_uverbs/9p/virtio modules, libibverbs with the rxe provider, ibverbs-utils, iproute2's `rdma`,
# and this host's node binary. The repo itself is not in the image: run.sh shares it over 9p.
#
# Output (never in the repo): $RXE_VM_DIR, default /tmp/rxe-vm:
#   ffnet-vmlinuz  ffnet-initrd.cpio  ffnet-image.stamp     (debs/ and ffnet-stage/ are download/extract caches)
# Usage: tools/rxe-vm/build.sh [--force]     Needs root (apt-get download, depmod), Debian 12 host, network.
# Idempotent: does nothing when the stamp matches (inputs: this script, init, node version, kernel version).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
W=${RXE_VM_DIR:-/tmp/rxe-vm}
FORCE=0
[ "${1:-}" = --force ] && FORCE=1
ARCH_LIB=x86_64-linux-gnu
T0=$(date +%s.%N)
log() { printf '[rxe-vm build %6.1fs] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*"; }

need=()
for c in qemu-system-x86_64 busybox cpio depmod modprobe bc ip rdma apt-get dpkg node; do command -v "$c" >/dev/null || need+=("$c"); done
# The initramfs has no libc for busybox: it must be the static build (package busybox-static).
{ ldd /bin/busybox 2>&1 || true; } | grep -q 'not a dynamic' || need+=(busybox-static)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ] && [ -x "$HERE/../setup-system.sh" ]; then
    log "missing host tools (${need[*]}); running tools/setup-system.sh"
    bash "$HERE/../setup-system.sh"
  else
    echo "missing host tools: ${need[*]}. Run: sudo bash tools/setup-system.sh" >&2
    exit 2
  fi
fi
command -v node >/dev/null || { echo "node is needed on the host (it is copied into the VM)" >&2; exit 2; }

mkdir -p "$W"
KVER=${KVER:-$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{sub("linux-image-","",$2); print $2; exit}')}
if [ -z "$KVER" ]; then
  apt-get update -qq
  KVER=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{sub("linux-image-","",$2); print $2; exit}')
fi
[ -n "$KVER" ] || { echo "cannot resolve the Debian kernel version (linux-image-amd64)" >&2; exit 1; }

NODE_BIN=$(readlink -f "$(command -v node)")
STAMP=$( { cat "$HERE/build.sh" "$HERE/init"; echo "$KVER"; "$NODE_BIN" --version; } | sha256sum | cut -c1-16)
if [ "$FORCE" = 0 ] && [ -f "$W/ffnet-initrd.cpio" ] && [ -f "$W/ffnet-vmlinuz" ] && [ "$(cat "$W/ffnet-image.stamp" 2>/dev/null)" = "$STAMP" ]; then
  log "image up to date ($W, kernel $KVER, stamp $STAMP)"
  exit 0
fi
log "building image: kernel $KVER, node $("$NODE_BIN" --version), into $W"

# ---- .debs: the kernel (modules) and rdma-core userspace of the same release as the host
DEBS=$W/debs
STAGE=$W/ffnet-stage
PKGS=(linux-image-$KVER libibverbs1 ibverbs-providers ibverbs-utils libnl-3-200 libnl-route-3-200)
mkdir -p "$DEBS"
missing=()
for p in "${PKGS[@]}"; do ls "$DEBS/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  log "apt-get download ${missing[*]}"
  (cd "$DEBS" && apt-get download "${missing[@]}" 2>&1 | grep -v 'Download is performed unsandboxed' || true)
  for p in "${missing[@]}"; do ls "$DEBS/${p}_"*.deb >/dev/null 2>&1 || { echo "download of $p failed" >&2; exit 1; }; done
fi
if [ ! -f "$STAGE/.done-$KVER" ]; then
  log "extracting debs"
  rm -rf "$STAGE"
  mkdir -p "$STAGE"
  for p in "${PKGS[@]}"; do dpkg -x "$(ls "$DEBS/${p}_"*.deb | head -1)" "$STAGE"; done
  depmod -b "$STAGE" "$KVER"   # the .deb ships no modules.dep
  touch "$STAGE/.done-$KVER"
fi

# ---- root tree
ROOT=$W/ffnet-root
rm -rf "$ROOT"
mkdir -p "$ROOT"
cd "$ROOT"
mkdir -p usr/bin usr/sbin usr/lib/$ARCH_LIB usr/lib64 etc proc sys dev tmp run mnt/ctl root var
ln -s usr/bin bin; ln -s usr/sbin sbin; ln -s usr/lib lib; ln -s usr/lib64 lib64
cp /bin/busybox usr/bin/busybox
for a in $(usr/bin/busybox --list); do [ -e "usr/bin/$a" ] || ln -s busybox "usr/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > etc/passwd
echo 'root:x:0:' > etc/group
printf '127.0.0.1 localhost\n::1 localhost\n' > etc/hosts
echo rxevm > etc/hostname

LDPATH=$STAGE/usr/lib/$ARCH_LIB:$STAGE/lib/$ARCH_LIB
put() {  # put SRC DEST: copy one file (following links) to DEST inside the root
  [ -e "$ROOT$2" ] && return 0
  mkdir -p "$(dirname "$ROOT$2")"
  cp -L "$1" "$ROOT$2"
}
put_elf() {  # put_elf SRC [DEST]: an executable or library plus the shared libraries it needs
  local src=$1 dst=${2:-${1#"$STAGE"}} lib
  put "$src" "$dst"
  while read -r lib; do
    [ -n "$lib" ] && put "$lib" "${lib#"$STAGE"}"
  done < <(LD_LIBRARY_PATH=$LDPATH ldd "$src" 2>/dev/null | awk '/=> \//{print $3} /^\t\/lib64\//{print $1}')
  if LD_LIBRARY_PATH=$LDPATH ldd "$src" 2>/dev/null | grep -q 'not found'; then
    echo "unresolved libraries for $src:" >&2
    LD_LIBRARY_PATH=$LDPATH ldd "$src" | grep 'not found' >&2
    exit 1
  fi
}
put /lib64/ld-linux-x86-64.so.2 /usr/lib64/ld-linux-x86-64.so.2

# kmod as modprobe (busybox's cannot read modules.dep aliases the way request_module needs)
put_elf /usr/bin/kmod /usr/bin/kmod
for a in modprobe insmod rmmod lsmod depmod modinfo; do rm -f "usr/sbin/$a" "usr/bin/$a"; ln -s ../bin/kmod "usr/sbin/$a"; done
# iproute2's ip and rdma (busybox ip lacks what `rdma link add` setups need)
rm -f usr/bin/ip usr/sbin/ip
put_elf "$(command -v ip)" /usr/sbin/ip
put_elf "$(command -v rdma)" /usr/bin/rdma

# rdma-core: libibverbs, the rxe provider and its driver file, ibv_devices/ibv_devinfo
for b in "$STAGE"/usr/bin/ibv_devices "$STAGE"/usr/bin/ibv_devinfo; do put_elf "$b"; done
for l in "$STAGE"/usr/lib/$ARCH_LIB/libibverbs.so.* "$STAGE"/usr/lib/$ARCH_LIB/libibverbs/librxe-*.so; do put_elf "$l"; done
mkdir -p etc/libibverbs.d
cp "$STAGE"/etc/libibverbs.d/rxe.driver etc/libibverbs.d/
ldconfig -r "$ROOT" 2>/dev/null || true

# ---- kernel modules: rxe + uverbs, virtio net/pci, dummy, 9p, and whatever they depend on
log "kernel modules"
MD=lib/modules/$KVER
mkdir -p "$ROOT/usr/$MD"
for m in rdma_rxe ib_uverbs virtio_pci virtio_net crc32_generic dummy 9p 9pnet_virtio; do
  modprobe -d "$STAGE" -S "$KVER" --show-depends "$m" 2>/dev/null | awk '$1=="insmod"{print $2}'
done | sort -u | while read -r ko; do
  rel=${ko#"$STAGE"/}; rel=${rel#usr/}
  mkdir -p "$ROOT/usr/$(dirname "$rel")"
  cp "$ko" "$ROOT/usr/$rel"
done
cp "$STAGE/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$ROOT/usr/$MD/" 2>/dev/null || true
depmod -b "$ROOT" "$KVER"

# ---- node: the host's binary, so the VM runs exactly what the host's node_modules were installed for
log "node $("$NODE_BIN" --version)"
put_elf "$NODE_BIN" /usr/bin/node
# Native addons in the repo's node_modules (esbuild, rollup, koffi) link against more of glibc than node does.
for l in libc libm libdl libpthread librt libresolv libutil libgcc_s libstdc++ libz; do
  for f in /lib/$ARCH_LIB/$l.so.* /usr/lib/$ARCH_LIB/$l.so.*; do
    [ -f "$f" ] && put_elf "$f" "/usr/lib/$ARCH_LIB/$(basename "$f")"
  done
done

cp "$HERE/init" init
chmod +x init

log "cpio"
cp "$STAGE/boot/vmlinuz-$KVER" "$W/ffnet-vmlinuz"
# Uncompressed: under TCG the guest would spend seconds decompressing.
(cd "$ROOT" && find . -print0 | cpio --null -o -H newc --quiet > "$W/ffnet-initrd.cpio.tmp")
mv "$W/ffnet-initrd.cpio.tmp" "$W/ffnet-initrd.cpio"
echo "$STAMP" > "$W/ffnet-image.stamp"
rm -rf "$ROOT"
log "done: $(du -h "$W/ffnet-initrd.cpio" | cut -f1) initrd, $(du -h "$W/ffnet-vmlinuz" | cut -f1) kernel in $W"
