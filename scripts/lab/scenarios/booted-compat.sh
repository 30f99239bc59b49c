# lab-node-02 (installed by keel-live, whose OpenZFS 2.3 made its pools) booted from its drives
# with its own OpenZFS 2.1: it imported its pools at boot (the booted checks below), a pool
# keel-live's OpenZFS made with the node's feature set imports here, and the negative control,
# a pool made by the same OpenZFS without the limit, does not. Then the booted checks.
. ./scenarios/lib.sh
echo "this node's OpenZFS: $(cat /sys/module/zfs/version)"
check "the node runs OpenZFS 2.1 (older than keel-live's 2.3)" grep -q '^2\.1\.' /sys/module/zfs/version
check "a pool made by OpenZFS 2.3 with compatibility=openzfs-2.1-linux imports" zpool import -d /root/compat-on.img keelcompat-on
zpool export keelcompat-on 2>/dev/null
zpool import -d /root/compat-off.img keelcompat-off >/tmp/off.txt 2>&1
rc=$?
sed 's/^/      /' /tmp/off.txt | head -6
check "negative control: the same without compatibility does not import (exit $rc)" test "$rc" != 0
zpool export keelcompat-off 2>/dev/null
. ./scenarios/booted.sh
