# Helpers for lab scenarios (sourced; cwd is the payload: ./keel, profiles/, hardware-specs/).
SERIALS=LABNVME0001,LABNVME0002
JOURNALS=/var/lib/keel
failures=${failures:-0} # a scenario that sources another keeps its count

check() { # check "what" command...: runs the command, reports ok/FAIL
  what=$1
  shift
  if "$@" >/tmp/check.out 2>&1; then
    echo "ok    $what"
  else
    echo "FAIL  $what"
    sed 's/^/      /' /tmp/check.out | tail -15
    failures=$((failures + 1))
  fi
}

equals() { # equals "what" expected actual
  if [ "$2" = "$3" ]; then echo "ok    $1 = $2"; else echo "FAIL  $1: expected '$2', found '$3'"; failures=$((failures + 1)); fi
}

# An old install's disk beside the targets (boot.sh KEEL_LAB_SATA=LABOLD0003): exported pools
# named rpool and datapool (foreign-prep.sh). keel refuses it unless told; the lab accepts it.
OLD_DISK=/dev/disk/by-id/ata-QEMU_HARDDISK_LABOLD0003

install_lab() { # the disk phase of lab-node-01 (up to the last dataset step), unattended
  accept=""
  [ -e $OLD_DISK ] && accept=--accept-foreign-pools
  ./keel install --profile profiles/lab-node-01.toml --yes --confirm-serials "$SERIALS" \
    --journal-dir "$JOURNALS" --progress plain --until datasets.datapool $accept "$@"
}

old_pools() { # what `zpool import` finds on the old disk alone: "name guid" per pool
  zpool import -d $OLD_DISK-part1 -d $OLD_DISK-part2 2>/dev/null | awk '/pool:/ {n=$2} /id:/ {print n, $2}' | sort
}

node_number() { # keel.node=N on the kernel command line (rescue boots), default 1
  n=$(sed -n 's/.*keel\.node=\([0-9]\).*/\1/p' /proc/cmdline)
  echo "${n:-1}"
}

rescue_network() { # what the Hetzner rescue system has: an address and a route ("offline": no lab repository)
  nic=$(ls /sys/class/net | grep -v '^lo$' | head -1)
  ip link set "$nic" up
  ip addr add 10.0.2.15/24 dev "$nic"
  ip route add default via 10.0.2.2
  [ "${1:-}" = offline ] || check "the lab repository answers (http://10.0.2.100/)" curl -fsS -o /dev/null http://10.0.2.100/debian/dists/bookworm/InRelease
}

# An install from the root image made the node its own (image-install, image-check): rpool
# imported under /mnt/keel with the root mounted (the caller unmounts and exports).
image_node_checks() {
  # the node is its own: host keys and machine id are not the image's
  zpool import -N -R /mnt/keel rpool && zfs mount rpool/ROOT/pve-1
  snap=/mnt/keel/.zfs/snapshot/keel-base
  check "the received snapshot carries no host keys" sh -c "! ls $snap/etc/ssh | grep -q ssh_host_"
  check "the node has its own SSH host keys" test -s /mnt/keel/etc/ssh/ssh_host_ed25519_key
  check "its machine id is not the image's" sh -c "[ -s /mnt/keel/etc/machine-id ] && ! cmp -s /mnt/keel/etc/machine-id $snap/etc/machine-id"
  check "its host id is not the image's" sh -c "! cmp -s /mnt/keel/etc/hostid $snap/etc/hostid"
  # the image's initramfs boots this node as received (host id and noresume on the command line)
  for initrd in /mnt/keel/boot/initrd.img-*; do
    check "$(basename $initrd) is the image's, not rebuilt" cmp $initrd $snap/boot/$(basename $initrd)
  done
  check "the kernel command line carries this node's host id" grep -q "spl.spl_hostid=0x$(od -An -tx4 /mnt/keel/etc/hostid | tr -d ' ') noresume" /mnt/keel/etc/kernel/cmdline
  equals "mail name" lab-node-02.internal.cluster "$(cat /mnt/keel/etc/mailname)"
}

