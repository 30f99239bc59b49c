#!/usr/bin/env bash
# Builds keel-live, the live system keel switches to from a rescue system without ZFS (kexec)
# or boots by PXE: OUT/vmlinuz, OUT/initrd.img (the whole root, unpacked into RAM), OUT/manifest
# (kernel, OpenZFS, sizes and SHA-256 of both files, every package with its version).
#   build.sh [OUT]        (default: ./keel-live; run as root on Debian 12, about 10 minutes)
# Copy OUT beside keel in the rescue system (`keel-live/` next to the binary is found by itself,
# or pass --live OUT). The same root is the lab's rescue stand-in (scripts/lab/image.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${1:-keel-live}")
[ "$(id -u)" = 0 ] || { echo "building keel-live needs root (debootstrap, chroot)" >&2; exit 1; }
missing=""
for t in debootstrap cpio zstd; do command -v $t >/dev/null || missing="$missing $t"; done
if [ -n "$missing" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends$missing >/dev/null
fi
work=$(mktemp -d /var/tmp/keel-live-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
bash "$here/root.sh" "$work/rootfs" >/dev/null
bash "$here/pack.sh" "$work/rootfs" "$out"
echo "keel-live built in $(( $(date +%s) - start ))s: $out" >&2
head -5 "$out/manifest" >&2
