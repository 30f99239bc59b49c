# keel disk replace from a rescue system like Hetzner's (no ZFS module; `zpool`/`zfs` are
# scripts that offer to build it): lab-node-01's drive 1 (the node down, its pools exported as
# a clean shutdown left them) with drive 2 swapped for a blank drive of another serial
# (LABNVME0004). Without keel-live keel refuses and says where ZFS comes from; a dry run with
# it names the survivor and the new drive and starts nothing; with the unattended consent
# (--yes, the drive named by --new) keel switches to keel-live by kexec, which runs
# `keel disk replace --new LABNVME0004 --yes` with the node's profile and powers off.
# Before the switch this scenario writes its own part to the results disk (pre-rc, the
# survivor's partition table for disk-replace-rescue's check); the host reads the rest from the
# console (boot.sh KEEL_LAB_RESULT=console). disk-replace-rescue then boots a rescue with ZFS
# on the same drives and checks what keel-live left.
. ./scenarios/lib.sh
rescue_network offline
hetzner_rescue
survivor=LABNVME0001
new=LABNVME0004
id=/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl
blank() { sh -c "[ -z \"\$(wipefs --noheadings ${id}_$new)\" ] && ! ls ${id}_$new-part1 2>/dev/null"; }
check "the new drive is blank" blank
mkdir -p /results/before
sfdisk --dump ${id}_$survivor >/results/before/survivor.sfdisk
args="--profile profiles/lab-node-01.toml --new $new --journal-dir $JOURNALS"

./keel disk replace $args --yes >/tmp/no-live.txt 2>&1
equals "without keel-live: exit code" 1 "$?"
sed 's/^/      /' /tmp/no-live.txt | grep -v 'warning\|help:' | tail -2
check "it says why: no ZFS module" grep -q "this system has no ZFS module" /tmp/no-live.txt
check "and where ZFS comes from: --live" grep -q -- "--live DIR" /tmp/no-live.txt
check "the scripts were not run" test ! -e /tmp/zfs-wrapper-ran

./keel disk replace $args --live /payload/live --dry-run >/tmp/dry.txt 2>&1
equals "dry run with keel-live: exit code" 0 "$?"
sed 's/^/      /' /tmp/dry.txt | grep -v 'warning\|help:'
check "it names the survivor and the new drive" grep -q "from the surviving drive ($survivor (nvme.*the new drive $new (" /tmp/dry.txt
check "and started nothing" grep -q "keel-live was not started" /tmp/dry.txt

./keel disk replace $args --live /payload/live </dev/null >/tmp/no-consent.txt 2>&1
equals "without --yes and no terminal: exit code" 1 "$?"
check "it asks for --yes" grep -q "no terminal to ask for confirmation" /tmp/no-consent.txt

./keel disk replace --profile profiles/lab-node-01.toml --new $survivor --live /payload/live --yes >/tmp/survivor.txt 2>&1
equals "the survivor named as new: exit code" 1 "$?"
check "refused before the switch: the survivor is not blank" grep -q "the new drive $survivor is not blank" /tmp/survivor.txt

check "the scripts were still not run" test ! -e /tmp/zfs-wrapper-ran
check "nothing was written: the new drive is blank" blank
check "keel-live is on the payload disk" test -s /payload/live/initrd.img
# this scenario's part of the result, before the switch ends it
echo "$failures" >/results/pre-rc
(cd /results && tar cf /dev/vdc .)
echo "live-switch: switching at $(date +%s.%N) (uptime $(cut -d' ' -f1 /proc/uptime) s)"
./keel disk replace $args --yes --live /payload/live --live-after-success poweroff --live-after-failure poweroff
echo "FAIL  keel disk replace returned instead of switching: exit $?"
echo 1 >/results/pre-rc
(cd /results && tar cf /dev/vdc .)
finish