# What Hetzner's rescue system has instead of ZFS: no module, and `zpool`/`zfs` are scripts that
# offer to build OpenZFS from source and wait for an answer (public reports: disko issue 815,
# terem42/zfs-hetzner-vm issues 41 and 46). The lab's rescue stand-in is keel-live's root, so
# its module is unloaded and deleted and its programs replaced by such scripts; a script that
# runs leaves /tmp/zfs-wrapper-ran behind (keel must never run them).
hetzner_rescue() {
  modprobe -r zfs 2>/dev/null
  find /lib/modules -name 'zfs.ko*' -o -name 'spl.ko*' | xargs rm -f
  depmod -a
  rm -f /usr/sbin/zpool /usr/sbin/zfs /sbin/zpool /sbin/zfs
  for t in zpool zfs; do
    cat >/usr/local/sbin/$t <<'WRAP'
#!/bin/bash
touch /tmp/zfs-wrapper-ran
echo "ZFS is not installed on this rescue system. Build and install the current OpenZFS release now? (y/N)"
read -r answer
[ "$answer" = y ] || exit 1
WRAP
    chmod +x /usr/local/sbin/$t
  done
  check "no ZFS module" sh -c '! modprobe -n zfs 2>/dev/null && [ ! -e /sys/module/zfs ]'
  check "zpool is a script" sh -c 'head -c2 "$(command -v zpool)" | grep -q "#!"'
}

# The lab harness (not keel) adds a oneshot unit to the installed system that runs the next
# scenario at boot (probe-init on the payload disk) and keeps the serial console free of getty.
arm_probe() {
  mkdir -p /mnt/probe
  zpool import -N -R /mnt/probe rpool && zfs mount rpool/ROOT/pve-1 || { echo "FAIL  cannot import rpool to arm the probe"; failures=$((failures + 1)); return; }
  cat >/mnt/probe/etc/systemd/system/keel-lab-probe.service <<'UNIT'
[Unit]
Description=keel lab probe (added by the lab harness after the install, not by keel)
After=multi-user.target

[Service]
Type=simple
ExecStart=/bin/sh -c 'mkdir -p /payload && mount -o ro /dev/disk/by-id/virtio-keelpayload /payload && exec sh /payload/probe-init'
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
UNIT
  # two nodes on one link (the cluster scenario): the registry is on a second NIC the lab adds
  cat >/mnt/probe/etc/systemd/system/keel-lab-registry-link.service <<'UNIT'
[Unit]
Description=keel lab: the registry on the lab's second NIC, if there is one (added by the lab harness, not by keel)
After=networking.service
Before=keel-first-boot.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'for d in /sys/class/net/*; do if grep -q "^52:54:00:ff:" $$d/address; then n=$${d##*/}; ip link set dev $$n up; ip addr replace 10.0.2.50/24 dev $$n; fi; done; true'

[Install]
WantedBy=multi-user.target
UNIT
  mkdir -p /mnt/probe/etc/systemd/system/multi-user.target.wants
  ln -sf /etc/systemd/system/keel-lab-probe.service /mnt/probe/etc/systemd/system/multi-user.target.wants/
  ln -sf /etc/systemd/system/keel-lab-registry-link.service /mnt/probe/etc/systemd/system/multi-user.target.wants/
  ln -sf /dev/null /mnt/probe/etc/systemd/system/serial-getty@ttyS0.service
  zpool export rpool
  echo "ok    lab probe armed in the installed system"
}

# On the installed system: wait until boot finished (or gave up), then the checks.
wait_booted() {
  state=$(timeout 300 systemctl is-system-running --wait 2>/dev/null)
  echo "system state: $state"
  systemctl --failed --no-legend --plain | sed 's/^/  failed unit: /'
  for u in $(systemctl --failed --no-legend --plain | awk '{print $1}'); do
    journalctl -u "$u" --no-pager -o cat -n 4 2>/dev/null | sed "s/^/    $u: /"
  done
  # fail2ban's server is "started" before its jails are up (python under emulation: seconds)
  if command -v fail2ban-client >/dev/null; then
    for _ in $(seq 1 90); do fail2ban-client status 2>/dev/null | grep -q 'Jail list:.*[a-z]' && break; sleep 2; done
  fi
}

