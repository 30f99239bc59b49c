# After live-switch, in the rescue stand-in with ZFS: what keel-live's install left on
# lab-node-02's drives. The journal's copy in the target says the image was received and
# checked and the target verified; the node is its own (image_node_checks); both pools are
# limited to the node's feature set (openzfs-2.1-linux) although OpenZFS 2.3 made them, so
# nothing newer is enabled. The lab probe is armed for the boots.
. ./scenarios/lib.sh
echo "this rescue's OpenZFS: $(cat /sys/module/zfs/version)"
image_node_checks
j=/mnt/keel/var/lib/keel/install.jsonl
check "the target's journal: the image was received and its SHA-256 matched" grep -q 'received image pve-base.zfs.zst .*matches the manifest' $j
check "the target's journal: verify.target done" grep -q '"event":"done","step":"verify.target"' $j
check "zpool history: rpool made with the node's feature set" sh -c "zpool history rpool | grep -q 'zpool create .*-o compatibility=openzfs-2.1-linux'"
zpool import -N -R /mnt/keel datapool
set_file=/usr/share/zfs/compatibility.d/openzfs-2.1-linux
for p in rpool datapool; do
  equals "$p compatibility" openzfs-2.1-linux "$(zpool get -H -o value compatibility $p)"
  zpool get -H -o property,value all $p | awk '($2 == "enabled" || $2 == "active") && $1 ~ /^feature@/ {sub("feature@", "", $1); print $1}' >/tmp/on.txt
  check "$p: $(wc -l </tmp/on.txt) features on, none outside the node's set" sh -c "! grep -vxFf $set_file /tmp/on.txt"
  # one that this OpenZFS enables on every new pool unless told otherwise
  equals "$p feature@block_cloning (OpenZFS 2.2)" disabled "$(zpool get -H -o value feature@block_cloning $p)"
done
zfs umount rpool/ROOT/pve-1
zpool export datapool
zpool export rpool
arm_probe
finish
