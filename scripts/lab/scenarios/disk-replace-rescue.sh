# keel disk replace from the rescue system: lab-node-01's drive 1 (the node down, its pools
# exported as a clean shutdown left them) with drive 2 swapped for a blank drive of another
# serial (LABNVME0004). With the node's profile keel reads both pools read-only and exports them
# again for the plan (a dry run leaves nothing imported), then imports them by GUID from the
# survivor, partitions the new drive, replaces the dead members, follows the resilver, puts the
# boot loader on inside the node's root (chroot) and exports both pools; the node's boot list
# names the new drive, GRUB's boot sector and core image are on it; a second run writes nothing
# to a drive. (That keel-boot-sync's drive boots alone is boot-new-drive's proof, on the node.)
. ./scenarios/lib.sh
survivor=LABNVME0001
new=LABNVME0004
id=/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl
equals "pools imported in the rescue system before" "" "$(zpool list -H -o name 2>/dev/null)"
check "the new drive is blank" sh -c "[ -z \"\$(wipefs --noheadings ${id}_$new)\" ] && ! ls ${id}_$new-part1 2>/dev/null"
survivor_table=$(sfdisk --dump ${id}_$survivor)

./keel disk replace --profile profiles/lab-node-01.toml --new $new --dry-run >/tmp/dry.txt 2>&1
equals "dry run exit code" 0 "$?"
sed 's/^/    /' /tmp/dry.txt | grep -v 'warning\|help:' | head -8
check "the plan says this is a rescue system" grep -q "this is a rescue system: rpool (GUID [0-9]*, ${id}_$survivor-part2)" /tmp/dry.txt
equals "pools imported after the dry run (read read-only, exported again)" "" "$(zpool list -H -o name 2>/dev/null)"
check "after the dry run the new drive is still blank" sh -c "[ -z \"\$(wipefs --noheadings ${id}_$new)\" ]"

start=$(date +%s)
./keel disk replace --profile profiles/lab-node-01.toml --new $new --yes --journal-dir $JOURNALS >/tmp/replace.txt 2>&1
rc=$?
sed 's/^/    /' /tmp/replace.txt | grep -v 'warning\|help:'
equals "keel disk replace --new $new --yes (rescue system): exit code" 0 "$rc"
echo "replace took $(( $(date +%s) - start ))s"
check "imported by GUID from the survivor's partition" grep -q "^ *\\$ zpool import -N -f -R /mnt/keel -d ${id}_$survivor-part2 [0-9][0-9]*$" /tmp/replace.txt
check "the dead member was replaced by its GUID" grep -q "zpool replace rpool [0-9][0-9]* ${id}_$new-part2" /tmp/replace.txt
check "the resilver was followed to its end" grep -q "resilver finished" /tmp/replace.txt
check "the profile pins no serials: nothing to change in it" grep -q "the profile pins no drive serials" /tmp/replace.txt
check "the boot loader went on inside the node's root" grep -q "^ *\\$ chroot /mnt/keel /usr/local/sbin/keel-boot-sync install" /tmp/replace.txt
equals "pools imported at the end (both exported)" "" "$(zpool list -H -o name 2>/dev/null)"
zpool import -d ${id}_$survivor-part2 -d ${id}_$new-part2 -d ${id}_$survivor-part3 -d ${id}_$new-part3 >/tmp/listing.txt 2>&1
check "rpool and datapool as the node will find them: ONLINE" sh -c "[ \"\$(grep -c 'state: ONLINE' /tmp/listing.txt)\" = 2 ]"
check "rpool is a mirror of the survivor and the new drive" sh -c "grep -q 'QEMU_NVMe_Ctrl_$new-part2 *ONLINE' /tmp/listing.txt && grep -q 'QEMU_NVMe_Ctrl_$survivor-part2 *ONLINE' /tmp/listing.txt"
# the node's own files (its root, read-only)
mkdir -p /tmp/node
if zpool import -o readonly=on -N -R /tmp/node -d ${id}_$survivor-part2 -d ${id}_$new-part2 rpool && zfs mount rpool/ROOT/pve-1; then
  check "the node's boot list names the new drive" grep -qx "${id}_$new" /tmp/node/etc/keel/boot-disks
  check "no line of it names the dead drive" sh -c "! grep -q LABNVME0002 /tmp/node/etc/keel/boot-disks"
  check "the rescue system's own /etc got nothing" sh -c "! test -e /etc/keel/boot-disks"
  umount /tmp/node
  zpool export rpool
else
  check "rpool imports read-only to read the node's files" false
fi
# GRUB for BIOS: its boot sector (boot.img says "GRUB") and its core image in the BIOS boot partition
check "the new drive's boot sector is GRUB's" sh -c "dd if=${id}_$new bs=440 count=1 2>/dev/null | grep -aq GRUB"
check "GRUB's core image is in its BIOS boot partition" sh -c "dd if=${id}_$new-part4 bs=512 count=1 2>/dev/null | od -An -tx1 | grep -q '[1-9a-f]'"
mkdir -p /tmp/esp
check "the new drive's ESP carries GRUB's configuration and the kernel" sh -c "mount -o ro ${id}_$new-part1 /tmp/esp && ls /tmp/esp/grub/grub.cfg /tmp/esp/vmlinuz-* && ls /tmp/esp/EFI/BOOT/BOOTX64.EFI; umount /tmp/esp"
equals "the survivor's partition table is untouched" "$survivor_table" "$(sfdisk --dump ${id}_$survivor)"
# again: the pools are imported, checked and exported again; nothing is written to a drive
./keel disk replace --profile profiles/lab-node-01.toml --new $new --yes --journal-dir $JOURNALS >/tmp/again.txt 2>&1
equals "the same command again: exit code" 0 "$?"
sed 's/^/    /' /tmp/again.txt | grep -v '^ *\$\|^    \[\|warning\|help:' | tail -8
# (the plan it shows lists its commands 8 spaces in; what ran is in the journal's lines, 6)
check "run again: nothing written to a drive" sh -c "! grep -q '^      \\$ \\(sgdisk\\|zpool replace\\|zpool attach\\|mkfs\\|wipefs\\|chroot\\)' /tmp/again.txt"
check "run again: the replace steps were found done" grep -q "replace.rpool: done earlier, still holds" /tmp/again.txt
equals "pools imported after the second run" "" "$(zpool list -H -o name 2>/dev/null)"
finish