# What a correct disk phase leaves (the plan of the profile given, lab-node-01's by default): tables as planned, both pools mirrored on the by-id p2/p3
# partitions with every seed property, the datasets and the swap zvol.
# `zfs get`'s value, with OpenZFS 2.3's display of xattr=sa as "on" said as sa (from 2.3 on
# means sa; before, dir: openzfs/zfs zfs_prop.c, e419a63bf4 and fa4d4b1f80)
zfs_value() { # property dataset
  v=$(zfs get -H -o value "$1" "$2")
  if [ "$1" = xattr ] && [ "$v" = on ] && ! grep -q '^[01]\.\|^2\.[012]\.' /sys/module/zfs/version; then v=sa; fi
  echo "$v"
}

verify_disk_phase() { # [profile]: lab-node-01's by default
  ./keel plan --profile "${1:-profiles/lab-node-01.toml}" --json >/tmp/plan.json 2>/dev/null
  for serial in LABNVME0001 LABNVME0002; do
    dev=$(readlink -f /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_$serial)
    want=$(awk -F'[:,]' '/"number"/ {n=$2} /"first_sector"/ {f=$2} /"last_sector"/ {print n+0, f+0, $2-f+1}' /tmp/plan.json | sort -n)
    have=$(sfdisk --json "$dev" | awk -F'[:,]' '/"node"/ {gsub(/[" ]/, "", $2); n=$2; sub(/.*p/, "", n)} /"start"/ {s=$2} /"size"/ {print n+0, s+0, $2+0}' | sort -n)
    equals "partition table of $serial (number start size)" "$want" "$have"
  done
  # the targets' partitions only: another disk may carry pools of the same names
  for pool in rpool datapool; do
    part=2; [ $pool = datapool ] && part=3
    zpool list $pool >/dev/null 2>&1 || zpool import -d /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME0001-part$part \
      -d /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME0002-part$part -N -R /mnt/keel $pool >/dev/null 2>&1
  done
  for pool in rpool datapool; do
    part=2; [ $pool = datapool ] && part=3
    equals "$pool health" ONLINE "$(zpool get -H -o value health $pool)"
    equals "$pool ashift" 12 "$(zpool get -H -o value ashift $pool)"
    equals "$pool mirror members (by-id p$part)" 2 "$(zpool status -P $pool | grep -c "/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME000[12]-part$part ")"
    check "$pool is a mirror" sh -c "zpool status $pool | grep -q mirror-0"
    for prop in compression=lz4 atime=off xattr=sa dnodesize=auto normalization=formD mountpoint=none; do
      equals "$pool ${prop%%=*}" "${prop#*=}" "$(zfs_value ${prop%%=*} $pool)"
    done
  done
  equals "rpool bootfs" rpool/ROOT/pve-1 "$(zpool get -H -o value bootfs rpool)"
  for ds in rpool/ROOT rpool/ROOT/pve-1 datapool/ct datapool/vm datapool/backups datapool/templates; do
    check "dataset $ds exists" zfs list -H -o name $ds
  done
  equals "swap zvol size" 536870912 "$(zfs get -H -p -o value volsize rpool/swap)"
  equals "swap signature" swap "$(blkid -p -o value -s TYPE /dev/zvol/rpool/swap)"
  for serial in LABNVME0001 LABNVME0002; do
    equals "ESP of $serial" vfat "$(blkid -p -o value -s TYPE /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_$serial-part1)"
  done
  zpool export datapool
  zpool export rpool
}

# keel-first-boot marks itself done, then disables itself (`systemctl disable`) and ends: the
# check waits for the unit to end (up to 60 s) before it reads is-enabled
first_boot_disabled() {
  for _ in $(seq 1 30); do
    case $(systemctl is-active keel-first-boot.service 2>/dev/null) in active|activating|deactivating) sleep 2 ;; *) break ;; esac
  done
  equals "keel-first-boot disabled itself" disabled "$(systemctl is-enabled keel-first-boot.service 2>&1)"
}

