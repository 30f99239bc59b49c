# A rescue system like Hetzner's (no ZFS; `zpool`/`zfs` are scripts that offer to build it):
# keel install finds no usable ZFS without running the scripts, refuses without keel-live,
# and with it (--live, here from the payload disk), after the unattended consent (--yes with
# the serials), switches to keel-live by kexec, carrying the rescue's uplink, the SSH keys, the
# profile and the consent. The install of lab-node-02 from the registry's root image runs in
# keel-live, whose OpenZFS (2.3, bookworm-backports) is newer than the node's (2.1): the pools
# are limited to openzfs-2.1-linux. keel-live then restarts (QEMU ends the guest: -no-reboot).
# Before the switch this scenario writes its own part to the results disk (pre-rc, output.txt);
# the host reads the rest from the console (boot.sh KEEL_LAB_RESULT=console).
. ./scenarios/lib.sh
rescue_network
# For the node's import check later (cluster-survivor, lib.sh compat_pools_check): while this
# rescue still has its OpenZFS 2.3, two small pools on files, one limited to the node's
# feature set, one not; exported and handed to the host in the results
modprobe zfs
mkdir -p /tmp/compat-pools /results/compat-pools
for pool in keelcompat keelnocompat; do
  truncate -s 64M /tmp/compat-pools/$pool
  compat=""; [ $pool = keelcompat ] && compat="-o compatibility=openzfs-2.1-linux"
  check "OpenZFS $(cat /sys/module/zfs/version) makes $pool" zpool create $compat -O mountpoint=none $pool /tmp/compat-pools/$pool
done
equals "keelnocompat has head_errlog active (OpenZFS 2.2's; 2.1 cannot read it)" active "$(zpool get -H -o value feature@head_errlog keelnocompat)"
equals "keelcompat has it disabled (openzfs-2.1-linux)" disabled "$(zpool get -H -o value feature@head_errlog keelcompat)"
zpool export keelcompat && zpool export keelnocompat
for pool in keelcompat keelnocompat; do gzip -c /tmp/compat-pools/$pool >/results/compat-pools/$pool.gz; done
rm -rf /tmp/compat-pools
hetzner_rescue
url=http://10.0.2.101:8080/v1/images
args="--profile profiles/lab-node-02.toml --image $url/pve-base.zfs.zst --yes --confirm-serials $SERIALS --journal-dir $JOURNALS --progress plain"
# without keel-live: refused, the scripts not run, nothing written
./keel install $args >/tmp/no-live.txt 2>&1
equals "without keel-live: exit code" 1 "$?"
sed 's/^/      /' /tmp/no-live.txt | tail -3
check "it says why: the script is not OpenZFS" grep -q "zpool is a script (#!/bin/bash), not OpenZFS's zpool" /tmp/no-live.txt
check "and where ZFS comes from: --live" grep -q -- "--live DIR" /tmp/no-live.txt
check "the scripts were not run" test ! -e /tmp/zfs-wrapper-ran
check "nothing was written: no partition table" sh -c '! blkid -p -o value -s PTTYPE /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME0001'
check "keel-live is on the payload disk" test -s /payload/live/initrd.img
# this scenario's part of the result, before the switch ends it
mkdir -p /results
echo "$failures" >/results/pre-rc
(cd /results && tar cf /dev/vdc .)
echo "live-switch: switching at $(date +%s.%N) (uptime $(cut -d' ' -f1 /proc/uptime) s)"
./keel install $args --live /payload/live --live-after-failure poweroff
echo "FAIL  keel install returned instead of switching: exit $?"
echo 1 >/results/pre-rc
(cd /results && tar cf /dev/vdc .)
finish
