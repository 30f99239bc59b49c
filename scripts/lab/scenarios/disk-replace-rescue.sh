# After disk-replace-live (keel-live replaced lab-node-01's drive 2 by the blank LABNVME0004
# from a rescue without ZFS), a rescue with ZFS on the same drives checks what it left: both
# pools exported and ONLINE mirrors of the survivor and the new drive, the node's boot list
# naming the new drive, GRUB's boot sector and core image and the ESP on it, the survivor's
# partition table as it was before the switch. keel disk replace here (a rescue system with
# ZFS: the pools read read-only and exported again for the plan, a dry run leaves nothing
# imported; it makes the run's checks too) finds nothing to replace and writes nothing to a drive. (That keel-boot-sync's drive
# boots alone is boot-new-drive's proof, on the node.)
. ./scenarios/lib.sh
survivor=LABNVME0001
new=LABNVME0004
id=/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl
equals "pools imported in the rescue system before" "" "$(zpool list -H -o name 2>/dev/null)"
check "the new drive has a partition table" sh -c "sfdisk --dump ${id}_$new >/dev/null"

# a dry run: the pools read read-only (exported again), the plan shown, and the run's checks:
# the new drive is an ONLINE member of both pools with nothing resilvering, nothing to replace
./keel disk replace --profile profiles/lab-node-01.toml --new $new --dry-run >/tmp/dry.txt 2>&1
equals "dry run exit code (nothing to replace)" 1 "$?"
sed 's/^/    /' /tmp/dry.txt | grep -v 'warning\|help:' | head -8
check "the plan says this is a rescue system" grep -q "this is a rescue system: rpool (GUID [0-9]*, ${id}_$survivor-part2)" /tmp/dry.txt
check "the dry run says there is nothing to replace" grep -q "$new is already an ONLINE member of rpool and datapool and nothing is resilvering" /tmp/dry.txt
equals "pools imported after the dry run (read read-only, exported again)" "" "$(zpool list -H -o name 2>/dev/null)"
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
equals "the survivor's partition table is as it was before the switch" "$(cat /payload/before/survivor.sfdisk)" "$(sfdisk --dump ${id}_$survivor)"
# again (no journal: keel-live's was in its memory): the pools are read read-only, the new
# drive is an ONLINE member of both with nothing resilvering: nothing to replace, said, nothing
# written, nothing left imported
./keel disk replace --profile profiles/lab-node-01.toml --new $new --yes --journal-dir $JOURNALS >/tmp/again.txt 2>&1
equals "keel disk replace again, in a rescue with ZFS: exit code" 1 "$?"
sed 's/^/    /' /tmp/again.txt | grep -v 'warning\|help:' | tail -2
check "it says there is nothing to replace" grep -q "$new is already an ONLINE member of rpool and datapool and nothing is resilvering" /tmp/again.txt
# (the plan it shows lists its commands 8 spaces in; what ran is in the journal's lines, 6)
check "run again: nothing written to a drive" sh -c "! grep -q '^      \\$ \\(sgdisk\\|zpool replace\\|zpool attach\\|mkfs\\|wipefs\\|chroot\\)' /tmp/again.txt"
equals "pools imported after the second run" "" "$(zpool list -H -o name 2>/dev/null)"
finish
