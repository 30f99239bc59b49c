#!/usr/bin/env bash
# Builds (once) and caches the lab's package repository: everything `keel install` of the lab
# profiles fetches, since the real mirrors cannot be reached from a lab guest.
#   debian/           the Debian 12 packages keel's one package pass needs (downloaded from the
#                     host's mirror: the closure of keel's own package list, read from `keel plan`,
#                     without recommended packages: apt in the guest skips those it cannot find,
#                     which keeps the install short under TCG)
#   debian-security/  an empty bookworm-security suite (the node's sources.list names it)
#   pve/              STAND-INS for Proxmox VE, clearly named: proxmox-ve (depends on pve-cluster,
#                     pve-manager, libpve-storage-perl, corosync, ifupdown2, iptables,
#                     openssh-server), pve-cluster (pvecm and pmxcfs
#                     as scripts/lab/standin describes), libpve-storage-perl (pvesm; it pulls in
#                     nfs-common) and pve-manager (pvesh), proxmox-default-kernel, and
#                     proxmox-kernel-<kver>-keel-lab-standin, the lab image's own Debian kernel
#                     with the OpenZFS module built in (as Proxmox's kernel has it: no DKMS,
#                     nothing compiled in the guest); and the lab key as the "release key"
# Every suite is signed with the lab's test key (scripts/lab/keys, not a secret).
# Prints the folder. The cache key covers this script, keel's package lists and the image.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache_root=${KEEL_LAB_CACHE:-/var/cache/keel-lab}
image=$(bash "$here/image.sh")
bin="$repo/target/x86_64-unknown-linux-gnu/release/keel"
[ -x "$bin" ] || bash "$repo/scripts/build-static.sh" >/dev/null
# keel's own list: the --include of os.packages' one package pass (mmdebstrap, minbase)
plan=$("$bin" plan --profile "$repo/profiles/lab-node-01.toml" --root "$repo/tests/fixtures/qemu-lab" --json 2>/dev/null)
packages=$(python3 -c '
import json, sys
steps = {s["id"]: s for s in json.load(sys.stdin)["steps"]}
one = next(c for c in steps["os.packages"]["commands"] if c[0] == "mmdebstrap")
print(next(a for a in one if a.startswith("--include=")).split("=", 1)[1].replace(",", " "))
' <<<"$plan")
key=$( (cat "$here/repo.sh" "$here/keys/lab-repo.gpg" "$here"/standin/*; echo "$image $packages") | sha256sum | cut -c1-16)
out="$cache_root/repo-$key"
if [ -f "$out/done" ]; then
  echo "$out"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "building the lab repository needs root (debootstrap, chroot)" >&2; exit 1; }
bash "$here/host-packages.sh" >&2
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
work="$cache_root/repo-build-$key"
rm -rf "$work" "$out.tmp"
mkdir -p "$work" "$out.tmp"
start=$(date +%s)
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --import "$here/keys/lab-repo-secret.asc"

# 1. stand-ins for the Proxmox packages
kver=$(sed -n 's/^kernel //p' "$image/done")
std="$work/standin"
kpkg="proxmox-kernel-$kver-keel-lab-standin"
mkdir -p "$std/kernel/DEBIAN" "$std/kernel/boot" "$std/kernel/lib/modules"
for f in vmlinuz config System.map; do
  debugfs -R "dump /boot/$f-$kver $std/kernel/boot/$f-$kver" "$image/root.img" 2>/dev/null
done
debugfs -R "rdump /lib/modules/$kver $std/kernel/lib/modules" "$image/root.img" 2>/dev/null
# the nodes' OpenZFS is Debian 12's (image.sh built it for this kernel), not the image's 2.3
find "$std/kernel/lib/modules/$kver/updates" -name '*.ko*' -delete 2>/dev/null || true
mkdir -p "$std/kernel/lib/modules/$kver/updates/dkms"
cp "$image"/zfs-2.1/*.ko* "$std/kernel/lib/modules/$kver/updates/dkms/" 2>/dev/null || true
[ -s "$std/kernel/boot/vmlinuz-$kver" ] && [ -n "$(find "$std/kernel/lib/modules/$kver/updates" -name 'zfs.ko*')" ] \
  || { echo "lab repo: the image lacks the kernel $kver or Debian 12's ZFS module (zfs-2.1/)" >&2; exit 1; }
# what a server never needs in the lab (keeps the package small to unpack under TCG)
# (fewer files to unpack under TCG; a real Proxmox kernel ships them all)
for d in gpu media net/wireless net/can net/usb net/phy infiniband staging iio bluetooth comedi usb/serial usb/gadget \
  video input/touchscreen input/joystick input/misc platform i2c hwmon mfd power regulator rtc spi thunderbolt isdn \
  atm firewire mtd pcmcia leds w1 nfc misc gnss fpga extcon edac mmc memstick uio parport mux counter soundwire \
  dma ntb rpmsg remoteproc slimbus ssb bcma hid/i2c-hid; do
  rm -rf "$std/kernel/lib/modules/$kver/kernel/drivers/$d"
done
for d in $(ls "$std/kernel/lib/modules/$kver/kernel/drivers/net/ethernet"); do
  [ "$d" = intel ] || rm -rf "$std/kernel/lib/modules/$kver/kernel/drivers/net/ethernet/$d"
done
for d in sound net/bluetooth net/wireless net/mac80211; do
  rm -rf "$std/kernel/lib/modules/$kver/kernel/$d"
done
rm -f "$std/kernel/lib/modules/$kver"/modules.* "$std/kernel/lib/modules/$kver"/{build,source}
cat >"$std/kernel/DEBIAN/control" <<CTL
Package: $kpkg
Version: 1.0
Architecture: amd64
Maintainer: keel lab <lab@keel.invalid>
Depends: kmod, initramfs-tools
Provides: zfs-modules
Section: kernel
Priority: optional
Description: LAB STAND-IN for a Proxmox VE kernel: Debian's $kver with Debian 12's OpenZFS $(cat "$image/zfs-2.1/version")
 Built by keel's scripts/lab/repo.sh from the lab image. Not a Proxmox package.
CTL
cat >"$std/kernel/DEBIAN/postinst" <<POST
#!/bin/sh
set -e
[ "\$1" = configure ] || exit 0
depmod -a $kver
run-parts --report --exit-on-error --arg=$kver --arg=/boot/vmlinuz-$kver /etc/kernel/postinst.d
POST
cat >"$std/kernel/DEBIAN/postrm" <<POST
#!/bin/sh
set -e
[ "\$1" = remove ] || [ "\$1" = purge ] || exit 0
[ -d /etc/kernel/postrm.d ] && run-parts --report --arg=$kver --arg=/boot/vmlinuz-$kver /etc/kernel/postrm.d
exit 0
POST
chmod 0755 "$std/kernel/DEBIAN/postinst" "$std/kernel/DEBIAN/postrm"
meta() { # name depends
  mkdir -p "$std/$1/DEBIAN"
  cat >"$std/$1/DEBIAN/control" <<CTL
Package: $1
Version: 8.0-keel-lab
Architecture: all
Maintainer: keel lab <lab@keel.invalid>
Depends: $2
Section: admin
Priority: optional
Description: LAB STAND-IN for Proxmox's $1 (keel lab, not Proxmox)
 Pulls in the Debian packages the keel lab checks on a node.
CTL
}
meta proxmox-default-kernel "$kpkg"
meta proxmox-ve "proxmox-default-kernel, pve-cluster, pve-manager, libpve-storage-perl, corosync, ifupdown2, iptables, openssh-server"
# pvesm and pvesh (standin/pve-config, acting by the name it runs as); the storage package pulls
# in nfs-common (and with it rpcbind, which keel masks) as upstream's does (proxmox/pve-storage
# debian/control, Depends: nfs-common)
meta libpve-storage-perl "nfs-common, python3"
meta pve-manager "libpve-storage-perl, python3"
install -D -m 0755 "$here/standin/pve-config" "$std/libpve-storage-perl/usr/sbin/pvesm"
install -D -m 0755 "$here/standin/pve-config" "$std/pve-manager/usr/bin/pvesh"
# the cluster tools (scripts/lab/standin, README there: which upstream lines each follows)
meta pve-cluster "corosync, rsync, openssh-client, openssh-server"
sd="$here/standin"
install -D -m 0755 "$sd/pvecm" "$std/pve-cluster/usr/bin/pvecm"
install -D -m 0755 "$sd/pmxcfs" "$std/pve-cluster/usr/lib/keel-lab-standin/pmxcfs"
for u in pve-cluster.service pve-cluster-sync.path pve-cluster-sync.service pve-cluster-sync.timer; do
  install -D -m 0644 "$sd/$u" "$std/pve-cluster/lib/systemd/system/$u"
done
install -D -m 0644 "$sd/corosync-standin.conf" "$std/pve-cluster/lib/systemd/system/corosync.service.d/keel-lab-standin.conf"
install -m 0755 "$sd/postinst" "$std/pve-cluster/DEBIAN/postinst"
mkdir -p "$out.tmp/pve/pool"
for d in kernel proxmox-default-kernel proxmox-ve pve-cluster libpve-storage-perl pve-manager; do
  dpkg-deb --root-owner-group -Zgzip --build "$std/$d" "$out.tmp/pve/pool/" >/dev/null
done
echo "lab repo: stand-ins built after $(( $(date +%s) - start ))s ($(du -sh "$out.tmp/pve/pool" | cut -f1))" >&2

# 2. the Debian closure: the minimal base (the required packages, as mmdebstrap's minbase),
# then apt's download of keel's list
root="$work/root"
debootstrap --variant=minbase --components=main,contrib \
  bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
cleanup() { for m in dev proc sys; do umount -l "$root/$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mount -t proc proc "$root/proc"; mount -t sysfs sys "$root/sys"; mount --bind /dev "$root/dev"
echo "deb $mirror bookworm main contrib" >"$root/etc/apt/sources.list"
mkdir -p "$root/tmp/standin"
cp "$out.tmp"/pve/pool/*.deb "$root/tmp/standin/"
chroot "$root" apt-get update -qq >"$work/apt.log" 2>&1
apt_list=""
for p in $packages; do case $p in proxmox-*) ;; *) apt_list="$apt_list $p" ;; esac; done
chroot "$root" sh -c "apt-get install -y -q --no-install-recommends --download-only /tmp/standin/*.deb $apt_list" >>"$work/apt.log" 2>&1 \
  || { tail -20 "$work/apt.log" >&2; exit 1; }
cleanup
trap - EXIT
mkdir -p "$out.tmp/debian/pool"
cp "$root"/var/cache/apt/archives/*.deb "$out.tmp/debian/pool/"
# apt keeps the epoch in the file name ("1%3a2.38"); an archive's pool does not
for f in "$out.tmp"/debian/pool/*%3a*; do
  [ -e "$f" ] && mv "$f" "$(echo "$f" | sed 's/_[0-9]*%3a/_/')"
done
echo "lab repo: $(ls "$out.tmp/debian/pool" | wc -l) Debian packages after $(( $(date +%s) - start ))s" >&2

# 3. indexes and signatures
suite() { # base dist components... : Packages for each component (pool only for the first)
  local base=$1 dist=$2
  shift 2
  local first=1
  for comp in "$@"; do
    mkdir -p "$base/dists/$dist/$comp/binary-amd64"
    if [ $first = 1 ] && [ -d "$base/pool" ]; then
      (cd "$base" && apt-ftparchive packages pool) >"$base/dists/$dist/$comp/binary-amd64/Packages"
    else
      : >"$base/dists/$dist/$comp/binary-amd64/Packages"
    fi
    gzip -9kn "$base/dists/$dist/$comp/binary-amd64/Packages"
    first=0
  done
  apt-ftparchive -o APT::FTPArchive::Release::Origin=keel-lab -o APT::FTPArchive::Release::Suite="$dist" \
    -o APT::FTPArchive::Release::Codename="$dist" -o APT::FTPArchive::Release::Architectures=amd64 \
    -o APT::FTPArchive::Release::Components="$*" release "$base/dists/$dist" >"$base/dists/$dist/Release.new"
  mv "$base/dists/$dist/Release.new" "$base/dists/$dist/Release"
  gpg --batch --yes --quiet --clearsign -o "$base/dists/$dist/InRelease" "$base/dists/$dist/Release"
  gpg --batch --yes --quiet -abs -o "$base/dists/$dist/Release.gpg" "$base/dists/$dist/Release"
}
suite "$out.tmp/debian" bookworm main contrib
suite "$out.tmp/debian" bookworm-updates main contrib
mkdir -p "$out.tmp/debian-security"
suite "$out.tmp/debian-security" bookworm-security main contrib
suite "$out.tmp/pve" bookworm pve-no-subscription
cp "$here/keys/lab-repo.gpg" "$out.tmp/pve/proxmox-release-bookworm.gpg"
printf 'kernel %s\n%s Debian packages\nbuilt %s in %ss\n' "$kver" "$(ls "$out.tmp/debian/pool" | wc -l)" "$(date -u +%FT%TZ)" "$(( $(date +%s) - start ))" >"$out.tmp/done"
rm -rf "$out" "$work"
mv "$out.tmp" "$out"
# older repositories (other keel lists or images) are not used again
for old in "$cache_root"/repo-*; do [ "$old" = "$out" ] || rm -rf "$old"; done
echo "lab repo: ready after $(( $(date +%s) - start ))s: $out ($(du -sh "$out" | cut -f1))" >&2
echo "$out"
