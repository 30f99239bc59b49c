# On lab-node-01 booted from drive 1 with drive 2 swapped for a blank drive of another serial
# (LABNVME0003) and a decoy drive beside them (LABDECOY01): the pools are degraded; keel disk
# replace refuses the survivor named as the new drive, then puts the new drive in both pools,
# follows the resilver, puts the boot loader on it; both pools are ONLINE mirrors, keel verify
# passes without --allow-degraded, a second run does nothing twice, the survivor's table and the
# decoy are untouched. The host then boots the node from the new drive alone (boot-new-drive).
. ./scenarios/lib.sh
wait_booted
survivor=LABNVME0001
new=LABNVME0003
id=/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl
equals "rpool before (drive 2 swapped)" DEGRADED "$(zpool list -H -o health rpool)"
equals "datapool before" DEGRADED "$(zpool list -H -o health datapool)"
check "the new drive is blank" sh -c "[ -z \"\$(wipefs --noheadings ${id}_$new)\" ] && ! ls ${id}_$new-part1 2>/dev/null"
decoy_before=$(sha256sum <${id}_LABDECOY01)
survivor_table=$(sfdisk --dump ${id}_$survivor)

# the survivor named as the new drive: refused, nothing written
keel disk replace --new $survivor --yes >/tmp/refused.txt 2>&1
equals "keel disk replace --new $survivor (the survivor): exit code" 1 "$?"
sed 's/^/    /' /tmp/refused.txt | tail -3
check "the refusal says it is the surviving member" grep -q "$survivor is the surviving member of rpool" /tmp/refused.txt
# a dry run shows the plan and writes nothing
keel disk replace --new $new --dry-run >/tmp/dry.txt 2>&1
equals "dry run exit code" 0 "$?"
check "the dry run names the dead member by its GUID" grep -q "dead member GUID [0-9]* " /tmp/dry.txt
check "after the dry run the new drive is still blank" sh -c "[ -z \"\$(wipefs --noheadings ${id}_$new)\" ]"

start=$(date +%s)
keel disk replace --new $new --yes >/tmp/replace.txt 2>&1
rc=$?
sed 's/^/    /' /tmp/replace.txt
equals "keel disk replace --new $new --yes: exit code" 0 "$rc"
echo "replace took $(( $(date +%s) - start ))s"
check "the resilver was followed to its end" grep -q "resilver finished" /tmp/replace.txt
check "the dead member was replaced by its GUID" grep -q "zpool replace rpool [0-9][0-9]* ${id}_$new-part2" /tmp/replace.txt
equals "rpool after" ONLINE "$(zpool list -H -o health rpool)"
equals "datapool after" ONLINE "$(zpool list -H -o health datapool)"
check "rpool is a mirror of the survivor and the new drive" sh -c "zpool status -P rpool | grep -q '${id}_$survivor-part2 *ONLINE' && zpool status -P rpool | grep -q '${id}_$new-part2 *ONLINE'"
check "datapool is a mirror of the survivor and the new drive" sh -c "zpool status -P datapool | grep -q '${id}_$new-part3 *ONLINE'"
check "the boot list names the new drive" grep -qx "${id}_$new" /etc/keel/boot-disks
check "no boot list line names the dead drive" sh -c "! grep -q LABNVME0002 /etc/keel/boot-disks"
mkdir -p /tmp/esp
check "the new drive's ESP carries GRUB's configuration and the kernel" sh -c "mount -o ro ${id}_$new-part1 /tmp/esp && ls /tmp/esp/grub/grub.cfg /tmp/esp/vmlinuz-* && ls /tmp/esp/EFI/BOOT/BOOTX64.EFI; umount /tmp/esp"
equals "the survivor's partition table is untouched" "$survivor_table" "$(sfdisk --dump ${id}_$survivor)"
# the same sectors, types and names; other GUIDs
same=$(sfdisk --dump ${id}_$new | sed -n 's/^[^:]*: *\(start=[^,]*, *size=[^,]*, *type=[^,]*\),.*name="\([^"]*\)".*/\1 \2/p')
want=$(sfdisk --dump ${id}_$survivor | sed -n 's/^[^:]*: *\(start=[^,]*, *size=[^,]*, *type=[^,]*\),.*name="\([^"]*\)".*/\1 \2/p')
equals "the new drive's partitions are the survivor's" "$want" "$same"
check "with other partition GUIDs" sh -c "[ \"\$(sfdisk --dump ${id}_$new | grep -o 'uuid=[^,]*' | sort)\" != \"\$(sfdisk --dump ${id}_$survivor | grep -o 'uuid=[^,]*' | sort)\" ]"
keel verify >/tmp/verify.txt 2>&1
equals "keel verify (no --allow-degraded) exit code" 0 "$?"
grep -E "mirror|boot|rpool disks" /tmp/verify.txt | sed 's/^/    /'
# again: every step is found done, nothing is written
keel disk replace --new $new --yes >/tmp/again.txt 2>&1
equals "the same command again: exit code" 0 "$?"
sed 's/^/    /' /tmp/again.txt | grep -v '^ *\$\|^    \[' | tail -12
# (the plan it shows lists the commands; what ran is in the journal's lines after it)
equals "run again: every step found done, still holding" 7 "$(grep -c 'done earlier, still holds' /tmp/again.txt)"
check "run again: no step ran" sh -c "! grep -q '^ *done (' /tmp/again.txt"
check "run again: the registry is not told twice" grep -q "disk-replaced was recorded earlier" /tmp/again.txt
equals "the decoy drive is byte-identical" "$decoy_before" "$(sha256sum <${id}_LABDECOY01)"
finish
