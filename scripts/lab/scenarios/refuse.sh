# Run with pinned serials on hardware that lacks one of them: refused before anything is written.
. ./scenarios/lib.sh
sed 's/^serials = \[\]/serials = ["LABNVME0001", "LABNVME0002"]/' profiles/lab-node-01.toml >/tmp/pinned.toml
./keel install --profile /tmp/pinned.toml --yes --confirm-serials "$SERIALS" --journal-dir $JOURNALS >/tmp/refused.txt 2>&1
equals "keel install exit code" 1 "$?"
cat /tmp/refused.txt
check "says which serial is missing" grep -q "pinned disk serial LABNVME0002 (disks.serials) is not in this machine" /tmp/refused.txt
check "nothing written: no partition table" sh -c "! sfdisk --dump /dev/nvme0n1 2>/dev/null | grep -q '^/dev'"
finish
