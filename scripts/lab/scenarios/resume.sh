# After the power cut: this "rescue system" booted afresh and has no journal; keel finds the
# journal on the target's rpool and finishes from where it stopped.
. ./scenarios/lib.sh
check "no journal in the rescue system" test ! -e $JOURNALS/install-lab-node-01.jsonl
install_lab >/tmp/resume.txt 2>&1
equals "resumed install exit code" 0 "$?"
cat /tmp/resume.txt
check "journal recovered from the target" grep -q "recovered it from /mnt/keel/var/lib/keel/install.jsonl" /tmp/resume.txt
check "done steps verified, not redone" grep -q "partition.disk-a: done earlier, still holds" /tmp/resume.txt
check "pools not created again" sh -c "! grep -q 'zpool create' /tmp/resume.txt"
verify_disk_phase
finish
