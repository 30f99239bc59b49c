#!/usr/bin/env bash
# The root file system of keel-live (and of the lab's rescue stand-in, which is the same root
# on a disk): Debian 12 with its kernel, OpenZFS 2.3 from bookworm-backports built for that
# kernel by DKMS inside the root, sshd, and the tools an install runs (sgdisk, parted, wipefs,
# mkfs.vfat, udev, iproute2, ISC dhclient (keel-live booted by PXE), mmdebstrap and debootstrap,
# curl, zstd).
#   root.sh ROOTFS [MIRROR]
# Prints the kernel version. Needs root (debootstrap, chroot) and the packages of
# scripts/live/host-packages.sh. About 10 minutes on 2 cores, most of it the DKMS build.
# Why backports: keel-live creates pools for nodes whose OpenZFS may be newer than Debian 12's
# 2.1 (Proxmox VE 8 ships 2.2 and later): the creator must know the node's feature set
# (zfs.compatibility), and a newer creator limited to that set makes pools the node imports.
set -euo pipefail
rootfs=${1:?usage: root.sh ROOTFS [MIRROR]}
mirror=${2:-}
if [ -z "$mirror" ]; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi
[ "$(id -u)" = 0 ] || { echo "building the live root needs root (debootstrap, chroot)" >&2; exit 1; }
log=$(dirname "$rootfs")/root-build.log
start=$(date +%s)
echo "keel-live root: debootstrap from $mirror" >&2
debootstrap --variant=minbase --components=main,contrib \
  --include=linux-image-amd64,linux-headers-amd64,udev,kmod,gdisk,parted,fdisk,dosfstools,iproute2,isc-dhcp-client,procps,util-linux,e2fsprogs,initramfs-tools,ifupdown2,iptables,iputils-ping,ca-certificates,mmdebstrap,debootstrap,wget,curl,zstd,openssh-server,openssh-client \
  bookworm "$rootfs" "$mirror" >"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
echo "keel-live root: debootstrap done after $(( $(date +%s) - start ))s" >&2

cleanup() { for m in dev/pts dev sys proc; do umount "$rootfs/$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mount -t proc proc "$rootfs/proc"
mount -t sysfs sys "$rootfs/sys"
mount --bind /dev "$rootfs/dev"
mount --bind /dev/pts "$rootfs/dev/pts"
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod +x "$rootfs/usr/sbin/policy-rc.d"
cat >"$rootfs/etc/apt/sources.list.d/backports.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
kver=$(ls "$rootfs/lib/modules" | sort -V | tail -1)
chroot "$rootfs" apt-get update -q >>"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dpkg-dev build-essential dkms >>"$log" 2>&1 \
  || { tail -20 "$log" >&2; exit 1; }
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -t bookworm-backports zfs-dkms zfsutils-linux >>"$log" 2>&1 \
  || { tail -30 "$log" >&2; exit 1; }
[ -n "$(find "$rootfs/lib/modules/$kver" -name 'zfs.ko*' | head -1)" ] || { echo "the ZFS module was not built for $kver" >&2; tail -30 "$log" >&2; exit 1; }
echo "keel-live root: OpenZFS $(chroot "$rootfs" dpkg-query -W -f '${Version}' zfsutils-linux) built for $kver after $(( $(date +%s) - start ))s" >&2
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/*
# host keys are made per use (keel makes the live system's before the switch)
rm -f "$rootfs"/etc/ssh/ssh_host_*
cleanup
trap - EXIT
rm -f "$rootfs/usr/sbin/policy-rc.d"
echo "$kver"
