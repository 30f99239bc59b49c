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
if [ -e $OLD_DISK ]; then
  j=$JOURNALS/install-lab-node-01.jsonl
  check "the old disk's pools were listed and left alone" grep -q "left alone: sda (serial LABOLD0003) holds pool rpool" /tmp/resume.txt
  check "the journal records the GUIDs of the pools keel made" sh -c "grep -q '\"event\":\"pool\",\"pool\":\"rpool\"' $j && grep -q '\"event\":\"pool\",\"pool\":\"datapool\"' $j"
  check "the resume imported rpool by GUID from the targets' partitions only" \
    grep -qE 'zpool import -f -d /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME000[12]-part2 -d /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME000[12]-part2 -N -R /mnt/keel [0-9]+$' /tmp/resume.txt
  check "no command named the old disk" sh -c "! grep -E '^ *\\$ .*(LABOLD0003|/dev/sda)' /tmp/resume.txt"
  ours=$(sed -n 's/.*"event":"pool","pool":"rpool","guid":"\([0-9]*\)".*/\1/p' $j | tail -1)
  old=$(old_pools | awk '$1 == "rpool" {print $2}')
  echo "rpool GUIDs: keel's $ours, the old disk's $old"
  check "two different pools named rpool" sh -c "[ -n '$ours' ] && [ -n '$old' ] && [ '$ours' != '$old' ]"
  equals "pools still on the old disk" "datapool rpool" "$(old_pools | awk '{print $1}' | tr '\n' ' ' | sed 's/ $//')"
fi
finish
