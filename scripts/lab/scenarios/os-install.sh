# keel install of lab-node-0N from the rescue system, end to end: disk phase, Debian and the
# (stand-in) Proxmox packages from the lab repository, configuration, GRUB on both drives,
# keel verify on the mounted target, pools exported. Then the lab probe is armed for the boots.
. ./scenarios/lib.sh
node=$(node_number)
rescue_network
# keel's progress goes to the console as it happens (the host can follow the install)
{ ./keel install --profile profiles/lab-node-0$node.toml --yes --confirm-serials "$SERIALS" \
  --journal-dir $JOURNALS --progress plain; echo $? >/tmp/install.rc; } 2>&1 | tee /tmp/install.txt
equals "keel install exit code" 0 "$(cat /tmp/install.rc)"
check "the journal records the finish" grep -q '"event":"finished"' $JOURNALS/install-lab-node-0$node.jsonl
check "verify passed on the target" grep -q 'verify.target' /tmp/install.txt
check "both pools exported" sh -c '! zpool list -H rpool && ! zpool list -H datapool'
arm_probe
finish
