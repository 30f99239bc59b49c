#!/usr/bin/env bash
# Packs a keel-live root (scripts/live/root.sh) into what the kernel boots: OUT/vmlinuz and
# OUT/initrd.img (the whole root as a zstd-compressed cpio, unpacked into RAM at boot), and
# OUT/manifest (kernel, OpenZFS, sizes, SHA-256 of both files, the package list). What an
# install does not need stays out: compilers and headers (the DKMS build is done), /usr/src,
# documentation, locales, and kernel modules for graphics, sound, media, wireless and the like.
# keel adds /init (keel itself) and the node's configuration as a second archive at the switch.
#   pack.sh ROOTFS OUT
# File order and owners are fixed (sorted, root, cpio --reproducible), so the same root tree
# packs to the same bytes; the files keep their own times (a new debootstrap is a new tree).
set -euo pipefail
rootfs=${1:?usage: pack.sh ROOTFS OUT}
out=${2:?usage: pack.sh ROOTFS OUT}
mkdir -p "$out"
start=$(date +%s)
kver=$(ls "$rootfs/lib/modules" | sort -V | tail -1)
# usr-merged roots have the modules under usr/lib (lib is a link to it)
if [ -L "$rootfs/lib" ]; then modules=usr/lib/modules/$kver; else modules=lib/modules/$kver; fi
mods=$modules/kernel
list=$(mktemp)
(cd "$rootfs" && find . \
  \( -path ./usr/src -o -path ./usr/include -o -path ./usr/share/doc -o -path ./usr/share/man -o -path ./usr/share/info \
     -o -path ./usr/share/locale -o -path ./usr/lib/gcc -o -path ./usr/libexec/gcc -o -path ./var/lib/dkms -o -path ./var/cache/apt \
     -o -path ./boot -o -path "./$modules/build" -o -path "./$modules/source" \
     -o -path ./usr/lib/x86_64-linux-gnu/perl-base/unicore/TestProp.pl \
     -o -path "./$mods/drivers/gpu" -o -path "./$mods/sound" -o -path "./$mods/drivers/media" -o -path "./$mods/drivers/net/wireless" \
     -o -path "./$mods/net/wireless" -o -path "./$mods/net/mac80211" -o -path "./$mods/net/bluetooth" -o -path "./$mods/drivers/bluetooth" \
     -o -path "./$mods/drivers/infiniband" -o -path "./$mods/drivers/staging" -o -path "./$mods/drivers/iio" -o -path "./$mods/drivers/input/touchscreen" \
     -o -path "./$mods/drivers/usb/serial" -o -path "./$mods/drivers/isdn" -o -path "./$mods/drivers/net/can" -o -path "./$mods/net/can" \
     -o -path "./$mods/drivers/video" -o -path "./$mods/drivers/platform/chrome" -o -path "./$mods/drivers/misc/habanalabs" \
  \) -prune -o -print | LC_ALL=C sort >"$list")
# (the module index stays whole: loading a module left out fails with "not found", which
# udev's coldplug of hardware nobody installs from is allowed to do)
(cd "$rootfs" && cpio --quiet -o -H newc --reproducible -R 0:0 <"$list") >"$out/root.cpio.tmp"
rm -f "$list"
zstd -q -T0 -12 --rm -f "$out/root.cpio.tmp" -o "$out/initrd.img"
cp "$rootfs/boot/vmlinuz-$kver" "$out/vmlinuz"
zfs=$(chroot "$rootfs" dpkg-query -W -f '${Version}' zfsutils-linux 2>/dev/null || echo unknown)
{
  echo "kernel $kver"
  echo "zfs $zfs"
  echo "built $(date -u +%FT%TZ) from $(basename "$rootfs") in $(( $(date +%s) - start ))s (packing)"
  echo "vmlinuz $(stat -c %s "$out/vmlinuz") bytes sha256 $(sha256sum "$out/vmlinuz" | cut -d' ' -f1)"
  echo "initrd.img $(stat -c %s "$out/initrd.img") bytes sha256 $(sha256sum "$out/initrd.img" | cut -d' ' -f1)"
  echo "root $(du -sb "$rootfs" | cut -f1) bytes before trimming"
  echo "packages:"
  chroot "$rootfs" dpkg-query -W -f '  ${Package} ${Version}\n' 2>/dev/null
} >"$out/manifest"
echo "keel-live: $(head -2 "$out/manifest" | tr '\n' ' ')initrd $(( $(stat -c %s "$out/initrd.img") / 1048576 )) MiB, packed in $(( $(date +%s) - start ))s" >&2
