#!/usr/bin/env bash
# Builds (once) and caches the lab's guest and keel-live from one root (scripts/live/root.sh:
# Debian 12, its kernel, OpenZFS 2.3 from bookworm-backports built by DKMS, sshd and the tools
# an install runs; the lab's rescue stand-in is that root on a disk, with keel's lab init).
# Prints the cache folder, which holds vmlinuz, initrd.img and root.img (ext4, no loop mount),
# live/ (keel-live: vmlinuz, initrd.img, manifest; scripts/live/pack.sh) and zfs-2.1/ (Debian
# 12's OpenZFS module built for the same kernel: the installed nodes', see repo.sh).
# The cache key is the hash of this script and the two live scripts: edit one and the next run
# rebuilds. Cold: about 17 minutes on 2 cores (the two DKMS builds are most of it); warm: instant.
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
# The installed nodes' OpenZFS: Debian 12's own (bookworm main, 2.1.11), built by DKMS for the
# same kernel but not installed into this root (keel-live and the rescue stand-in keep 2.3).
# The lab repository's stand-in kernel carries it (repo.sh), so a node runs the OpenZFS its
# zfsutils-linux is, older than the 2.3 that creates its pools (zfs.compatibility). About 5
# minutes on 2 cores.
t21=$(date +%s)
mount -t proc proc "$rootfs/proc"
mount -t sysfs sys "$rootfs/sys"
mount --bind /dev "$rootfs/dev"
umount_root() { for m in dev sys proc; do umount "$rootfs/$m" 2>/dev/null || true; done; }
trap umount_root EXIT
log21="$work/zfs-2.1.log"
# (its own shell, so that -e holds: a failing command stops it and the log says which)
if ! rootfs="$rootfs" out="$out" kver="$kver" bash -euxo pipefail >"$log21" 2>&1 <<'BUILD'
chroot "$rootfs" apt-get update -q
chroot "$rootfs" sh -c 'cd /tmp && apt-get download zfs-dkms/bookworm'
dpkg-deb -x "$rootfs"/tmp/zfs-dkms_*.deb "$rootfs/tmp/zfs-dkms"
v21=$(ls "$rootfs/tmp/zfs-dkms/usr/src" | sed -n 's/^zfs-//p')
cp -a "$rootfs/tmp/zfs-dkms/usr/src/zfs-$v21" "$rootfs/usr/src/"
chroot "$rootfs" dkms add -m zfs -v "$v21"
chroot "$rootfs" dkms build -m zfs -v "$v21" -k "$kver"
mkdir -p "$out/zfs-2.1"
find "$rootfs/var/lib/dkms/zfs/$v21/$kver" -name '*.ko*' -exec cp {} "$out/zfs-2.1/" \;
echo "$v21" >"$out/zfs-2.1/version"
chroot "$rootfs" dkms remove -m zfs -v "$v21" --all
rm -rf "$rootfs/usr/src/zfs-$v21" "$rootfs/tmp/zfs-dkms" "$rootfs"/tmp/zfs-dkms_*.deb
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/*
BUILD
then
  echo "lab image: building Debian 12's OpenZFS module failed (log $log21)" >&2
  tail -30 "$log21" >&2
  exit 1
fi
umount_root
trap - EXIT
[ -n "$(find "$out/zfs-2.1" -name 'zfs.ko*')" ] || { echo "lab image: no zfs.ko from Debian 12's OpenZFS" >&2; tail -30 "$log21" >&2; exit 1; }
echo "lab image: OpenZFS $(cat "$out/zfs-2.1/version") built for $kver (the nodes' module) in $(( $(date +%s) - t21 ))s" >&2
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
