# The whole disk phase on both drives, verified; then run again: nothing changes.
. ./scenarios/lib.sh
install_lab
equals "keel install exit code" 0 "$?"
verify_disk_phase
guid=$(zpool import -d /dev/disk/by-id 2>/dev/null | awk '/id:/ {print $2}' | sort | tr '\n' ' ')
install_lab >/tmp/again.txt 2>&1
equals "second run exit code" 0 "$?"
cat /tmp/again.txt
check "second run did nothing" grep -q "nothing to do" /tmp/again.txt
equals "pool ids unchanged" "$guid" "$(zpool import -d /dev/disk/by-id 2>/dev/null | awk '/id:/ {print $2}' | sort | tr '\n' ' ')"
check "journal records the finish" grep -q '"event":"finished"' $JOURNALS/install-lab-node-01.jsonl
finish
