# Start the disk phase and cut the power once the root file system exists (the journal is
# mirrored into it then), in the middle of the dataset steps.
# With the old install's disk attached (run-all: foreign-prep first), keel first refuses: its
# exported rpool and datapool would be found beside the new ones; the lab then accepts them.
. ./scenarios/lib.sh
: >/tmp/install.txt
if [ -e $OLD_DISK ]; then
  ./keel install --profile profiles/lab-node-01.toml --yes --confirm-serials "$SERIALS" \
    --journal-dir "$JOURNALS" --progress plain --until datasets.datapool >/tmp/refused.txt 2>&1
  rc=$?
  { echo "without --accept-foreign-pools: exit $rc"; cat /tmp/refused.txt; echo; } >>/tmp/install.txt
  if [ $rc != 1 ] || ! grep -q "disks outside the plan carry pools named like" /tmp/refused.txt \
     || ! grep -q "sda (serial LABOLD0003) holds pool rpool" /tmp/refused.txt || ! grep -q -- "--clear-zfs-labels LABOLD0003" /tmp/refused.txt; then
    cat /tmp/install.txt
    echo "FAIL  keel did not refuse the old disk's pools as expected"
    exit 1
  fi
  echo "ok    refused without --accept-foreign-pools (exit 1, names sda (serial LABOLD0003) and its rpool)" >>/tmp/install.txt
fi
install_lab >>/tmp/install.txt 2>&1 &
journal=$JOURNALS/install-lab-node-01.jsonl
for _ in $(seq 1 600); do
  grep -q '"event":"done","step":"datasets.root"' $journal 2>/dev/null && break
  sleep 0.5
done
cat /tmp/install.txt
grep -q '"event":"done","step":"datasets.root"' $journal || { echo "FAIL: datasets.root never finished"; exit 1; }
echo "cutting the power now"
echo 0 >/results/rc
echo 0 >/results/seconds
cp /tmp/install.txt /results/output.txt
(cd /results && tar cf /dev/vdc .)
echo 1 >/proc/sys/kernel/sysrq
echo o >/proc/sysrq-trigger
sleep 30
