# Disaster recovery over a node keel installed before (run on the disks of os-install, after its
# boots): the rescue system has no journal; the one on rpool belongs to a finished install, so
# keel does not resume it. Without --wipe-existing it refuses (the drives hold ZFS members);
# with it, it starts afresh (new pools; this run stops after the disk phase).
. ./scenarios/lib.sh
old=$(zpool import -d /dev/disk/by-id 2>/dev/null | awk '/id:/ {print $2}' | sort | tr '\n' ' ')
install_lab >/tmp/refused.txt 2>&1
equals "without --wipe-existing: exit code" 1 "$?"
cat /tmp/refused.txt
check "refused because of the old pools" grep -q "zfs_member.*--wipe-existing" /tmp/refused.txt
check "the finished install was not resumed" sh -c "! grep -q 'recovered it from' /tmp/refused.txt"
check "the old pools are left exported" sh -c "! zpool list rpool"
install_lab --wipe-existing >/tmp/fresh.txt 2>&1
equals "with --wipe-existing: exit code" 0 "$?"
tail -5 /tmp/fresh.txt
new=$(zpool import -d /dev/disk/by-id 2>/dev/null | awk '/id:/ {print $2}' | sort | tr '\n' ' ')
check "new pools replaced the old ones" test "$old" != "$new"
verify_disk_phase
finish
