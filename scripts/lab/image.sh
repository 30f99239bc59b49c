#!/usr/bin/env bash
# Builds (once) and caches the lab's guest: a Debian 12 root with the OpenZFS module (DKMS,
# built for the guest's kernel inside the chroot), the tools a Hetzner rescue system has
# (sgdisk, parted, wipefs, mkfs.vfat, udev, ifupdown2, iproute2; zstd and curl for the image
# bench's shell baseline) and keel's lab init.
# Prints the cache folder, which holds vmlinuz, initrd.img and root.img (ext4, no loop mount).
# The cache key is this script's own hash: edit it and the next run rebuilds.
# Cold: about 10-12 minutes on 2 cores (DKMS is most of it); warm: instant.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${KEEL_LAB_CACHE:-/var/cache/keel-lab}
key=$(sha256sum <"$here/image.sh" | cut -c1-16)
out="$cache_root/image-$key"
if [ -f "$out/done" ]; then
  echo "$out"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "building the lab image needs root (debootstrap, chroot)" >&2; exit 1; }
bash "$here/host-packages.sh" >&2
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
work="$cache_root/build-$key"
rm -rf "$work"
mkdir -p "$work"
rootfs="$work/rootfs"
start=$(date +%s)
echo "lab image: debootstrap from $mirror (cold build, about 10 minutes)" >&2
debootstrap --variant=minbase --components=main,contrib \
  --include=linux-image-amd64,linux-headers-amd64,udev,kmod,gdisk,parted,fdisk,dosfstools,iproute2,procps,util-linux,e2fsprogs,initramfs-tools,ifupdown2,iptables,iputils-ping,ca-certificates,mmdebstrap,debootstrap,wget,curl,zstd \
  bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
echo "lab image: debootstrap done after $(( $(date +%s) - start ))s" >&2

cleanup() { for m in dev/pts dev sys proc; do umount "$rootfs/$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mount -t proc proc "$rootfs/proc"
mount -t sysfs sys "$rootfs/sys"
mount --bind /dev "$rootfs/dev"
mount --bind /dev/pts "$rootfs/dev/pts"
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod +x "$rootfs/usr/sbin/policy-rc.d"
kver=$(ls "$rootfs/lib/modules" | sort -V | tail -1)
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dpkg-dev build-essential dkms >"$work/build-tools.log" 2>&1 \
  || { tail -20 "$work/build-tools.log" >&2; exit 1; }
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends zfs-dkms zfsutils-linux >"$work/zfs.log" 2>&1 \
  || { tail -30 "$work/zfs.log" >&2; exit 1; }
[ -n "$(find "$rootfs/lib/modules/$kver" -name 'zfs.ko*' | head -1)" ] || { echo "the ZFS module was not built for $kver" >&2; tail -30 "$work/zfs.log" >&2; exit 1; }
echo "lab image: ZFS built for $kver after $(( $(date +%s) - start ))s" >&2
chroot "$rootfs" apt-get clean
cleanup
trap - EXIT
rm -f "$rootfs/usr/sbin/policy-rc.d"
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
zfs_version=$(ls "$rootfs/usr/src" | grep -o 'zfs-.*' | head -1)
printf 'kernel %s\n%s\nbuilt %s in %ss\n' "$kver" "$zfs_version" "$(date -u +%FT%TZ)" "$(( $(date +%s) - start ))" >"$out/done"
rm -rf "$work"
echo "lab image: ready after $(( $(date +%s) - start ))s ($kver, $zfs_version)" >&2
echo "$out"
