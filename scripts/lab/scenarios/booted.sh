# On the installed system, booted from its own drives (both, or one: see keel.drives in the
# payload's scenario name): the root is the ZFS dataset, the host is who the profile says, and
# keel verify passes (a missing drive is allowed to degrade the mirror, nothing else).
. ./scenarios/lib.sh
wait_booted
scenario=$(cat /payload/scenario)
host=$(hostname)
equals "root file system" rpool/ROOT/pve-1 "$(findmnt -n -o SOURCE /)"
# booted through the firmware the host chose (OVMF: GRUB's EFI loader on the ESP; SeaBIOS: the
# BIOS boot partition)
if [ -d /sys/firmware/efi ]; then firmware=uefi; else firmware=bios; fi
equals "firmware" "$(cat /payload/firmware 2>/dev/null || echo bios)" "$firmware"
check "host name is a lab node" sh -c "echo $host | grep -q '^lab-node-0[12]$'"
drives=$(ls /dev/disk/by-id/ | grep -c '^nvme-QEMU_NVMe_Ctrl_LABNVME000[0-9]$')
echo "drives present: $drives"
args=""
if [ "$drives" = 1 ]; then
  args=--allow-degraded
  equals "rpool is degraded (one drive)" DEGRADED "$(zpool list -H -o health rpool)"
fi
equals "datapool imported at boot" datapool "$(zpool list -H -o name datapool 2>/dev/null)"
equals "host id in use is the installed one" "$(od -An -tx4 /etc/hostid | tr -d ' ')" "$(hostid)"
equals "OpenZFS runs with it (spl_hostid from the kernel command line)" "$(od -An -tx4 /etc/hostid | tr -d ' ')" "$(printf '%08x' "$(cat /sys/module/spl/parameters/spl_hostid)")"
# keel's first-boot unit ran at this boot or an earlier one: done, and disabled itself
check "keel-first-boot finished" sh -c 'for i in $(seq 300); do [ -e /var/lib/keel/first-boot.done ] && exit 0; sleep 2; done; journalctl -u keel-first-boot --no-pager | tail -20; exit 1'
first_boot_disabled
journalctl -u keel-first-boot --no-pager -o cat 2>/dev/null | grep 'first boot' | tail -8
# its first boot formed the cluster (lab-node-01: pvecm create) or joined it (lab-node-02)
check "$host is in /etc/pve/corosync.conf (pvecm's cluster)" grep -q "name: $host\$" /etc/pve/corosync.conf
/usr/local/sbin/keel verify $args >/tmp/verify.txt 2>&1
equals "keel verify $args exit code" 0 "$?"
cat /tmp/verify.txt
finish
