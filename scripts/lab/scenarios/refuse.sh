# Pinned serials on hardware that lacks one of them (a drive missing, or a drive with another
# serial): refused before anything is written.
. ./scenarios/lib.sh
sed 's/^serials = \[\]/serials = ["LABNVME0001", "LABNVME0002"]/' profiles/lab-node-01.toml >/tmp/pinned.toml
./keel install --profile /tmp/pinned.toml --spec hardware-specs/qemu-lab.toml --yes --confirm-serials "$SERIALS" \
  --journal-dir $JOURNALS >/tmp/refused.txt 2>&1
equals "keel install exit code" 1 "$?"
cat /tmp/refused.txt
if [ "$(ls /sys/class/nvme | wc -l)" = 1 ]; then
  check "the spec check names the missing drive" grep -q "1 NVMe drive(s) missing" /tmp/refused.txt
else
  check "says which serial is missing" grep -q "pinned disk serial LABNVME0002 (disks.serials) is not in this machine" /tmp/refused.txt
fi
for dev in /dev/nvme0n1 /dev/nvme1n1; do
  [ -e $dev ] && check "nothing written on $dev: no partition table" sh -c "! sfdisk --dump $dev 2>/dev/null | grep -q '^/dev'"
done
check "no journal was started" test ! -e $JOURNALS/install-lab-node-01.jsonl
finish
