# The whole disk phase on both drives (keel install --until datasets.datapool), verified; then
# run again: every step is found done, nothing is written again.
. ./scenarios/lib.sh
install_lab
equals "keel install exit code" 0 "$?"
verify_disk_phase
guid=$(zpool import -d /dev/disk/by-id 2>/dev/null | awk '/id:/ {print $2}' | sort | tr '\n' ' ')
install_lab >/tmp/again.txt 2>&1
equals "second run exit code" 0 "$?"
cat /tmp/again.txt
check "second run wrote nothing" sh -c "! grep -qE 'wipefs|sgdisk|mkfs|zpool create|zfs create|mkswap' /tmp/again.txt"
# the second run imported the pools again to verify them (it stops before the export)
equals "pool ids unchanged" "$guid" "$(for p in rpool datapool; do zpool get -H -o value guid $p; done 2>/dev/null | sort | tr '\n' ' ')"
zpool export datapool 2>/dev/null; zpool export rpool 2>/dev/null
check "journal records the pause after the disk phase" grep -q '"event":"paused","after":"datasets.datapool"' $JOURNALS/install-lab-node-01.jsonl
finish
