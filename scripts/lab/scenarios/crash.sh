# Start the disk phase and cut the power once the root file system exists (the journal is
# mirrored into it then), in the middle of the dataset steps.
. ./scenarios/lib.sh
install_lab >/tmp/install.txt 2>&1 &
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
