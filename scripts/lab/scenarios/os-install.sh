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
j=$JOURNALS/install-lab-node-0$node.jsonl
if grep -q 'keel\.packages-cut=resume' /proc/cmdline; then
  # the boot before this one cut the power in the middle of the package step (os-cut.sh)
  check "the journal was recovered from the target" grep -q "recovered it from /mnt/keel/var/lib/keel/install.jsonl" /tmp/install.txt
  equals "the package step started twice (before the cut, now)" 2 "$(grep -c '"event":"start","step":"os.packages"' $j)"
  # after the second start: the rollback to the snapshot, then the whole package pass
  awk '/"event":"start","step":"os.packages"/ {n++} n == 2 && /"event":"command","step":"os.packages"/' $j >/tmp/resumed.txt
  check "the resumed step rolled back to its snapshot, then ran the package pass" sh -c \
    "head -1 /tmp/resumed.txt | grep -q 'zfs rollback -r rpool/ROOT/pve-1@before-packages' && grep -q '\"command\":\"mmdebstrap ' /tmp/resumed.txt"
fi
# the package pass on the installed root: every package configured, no install-time options left
mkdir -p /mnt/dpkg
if zpool import -N -R /mnt/dpkg rpool && zfs mount rpool/ROOT/pve-1; then
  equals "packages not fully configured in the target" 0 "$(grep -c '^Status: install ok \(unpacked\|half-configured\|half-installed\|triggers-awaited\|triggers-pending\)$' /mnt/dpkg/var/lib/dpkg/status)"
  check "the snapshot the package step started from is gone" sh -c '! zfs list -H -t snapshot rpool/ROOT/pve-1@before-packages'
  check "no force-unsafe-io left for the node's dpkg (mmdebstrap's option files removed)" sh -c \
    '! ls /mnt/dpkg/etc/dpkg/dpkg.cfg.d/99mmdebstrap /mnt/dpkg/etc/apt/apt.conf.d/99mmdebstrap 2>/dev/null && ! grep -rqs unsafe-io /mnt/dpkg/etc/dpkg/dpkg.cfg.d'
  check "the node's own resolv.conf (not the rescue system's)" grep -q "keel" /mnt/dpkg/etc/resolv.conf
  # where the package pass spent its time (scripts/lab/dpkg-times.py reads it on the host)
  cp /mnt/dpkg/var/log/dpkg.log /results/dpkg.log 2>/dev/null
  zfs unmount rpool/ROOT/pve-1; zpool export rpool
else
  echo "FAIL  cannot import rpool to look at dpkg's state"; failures=$((failures + 1))
fi
arm_probe
finish
