# An old install's disk: the SATA disk LABOLD0003 gets two partitions with exported pools named
# rpool and datapool (every Proxmox VE ZFS install names its root pool rpool), each with a file.
# The host then takes its checksum; crash.sh and resume.sh run keel beside it.
. ./scenarios/lib.sh
check "the old disk is here" test -e $OLD_DISK
sgdisk --clear --new=1:2048:+400M --typecode=1:BF01 --new=2:0:+400M --typecode=2:BF01 $OLD_DISK >/dev/null
partprobe $OLD_DISK; udevadm settle --timeout=30
zpool create -f -o ashift=12 -O mountpoint=none rpool $OLD_DISK-part1
zpool create -f -o ashift=12 -O mountpoint=none datapool $OLD_DISK-part2
zfs create -o mountpoint=/old-root rpool/ROOT
echo "the old install's root" >/old-root/marker
zfs umount rpool/ROOT
zpool export rpool
zpool export datapool
old_pools | sed 's/^/old pool: /'
equals "pools on the old disk" "datapool rpool" "$(old_pools | awk '{print $1}' | tr '\n' ' ' | sed 's/ $//')"
finish
