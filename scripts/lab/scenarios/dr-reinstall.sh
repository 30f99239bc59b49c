# Disaster recovery of lab-node-01 while lab-node-02 runs the cluster: the rescue system over
# the node keel installed and booted before (its cluster formed), with no journal of its own;
# the one on rpool belongs to a finished install, so keel does not resume it. Without
# --wipe-existing keel refuses (the drives hold ZFS members); with it, the node is installed
# afresh from the root image the registry serves (new pools, new host keys), reporting to the
# registry with the token on the rescue kernel's command line. The lab probe is armed for the
# boot that rejoins the cluster (rejoin.sh).
. ./scenarios/lib.sh
rescue_network
url=http://10.0.2.101:8080/v1/images
old=$(zpool import -d /dev/disk/by-id 2>/dev/null | awk '/id:/ {print $2}' | sort | tr '\n' ' ')
install_image() {
  ./keel install --profile profiles/lab-node-01.toml --image $url/pve-base.zfs.zst --yes --confirm-serials "$SERIALS" \
    --journal-dir $JOURNALS --progress plain "$@"
}
install_image >/tmp/refused.txt 2>&1
equals "without --wipe-existing: exit code" 1 "$?"
tail -4 /tmp/refused.txt
check "refused because of the old pools" grep -q "zfs_member.*--wipe-existing" /tmp/refused.txt
check "the finished install was not resumed" sh -c "! grep -q 'recovered it from' /tmp/refused.txt"
check "the old pools are left exported" sh -c "! zpool list rpool"
{ install_image --wipe-existing; echo $? >/tmp/install.rc; } 2>&1 | tee /tmp/install.txt | grep -v '^  ' | tail -25
equals "with --wipe-existing: keel install --image exit code" 0 "$(cat /tmp/install.rc)"
j=$JOURNALS/install-lab-node-01.jsonl
check "the journal records the finish" grep -q '"event":"finished"' $j
check "the image was received and its SHA-256 matched" grep -q 'received image pve-base.zfs.zst .*matches the manifest' $j
new=$(zpool import -d /dev/disk/by-id 2>/dev/null | awk '/id:/ {print $2}' | sort | tr '\n' ' ')
check "new pools replaced the old ones" test "$old" != "$new"
grep -o 'received image [^"]*' $j | sed 's/^/figure: /'
arm_probe
finish
