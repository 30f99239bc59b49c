#!/usr/bin/env bash
# Runs a real `keel install` (disk phase up to the ESPs) on two sparse 6 GiB image files attached
# as loop devices, the way the tests do: serials come from a recorded tree (--root) and the
# /dev/disk/by-id links are made here, as udev would. Needs root and gdisk, dosfstools, parted,
# fdisk, udev. Touches nothing but its own loop devices; cleans up on exit.
#   sudo bash scripts/loop-demo.sh            (keel from target/debug, built if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root (loop devices)" >&2; exit 1; }
cargo build -q -p keel
keel=$PWD/target/debug/keel
work=$(mktemp -d)
serials=(KEELDEMOA0001 KEELDEMOB0002)
loops=()
cleanup() {
  for i in "${!loops[@]}"; do
    losetup -d "${loops[$i]}" 2>/dev/null || true
    rm -f /dev/disk/by-id/keel-demo-"${serials[$i]}"*
  done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p /dev/disk/by-id "$work/root/sys/block" "$work/root/dev/disk/by-id" "$work/root/sys/class/net/ens3" "$work/journal"
ln -s /proc "$work/root/proc"
for i in 0 1; do
  truncate -s 6G "$work/disk$i.img"
  dev=$(losetup -f --show -P "$work/disk$i.img")
  loops+=("$dev")
  name=${dev#/dev/}
  ln -s "$dev" "/dev/disk/by-id/keel-demo-${serials[$i]}"
  for n in 1 2 3 4; do ln -s "${dev}p$n" "/dev/disk/by-id/keel-demo-${serials[$i]}-part$n"; done
  mkdir "$work/root/sys/block/$name"
  for e in /sys/block/"$name"/*; do ln -s "$e" "$work/root/sys/block/$name/"; done
  echo "${serials[$i]}" >"$work/root/sys/block/$name/serial"
  ln -s "$dev" "$work/root/dev/disk/by-id/keel-demo-${serials[$i]}"
done
echo 52:54:00:a4:41:01 >"$work/root/sys/class/net/ens3/address"
ln -s /sys/devices "$work/root/sys/class/net/ens3/device"
sed -e '/^hardware-spec/d' -e "s/^serials = \[\]/serials = [\"${serials[0]}\", \"${serials[1]}\"]/" \
  profiles/lab-node-01.toml >"$work/demo-node.toml"
set -x
"$keel" install --profile "$work/demo-node.toml" --root "$work/root" --journal-dir "$work/journal" \
  --yes --confirm-serials "${serials[0]},${serials[1]}" --until partition.format-esp
"$keel" install --profile "$work/demo-node.toml" --root "$work/root" --journal-dir "$work/journal" \
  --until partition.format-esp
sfdisk --list "${loops[0]}"
set +x
