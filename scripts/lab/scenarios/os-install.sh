# keel install of lab-node-0N from the rescue system, end to end: disk phase, Debian and the
# (stand-in) Proxmox packages from the lab repository, configuration, GRUB on both drives,
# keel verify on the mounted target, pools exported. Then the lab probe is armed for the boots.
. ./scenarios/lib.sh
node=$(node_number)
rescue_network
# keel's progress goes to the console as it happens (the host can follow the install)
# With keel.registry= and keel.token= on the kernel command line (run-all.sh puts them there
# for lab-node-01) the install is unattended: the profile comes from the registry.
profile="--profile profiles/lab-node-0$node.toml"
grep -q 'keel\.token=' /proc/cmdline && profile=""
{ ./keel install $profile --yes --confirm-serials "$SERIALS" \
  --journal-dir $JOURNALS --progress plain; echo $? >/tmp/install.rc; } 2>&1 | tee /tmp/install.txt
equals "keel install exit code" 0 "$(cat /tmp/install.rc)"
if [ -z "$profile" ]; then
  check "the profile came from the registry" grep -q 'from-registry/profiles/lab-node-0'"$node"'.toml from the registry' /tmp/install.txt
  check "every event and the report reached the registry" grep -q 'report sent (ok)' /tmp/install.txt
fi
check "the journal records the finish" grep -q '"event":"finished"' $JOURNALS/install-lab-node-0$node.jsonl
check "verify passed on the target" grep -q 'verify.target' /tmp/install.txt
check "both pools exported" sh -c '! zpool list -H rpool && ! zpool list -H datapool'
arm_probe
finish
