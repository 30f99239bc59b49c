# keel install of lab-node-02 from the root image that image-build made of lab-node-01, served
# by the keel-registry on the host loopback (http://10.0.2.101:8080/v1/images/): the disk phase,
# the image streamed into rpool/ROOT/pve-1 and checked, then only the node's own steps (identity,
# config, initramfs, GRUB on both drives, keel verify). Then the figures: the same receive as a
# shell one-liner (curl | zstd -d | zfs receive), keel's own receive pipeline, and keel's peak
# memory for the base image and one 512 MiB larger (only for bench-image.sh: keel.bench=1).
# The lab probe is armed for the boots.
. ./scenarios/lib.sh
rescue_network
url=http://10.0.2.101:8080/v1/images
{ ./keel install --profile profiles/lab-node-02.toml --image $url/pve-base.zfs.zst --yes --confirm-serials "$SERIALS" \
  --journal-dir $JOURNALS --progress plain; echo $? >/tmp/install.rc; } 2>&1 | tee /tmp/install.txt
equals "keel install --image exit code" 0 "$(cat /tmp/install.rc)"
j=$JOURNALS/install-lab-node-02.jsonl
check "the journal records the finish" grep -q '"event":"finished"' $j
check "the image was received and its SHA-256 matched" grep -q 'received image pve-base.zfs.zst .*matches the manifest' $j
check "no package pass, no apt" sh -c "! grep -q 'mmdebstrap\|apt-get install' $j"
check "verify passed on the target" grep -q 'verify.target' /tmp/install.txt
check "both pools exported" sh -c '! zpool list -H rpool && ! zpool list -H datapool'
grep -o 'received image [^"]*' $j | sed 's/^/figure: /'

image_node_checks
zfs umount rpool/ROOT/pve-1

# the bench's figures (keel.bench=1: bench-image.sh): the shell one-liner, keel's pipeline,
# keel's memory for two image sizes (each received into a scratch dataset of rpool, destroyed)
if grep -q 'keel\.bench=1' /proc/cmdline; then
  s=$(date +%s%N)
  curl -fsS $url/pve-base.zfs.zst | zstd -dc | zfs receive -u rpool/bench-shell
  equals "shell one-liner exit code" 0 "$?"
  echo "figure: shell one-liner (curl | zstd -dc | zfs receive) $(( ($(date +%s%N) - s) / 1000000 )) ms"
  zfs destroy -r rpool/bench-shell
  s=$(date +%s%N)
  ./keel image receive $url/pve-base.zfs.zst --dataset rpool/bench-keel | tee /tmp/recv-base.txt
  echo "figure: keel image receive (base) $(( ($(date +%s%N) - s) / 1000000 )) ms"
  zfs destroy -r rpool/bench-keel
  ./keel image receive $url/pve-big.zfs.zst --dataset rpool/bench-big | tee /tmp/recv-big.txt
  zfs destroy -r rpool/bench-big
  base_kib=$(sed -n 's/.*peak memory \([0-9]*\) KiB.*/\1/p' /tmp/recv-base.txt)
  big_kib=$(sed -n 's/.*peak memory \([0-9]*\) KiB.*/\1/p' /tmp/recv-big.txt)
  echo "figure: keel peak memory: base image $base_kib KiB, image 512 MiB larger $big_kib KiB"
  check "keel's memory stays flat as the image grows (within 4 MiB)" test "$big_kib" -le $(( ${base_kib:-0} + 4096 ))
fi
zpool export rpool
arm_probe
finish
