#!/usr/bin/env bash
# Builds (once) and caches the lab's guest and keel-live from one root (scripts/live/root.sh:
# Debian 12, its kernel, OpenZFS 2.3 from bookworm-backports built by DKMS, sshd and the tools
# an install runs; the lab's rescue stand-in is that root on a disk, with keel's lab init).
# Prints the cache folder, which holds vmlinuz, initrd.img and root.img (ext4, no loop mount),
# and live/ (keel-live: vmlinuz, initrd.img, manifest; scripts/live/pack.sh).
# The cache key is the hash of this script and the two live scripts: edit one and the next run
# rebuilds. Cold: about 12 minutes on 2 cores (DKMS is most of it); warm: instant.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
live=$(cd "$here/../live" && pwd)
cache_root=${KEEL_LAB_CACHE:-/var/cache/keel-lab}
key=$(cat "$here/image.sh" "$live/root.sh" "$live/pack.sh" | sha256sum | cut -c1-16)
out="$cache_root/image-$key"
if [ -f "$out/done" ]; then
  echo "$out"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "building the lab image needs root (debootstrap, chroot)" >&2; exit 1; }
bash "$here/host-packages.sh" >&2
work="$cache_root/build-$key"
rm -rf "$work"
mkdir -p "$work"
rootfs="$work/rootfs"
start=$(date +%s)
echo "lab image: the keel-live root (cold build, about 10 minutes)" >&2
kver=$(bash "$live/root.sh" "$rootfs")
mkdir -p "$out"
bash "$live/pack.sh" "$rootfs" "$out/live"
# PID 1 is a stub that hands over to lab-init on the payload disk, so changing lab-init or a
# scenario never rebuilds the image.
cat >"$rootfs/keel-lab-init" <<'STUB'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /payload
mount -o ro /dev/vdb /payload && exec /bin/sh /payload/lab-init
echo "lab: no payload disk"; echo 1 >/proc/sys/kernel/sysrq; echo o >/proc/sysrq-trigger
STUB
chmod 0755 "$rootfs/keel-lab-init"
echo "lab" >"$rootfs/etc/hostname"
mkdir -p "$out"
cp "$rootfs/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$rootfs/boot/initrd.img-$kver" "$out/initrd.img"
truncate -s 6G "$out/root.img"
mkfs.ext4 -q -F -L labroot -d "$rootfs" "$out/root.img"
zfs_version=zfs-$(chroot "$rootfs" dpkg-query -W -f '${Version}' zfsutils-linux)
printf 'kernel %s\n%s\nbuilt %s in %ss\n' "$kver" "$zfs_version" "$(date -u +%FT%TZ)" "$(( $(date +%s) - start ))" >"$out/done"
rm -rf "$work"
echo "lab image: ready after $(( $(date +%s) - start ))s ($kver, $zfs_version)" >&2
echo "$out"