# A pool made by a newer OpenZFS imports on this node only when made with the node's feature set
# (zfs.compatibility): live-switch made two with keel-live's OpenZFS 2.3, keelcompat with
# compatibility=openzfs-2.1-linux and keelnocompat without; this node runs Debian 12's 2.1. The
# second is the negative control: it must not import, for features outside the 2.1 set that are
# active from creation (2.2's vdev_zaps_v2 and head_errlog, zfeature_common.c).
compat_pools_check() {
  [ -d /payload/compat-pools ] || { echo "FAIL  no compat-pools on the payload disk"; failures=$((failures + 1)); return; }
  d=/tmp/compat-pools
  mkdir -p $d
  for f in /payload/compat-pools/*.gz; do gzip -dc "$f" >"$d/$(basename "$f" .gz)"; done
  echo "this node's OpenZFS: $(cat /sys/module/zfs/version)"
  check "OpenZFS 2.1 here: the node's module" grep -q '^2\.1\.' /sys/module/zfs/version
  check "a pool OpenZFS 2.3 made with compatibility=openzfs-2.1-linux imports here, read-write" zpool import -d $d -N keelcompat
  equals "  read-write (its readonly property)" off "$(zpool get -H -o value readonly keelcompat 2>/dev/null)"
  zpool export keelcompat 2>/dev/null
  zpool import -d $d -N keelnocompat >/tmp/nocompat.txt 2>&1
  rc=$?
  sed 's/^/      zpool: /' /tmp/nocompat.txt | head -8
  check "negative control: the same without compatibility does not import here" test $rc != 0
  # the features zpool names (GUID lines: "org:name"), each outside the node's set
  names=$(sed -n 's/^[[:space:]]*[a-z][a-z.]*:\([a-z0-9_]*\).*/\1/p' /tmp/nocompat.txt | tr '\n' ' ')
  set21=/usr/share/zfs/compatibility.d/openzfs-2.1-linux
  check "  refused for features outside openzfs-2.1-linux: ${names:-none named}" sh -c "grep -q 'not supported by this system' /tmp/nocompat.txt && [ -n '$names' ] && for f in $names; do ! grep -qx \"\$f\" $set21 || exit 1; done"
  zpool export keelnocompat 2>/dev/null
  rm -rf $d
}

# A barrier between the two cluster nodes: this node says it is done with a phase of its
# checks (a marker in /run) and waits for the peer's marker over the cluster network, with the
# cluster's root key (a lab handshake, not a check: the peer's host key is not what is tested
# here). A fixed sleep raced: a node that powered off while its peer still checked left the
# peer at "1 of 2". Gives up after $3 seconds (default 900) or when the peer stopped answering
# for 60 s, and says so.
mark_done() { mkdir -p /run/keel-lab && touch "/run/keel-lab/$1"; }
peer_marker() { # peer-address marker
  ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o ConnectTimeout=5 -o LogLevel=ERROR "root@$1" test -e "/run/keel-lab/$2"
}
wait_peer() { # peer-address marker [seconds]
  t0=$(date +%s) last_seen=$(date +%s)
  echo "barrier: $(date +%T) waiting for $1 to be done with $2"
  while :; do
    peer_marker "$1" "$2"
    case $? in
      0) echo "barrier: $(date +%T) $1 is done with $2"; return 0 ;;
      1) last_seen=$(date +%s) ;; # answered: not yet
    esac
    now=$(date +%s)
    if [ $((now - t0)) -ge "${3:-900}" ] || [ $((now - last_seen)) -ge 60 ]; then
      echo "barrier: $(date +%T) gave up waiting for $1 ($2)"
      return 1
    fi
    sleep 3
  done
}

finish() {
  echo "scenario: $failures check(s) failed"
  [ "$failures" = 0 ]
}
