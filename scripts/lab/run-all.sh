#!/usr/bin/env bash
# Every lab scenario, each in a fresh QEMU guest that looks like an AX41 to keel (two NVMe
# drives with serials, SMBIOS Hetzner/AX41-NVMe, one NIC with a fixed MAC, BIOS boot):
#   detect-check   detect; check passes qemu-lab.toml and fails ax41-nvme.toml as expected
#   detect-uefi    the same guest booted through OVMF: keel detects UEFI, check and plan pass
#   disk-phase     keel install's disk phase, verified (tables, pools, properties, datasets,
#                  swap); run again: nothing changes
#   crash-resume   beside an old install's disk (exported rpool and datapool on a SATA disk,
#                  the NVMe drives enumerated against their serials' order): refused without
#                  --accept-foreign-pools; power cut in the middle of the dataset steps, boot
#                  again (the rescue system forgot its journal), run again: resumes from the
#                  journal on the targets' rpool (imported by GUID), same state; the old disk's
#                  image is byte-identical (host checksum)
#   one-drive      a drive missing: refused before anything is written (disk image unchanged)
#   other-serial   a drive with another serial: refused, disks unchanged
#   network        two guests on one loopback link: the rendered .link file and interfaces
#                  applied with ifupdown2; vmbr0 VLAN-aware with 10/20/30/40, vmbr1 on the
#                  vSwitch VLAN 4000 with MTU 1400; each pings the other over vmbr1
#   pxe-install    (with the registry; KEEL_LAB_PXE=0 leaves it out) lab-node-02 netboots: the
#                  NIC's iPXE runs the registry's /ipxe/MAC script, which boots keel-live over
#                  HTTP with the registry and the boot NIC (no token: it enrolls by its MAC and
#                  the drive serials its profile pins); keel-live takes that
#                  NIC up by DHCP and runs keel install --unattended: lab-node-02's profile from
#                  the registry, the consent its pinned drive serials, the disk phase; its events
#                  reach the registry
#   os-cut         lab-node-01's install (as os-install), the power cut in the middle of the
#                  package step (dpkg has configured part of the packages, others are unpacked)
#   os-install     the whole keel install of lab-node-01 against the lab repository (repo.sh,
#                  served on the host loopback): Debian and the stand-in Proxmox packages in
#                  one pass (mmdebstrap), config, GRUB on both drives, keel verify on the
#                  target; after os-cut a resume: the journal from the target, the package step
#                  rolled back to its snapshot and run whole; every package configured, no
#                  force-unsafe-io left on the node
#   boot-both      the installed node boots from its drives: ZFS root, keel verify passes
#   image-build    keel image build of lab-node-01's base snapshot (in the rescue system); the
#                  host hands it to the registry (with KEEL_LAB_IMAGE_BENCH=1 also a 512 MiB
#                  larger one, for bench-image.sh's memory figure)
#   live-switch    (first, while the rescue stand-in has OpenZFS 2.3: two small pools on files,
#                  with and without compatibility=openzfs-2.1-linux, for dr-survivor)
#                  lab-node-02's rescue is made like Hetzner's (no ZFS module, `zpool`/`zfs`
#                  scripts that offer to build it): keel refuses without keel-live and never runs
#                  the scripts; with --live it switches to keel-live by kexec (the rescue's
#                  uplink, keys, profile, consent and registry link carried over), where the
#                  install from the image over HTTP from the registry runs with OpenZFS 2.3
#   image-install  (image-check, in the rescue stand-in afterwards) what keel-live's install
#                  left: no debootstrap, no apt; its own host keys, machine id, host id; both
#                  pools limited to openzfs-2.1-linux (nothing newer enabled). With
#                  KEEL_LAB_IMAGE_BENCH=1 instead the install in
#                  a rescue with ZFS and the figures: shell one-liner vs keel's receive, keel's
#                  peak memory for both sizes
#   cluster        both nodes (1 from the network, 2 from the image) boot from their drives on
#                  one link (the registry on a second NIC): node 1 formed the cluster at its first
#                  boot (pvecm create, the lab's stand-in), node 2's first boot joins it (cluster
#                  root key and pinned host key from the registry, pvecm add --use_ssh); each
#                  passes the booted checks, corosync quorate with 2 nodes, two_node in
#                  /etc/pve/corosync.conf on both, keel verify --expect-quorum; negative control:
#                  pvecm add without the trust fails and exits 0
#   dr-reinstall   (disaster recovery; lab-node-02 keeps running the cluster, quorate alone with
#                  two_node) lab-node-01 in the rescue system over its installed disks: refused
#                  without --wipe-existing, the finished install not resumed; with it, installed
#                  afresh from the image (new pools, new host keys, a new registry token)
#   dr-rejoin      the rebuilt lab-node-01 boots: its first boot joins the running cluster
#                  (pvecm add, same name and node id), reaches lab-node-02 with its host key checked
#   dr-survivor    lab-node-02's side of cluster and DR; first, on its Debian 12 OpenZFS 2.1, the
#                  pools keel-live's 2.3 made in live-switch: the one with compatibility imports,
#                  the one without does not (negative control); then alone and quorate while node 1 is down,
#                  then one cluster with node 1 in it once, config_version raised, node 1's old host
#                  keys gone from root's known_hosts, root reaches the new node 1, verify passes
#   boot-image-drive-2-uefi  lab-node-02 then boots from its second drive alone through OVMF
#                  (UEFI: GRUB's EFI loader on that drive's ESP), degraded, verify passes
#   os-install-2   (KEEL_LAB_OS=cluster) lab-node-02 from the network instead of the image,
#                  then the cluster of the two network-installed nodes
#   rebuild-live   (beside node 1's install) a guest that is a rescue like Hetzner's, reached over
#                  SSH from the host: keel remote install with a kernel that is not one is refused
#                  (said, nothing written); then keel rebuild against the Robot stand-in: rescue
#                  activated, reset (the guest boots into the rescue again, new host keys, pinned),
#                  keel-live uploaded, the switch, the reconnect with the host keys it announced,
#                  the disk phase followed there to its end; run again, nothing done twice
#                  (KEEL_LAB_REMOTE=0: out)
#   boot-drive-2   (KEEL_LAB_REPLACE=0) node 1 (rebuilt from the image when the DR ran) boots with drive 2 alone:
#                  GRUB from the second drive (SeaBIOS), the ZFS root
#                  comes up degraded, keel verify --allow-degraded passes (KEEL_LAB_DRIVES=0
#                  leaves it out; KEEL_LAB_DRIVES=2 adds boot-drive-1, drive 1 alone, which
#                  proves nothing the others do not: drive 1's loader boots in boot-both and
#                  cluster, the degraded import in boot-drive-2)
#   disk-replace   node 1's drive 2 swapped for a blank LABNVME0003 (drive 1 an overlay of
#                  os1's, a decoy drive beside): booted degraded, keel disk replace refuses the
#                  survivor named as new, then restores both mirrors and the boot loader; verify
#                  passes, a re-run does nothing twice, the decoy is byte-identical, the registry
#                  has disk-replaced; then boot-new-drive: node 1 boots from LABNVME0003 alone
#                  (in place of boot-drive-2; KEEL_LAB_REPLACE=0 runs boot-drive-2 instead)
#   disk-replace-live / disk-replace-rescue  (beside it) the same from a rescue system over node
#                  1's drive 1 and a blank LABNVME0004: a rescue like Hetzner's switches to
#                  keel-live, which replaces; a rescue with ZFS checks the pools and the boot
#                  loader on the new drive, and a second replace writes nothing
#   reinstall      (when the DR above did not run) next boot over the installed node: refused
#                  without --wipe-existing, the finished install is not "resumed"; with it, fresh pools
#   wrong-key      a profile pinning another Proxmox key checksum stops at os.pve-key, before
#                  any package is installed
# KEEL_LAB_OS=node (default) | cluster | none picks the OS block (see there); KEEL_LAB_IMAGE=0
# leaves the image scenarios (and so the cluster) out of "node"; KEEL_LAB_BASIC=0
# leaves out the scenarios before it. Prints each scenario's wall time and a closing
# "lab: N passed, M failed" line.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${KEEL_LAB_WORK:-/tmp/keel-lab}
rm -rf "$work"
mkdir -p "$work"
t0=$(date +%s)
image=$(bash "$here/image.sh") || { echo "lab: the guest image could not be built"; echo "lab: 0 passed, 1 failed"; exit 1; }
echo "lab: image $image ($(head -2 "$image/done" | tr '\n' ' ')) ready after $(( $(date +%s) - t0 ))s"
# images of older image.sh versions are not used again (6 GiB each)
for old in "$(dirname "$image")"/image-*; do [ "$old" = "$image" ] || rm -rf "$old"; done
bash "$here/../build-static.sh" >/dev/null || { echo "lab: static build failed"; exit 1; }
# The lab repository (about 2 minutes cold alone, then cached) builds while the first scenarios run:
# its debootstrap and downloads wait on the network and the disk, the guests on the cores.
bash "$here/repo.sh" >"$work/repo.path" 2>"$work/repo-build.log" &
repo_pid=$!

# Results go to a file, so scenarios that run side by side (in a subshell each) count too.
results="$work/results.list"
: >"$results"
result() { # name rc seconds
  if [ "$2" = 0 ]; then echo "PASS $1" >>"$results"; echo "lab: PASS $1 (${3}s)"; else echo "FAIL $1" >>"$results"; echo "lab: FAIL $1 (${3}s)"; fi
}
show() { # print a scenario's output for the log
  sed 's/^/    /' "$1/results-$2/output.txt" 2>/dev/null | tail -80
}
run() { # name workdir scenario serials...
  local name=$1 dir=$2 scenario=$3
  shift 3
  bash "$here/boot.sh" "$dir" "$scenario" "$@"
  local rc=$?
  show "$dir" "$scenario"
  return $rc
}
timed() { # name command...: runs the command, records its result under name with its wall time
  local name=$1 s=$(date +%s) rc
  shift
  "$@"
  rc=$?
  result "$name" $rc $(( $(date +%s) - s ))
}
# Two guests on independent disks at once. A guest keeps about 1.3 of the 2 cores busy (one
# dpkg or one boot, and ZFS's threads on the other vCPU), so a second one fills the gap: two
# detect scenarios took 38 s side by side against 26 s + 36 s one after the other. Each lane is
# a shell function; its output is kept and printed whole when both have ended.
side_by_side() { # lane1 lane2
  local o1="$work/lane-$1.out" o2="$work/lane-$2.out" p
  "$1" >"$o1" 2>&1 &
  p=$!
  "$2" >"$o2" 2>&1
  wait $p
  cat "$o1" "$o2"
}

linked() { # scenario dir1 dir2 port: node 1 and node 2 at once on one loopback UDP link (ports
  # port and port+1); both outputs shown; succeeds when both passed. The caller's environment
  # (KEEL_LAB_BOOT=disk for installed nodes) reaches both guests.
  local scenario=$1 d1=$2 d2=$3 p=$4 pid rc1 rc2
  KEEL_LAB_DGRAM=$p:$((p + 1)) KEEL_LAB_MAC=52:54:00:a4:41:01 KEEL_LAB_APPEND=keel.node=1 \
    bash "$here/boot.sh" "$d1" "$scenario" >"$d1.$scenario.out" 2>&1 &
  pid=$!
  KEEL_LAB_DGRAM=$((p + 1)):$p KEEL_LAB_MAC=52:54:00:a4:41:02 KEEL_LAB_APPEND=keel.node=2 \
    bash "$here/boot.sh" "$d2" "$scenario" >"$d2.$scenario.out" 2>&1
  rc2=$?
  wait $pid
  rc1=$?
  for d in "$d1" "$d2"; do cat "$d.$scenario.out"; show "$d" "$scenario"; done
  [ $rc1 = 0 ] && [ $rc2 = 0 ]
}

refuse_unchanged() { # name serials...: refuse scenario; the disk images must not change
  local name=$1 dir="$work/$1"
  shift
  mkdir -p "$dir"
  for serial in "$@"; do qemu-img create -q -f qcow2 "$dir/nvme-$serial.qcow2" 8G; done
  local before after
  before=$(cd "$dir" && sha256sum nvme-*.qcow2)
  run "$name" "$dir" refuse "$@"
  local rc=$?
  after=$(cd "$dir" && sha256sum nvme-*.qcow2)
  if [ "$before" != "$after" ]; then echo "    FAIL: a refused run changed the disk images"; rc=1; fi
  return $rc
}
# Power cut and resume beside an old install's disk (a SATA disk with exported pools named rpool
# and datapool, foreign-prep), the NVMe drives enumerated against their serials' order
# (nvme0n1 is LABNVME0002): keel refuses, then (accepted) runs only on the targets; the old
# disk's image must be byte-identical afterwards (checksum here, on the host).
crash_resume() {
  local dir="$work/crash" rc before after
  KEEL_LAB_SATA=LABOLD0003 run foreign-prep "$dir" foreign-prep LABNVME0002 LABNVME0001 || return 1
  before=$(sha256sum "$dir/sata-LABOLD0003.qcow2" | cut -d' ' -f1)
  KEEL_LAB_SATA=LABOLD0003 run crash "$dir" crash LABNVME0002 LABNVME0001 \
    && KEEL_LAB_SATA=LABOLD0003 run resume "$dir" resume LABNVME0002 LABNVME0001
  rc=$?
  after=$(sha256sum "$dir/sata-LABOLD0003.qcow2" | cut -d' ' -f1)
  if [ "$before" = "$after" ]; then
    echo "    ok    the old disk is byte-identical after the install and the resume (sha256 $after)"
  else
    echo "    FAIL  the old disk changed: sha256 $before before, $after after"
    rc=1
  fi
  return $rc
}
# two lanes of about equal length (each about 5 minutes, beside the repository build; side by
# side crash-resume took 256 s, detect-check 55, detect-uefi 62, disk-phase 146, other-serial
# 55, one-drive 40)
basic_lane_1() {
  timed detect-check run detect-check "$work/detect" detect-check
  timed crash-resume crash_resume
}
basic_lane_2() {
  KEEL_LAB_UEFI=1 timed detect-uefi run detect-uefi "$work/uefi" detect-uefi
  timed disk-phase run disk-phase "$work/disk" disk-phase
  timed other-serial refuse_unchanged other-serial LABNVME0001 LABNVME0009
  timed one-drive refuse_unchanged one-drive LABNVME0001
}

# KEEL_LAB_BASIC=0 leaves out the scenarios before the OS install (for measuring that)
if [ "${KEEL_LAB_BASIC:-1}" = 1 ]; then
  side_by_side basic_lane_1 basic_lane_2
  # two guests on one loopback UDP link: each applies its rendered network and pings the other
  timed network-two-nodes linked network "$work/net1" "$work/net2" 47001
fi

# --- the OS install, end to end, against the lab's package repository on the host loopback.
s=$(date +%s)
wait "$repo_pid" && repo=$(cat "$work/repo.path") || repo=""
sed 's/^/    /' "$work/repo-build.log"
echo "lab: waited $(( $(date +%s) - s ))s for the repository build"
[ -n "$repo" ] || { echo "lab: the lab repository could not be built"; echo "FAIL repository" >>"$results"; }
booted() { # name workdir mac serials...
  local name=$1 dir=$2 mac=$3
  shift 3
  KEEL_LAB_BOOT=disk KEEL_LAB_MAC=$mac timed "$name" run "$name" "$dir" booted "$@"
}
wrong_key() { timed wrong-key run wrong-key "$work/wrong-key" wrong-key; }
# KEEL_LAB_OS: "node" (the default) installs lab-node-01, builds the root image from it, boots
# node 1 from both drives while lab-node-02 installs from that image, boots both into one
# cluster, rebuilds node 1 from the image while node 2 runs (it rejoins), boots node 2 from its
# second drive alone (UEFI) while node 1 boots from its second drive alone; "cluster" installs lab-node-02 from the network instead,
# at the same time as node 1 (under TCG that takes as long as one after the other, the two
# guests share the cores); "none" stops after wrong-key.
os=${KEEL_LAB_OS:-node}
if [ -n "$repo" ]; then
  echo "lab: repository $repo ($(head -2 "$repo/done" | tr '\n' ' '))"
  port=47080
  python3 -m http.server "$port" --bind 127.0.0.1 --directory "$repo" >"$work/repo-http.log" 2>&1 &
  http=$!
  trap 'kill $http 2>/dev/null' EXIT
  export KEEL_LAB_REPO_PORT=$port
fi
if [ -n "$repo" ] && [ "$os" = none ]; then
  wrong_key
fi
if [ -n "$repo" ] && [ "$os" != none ]; then
  # lab-node-01 installs unattended: no --profile; the registry and its enrollment token are on
  # the rescue kernel's command line (as the registry's iPXE script puts them), the profile and
  # spec come from the keel-registry on the host loopback, which also holds the cluster's root
  # key for the first boots, the install's events and report and, after the first boot from the
  # drives, the boot report.
  reg=""
  reg_dir="$work/registry"
  reg_port=47090
  reg_url="http://127.0.0.1:$reg_port"
  mkdir -p "$reg_dir/images"
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$reg_dir/admin-token"
  if (cd "$here/../.." && cargo build -q -p keel-registry); then
    # the guests reach it as http://10.0.2.101:8080; a netbooting guest gets keel-live's kernel
    # and initrd and keel's archive (`keel live-archive`: keel as keel-live's /init) from
    # http://10.0.2.102/ (a folder served on the host loopback)
    boot_port=47091
    mkdir -p "$reg_dir/boot"
    ln -sf "$image/live/vmlinuz" "$image/live/initrd.img" "$reg_dir/boot/"
    "$here/../../target/x86_64-unknown-linux-gnu/release/keel" live-archive "$reg_dir/boot/keel.cpio"
    python3 -m http.server "$boot_port" --bind 127.0.0.1 --directory "$reg_dir/boot" >"$reg_dir/bootfiles-http.log" 2>&1 &
    boot_http=$!
    "$here/../../target/debug/keel-registry" serve --listen "127.0.0.1:$reg_port" --database "sqlite:$reg_dir/registry.db" \
      --admin-token-file "$reg_dir/admin-token" --images "$reg_dir/images" --public-url http://10.0.2.101:8080 \
      --boot-kernel http://10.0.2.102/vmlinuz --boot-initrd http://10.0.2.102/initrd.img --boot-initrd http://10.0.2.102/keel.cpio \
      --boot-args "keel.until=datasets.datapool keel.live-after-success=poweroff keel.live-after-failure=poweroff panic=10 quiet loglevel=3" >"$reg_dir/registry.log" 2>&1 &
    reg_pid=$!
    trap 'kill $http $reg_pid $boot_http 2>/dev/null' EXIT
    if token=$(python3 "$here/registry-admin.py" setup "$reg_url" "$reg_dir/admin-token" "$here/../.."); then
      reg="keel.registry=http://10.0.2.101:8080 keel.token=$token"
      export KEEL_LAB_REGISTRY_PORT=$reg_port
    fi
  fi
  [ -n "$reg" ] || { echo "lab: the lab registry could not be started (see $reg_dir/registry.log); lab-node-01 installs with --profile"; echo "FAIL registry" >>"$results"; }
  # The PXE path: lab-node-02 armed for a netboot; the guest boots from its NIC (iPXE, the
  # registry's script for its MAC) with nobody at the console and runs the disk phase. Beside
  # it, wrong-key (other disks, other MAC).
  pxe() {
    local rp
    if python3 "$here/registry-admin.py" pxe "$reg_url" "$reg_dir/admin-token" "$here/../.."; then
      KEEL_LAB_BOOT=pxe KEEL_LAB_MAC=52:54:00:a4:41:02 KEEL_LAB_BOOTFILES_PORT=$boot_port KEEL_LAB_MEM=3072 KEEL_LAB_RESULT=live KEEL_LAB_TIMEOUT=1200 \
        run pxe-install "$work/pxe2" pxe-install
      rp=$?
      # what keel-live said on the console (the guest ran no lab script)
      local out="$work/pxe2/results-pxe-install/output.txt" want
      for want in 'keel-live: PXE boot by the registry http://10.0.2.101:8080 (no token' \
        'keel-live: ready (up [0-9.]* s): 10.0.2.15/24 on [a-z0-9]* (DHCP)' \
        'keel-live: keel install --unattended --journal-dir /var/lib/keel --progress plain --until datasets.datapool' \
        'from-registry/profiles/lab-node-02.toml from the registry' \
        'unattended: the profile pins LABNVME0001, LABNVME0002, the disks this plan destroys' \
        'paused after datasets.datapool' 'events delivered' 'keel-live: install finished: exit 0'; do
        grep -aq "$want" "$out" && echo "    ok    console: $want" || { echo "    FAIL  console: no line like: $want"; rp=1; }
      done
      python3 "$here/registry-admin.py" pxe-installed "$reg_url" "$reg_dir/admin-token" || rp=1
    else
      rp=1
    fi
    return $rp
  }
  pxe_lane() { timed pxe-install pxe; }
  if [ -n "$reg" ] && [ "${KEEL_LAB_PXE:-1}" = 1 ]; then
    side_by_side wrong_key pxe_lane
  else
    wrong_key
  fi
  s=$(date +%s)
  if [ "$os" = cluster ]; then
    KEEL_LAB_MAC=52:54:00:a4:41:02 KEEL_LAB_APPEND=keel.node=2 KEEL_LAB_TIMEOUT=7200 \
      bash "$here/boot.sh" "$work/os2" os-install >"$work/os2.out" 2>&1 &
    o2=$!
  fi
  # keel rebuild from the host, against the Robot stand-in (the tests' stand-in as a program:
  # agent/examples/robot-standin.rs), of a guest that is a rescue like Hetzner's (remote-rescue:
  # no ZFS, sshd on the host loopback). First, on the server as it is, a keel remote install
  # with a keel-live whose kernel is not one: the rescue's kernel refuses it (said, nothing
  # written, the rescue still answers). Then the rebuild: rescue activated and a hardware reset
  # through the stand-in (its reset powers the guest off; the lab boots it into the rescue again,
  # which answers with new host keys), the new keys pinned, keel and keel-live uploaded, the far
  # side switches by kexec, keel reconnects with the host keys keel-live announced and follows
  # the disk phase there to its end; run again, the rebuild does nothing twice. Beside node 1's
  # install (one guest keeps 1.3 cores busy).
  rebuild_live() {
    local dir="$work/remote" port=47222 guest rc keel_bin="$here/../../target/x86_64-unknown-linux-gnu/release/keel"
    local standin="${CARGO_TARGET_DIR:-$here/../../target}/debug/examples/robot-standin" robot_pid
    mkdir -p "$dir/broken" "$dir/profiles" "$dir/hardware-specs" "$dir/state"
    (cd "$here/../.." && cargo build -q --locked -p keel --example robot-standin) || { echo "    FAIL: the Robot stand-in did not build"; return 1; }
    ssh-keygen -q -t ed25519 -N "" -f "$dir/op" -C operator@lab
    local boot=(env KEEL_LAB_SSH_PORT=$port KEEL_LAB_AUTHORIZED_KEY="$dir/op.pub" KEEL_LAB_MEM=3072 KEEL_LAB_RESULT=console KEEL_LAB_TIMEOUT=1500
      bash "$here/boot.sh" "$dir" remote-rescue)
    "${boot[@]}" >"$dir/boot-before.out" 2>&1 &
    guest=$!
    local opts=(--ssh-option Port=$port --ssh-option StrictHostKeyChecking=no --ssh-option UserKnownHostsFile=/dev/null
      --ssh-option "IdentityFile=$dir/op" --ssh-option LogLevel=ERROR)
    local far=(ssh -p $port -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5 -i "$dir/op" root@127.0.0.1)
    for _ in $(seq 1 120); do "${far[@]}" true 2>/dev/null && break; sleep 5; done
    head -c 65536 /dev/urandom >"$dir/broken/vmlinuz"
    head -c 4096 /dev/urandom >"$dir/broken/initrd.img"
    "$keel_bin" remote install --host root@127.0.0.1 "${opts[@]}" --profile "$here/../../profiles/lab-node-01.toml" --yes --confirm-serials LABNVME0001,LABNVME0002 \
      --until datasets.datapool --live "$dir/broken" >"$dir/broken.out" 2>&1
    rc=$?
    sed 's/^/    broken: /' "$dir/broken.out" | grep -v 'warning\|help:' | tail -6
    local fails=0
    [ $rc = 1 ] && grep -q 'kexec_file_load of .* failed' "$dir/broken.out" || { echo "    FAIL: a kernel that is not one: exit $rc, no kexec_file_load refusal"; fails=1; }
    "${far[@]}" '! blkid -p -o value -s PTTYPE /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME0001 && ! test -e /sys/module/zfs' || { echo "    FAIL: after the refused kexec the rescue must be there, its disks untouched"; fails=1; }
    # the node's profile with its Robot server (the stand-in's server 2001 and its key), in a
    # profiles/ + hardware-specs/ layout as the repository's
    cp "$here/../../hardware-specs/qemu-lab.toml" "$dir/hardware-specs/"
    { cat "$here/../../profiles/lab-node-01.toml"; printf '\n[robot]\nserver = "2001"\nkey-fingerprint = "56:29:99:a4:5d:ed:ac:95:c1:f5:88:82:90:5d:bd:10"\n'; } >"$dir/profiles/lab-node-01.toml"
    # the stand-in's reset: the guest's power goes (QEMU ends), the lab boots it again below
    "$standin" --env "$dir/robot.env" --log "$dir/robot.log" --on-reset "echo reset >>'$dir/resets'; pkill -f '[q]emu-system-x86_64 .*$dir/payload.img'" 2>"$dir/robot.err" &
    robot_pid=$!
    for _ in $(seq 1 50); do [ -s "$dir/robot.env" ] && break; sleep 0.2; done
    local rebuild=(env $(cat "$dir/robot.env" | tr -d "'") "$keel_bin" rebuild lab-node-01 --profile "$dir/profiles/lab-node-01.toml" --host 127.0.0.1 "${opts[@]}"
      --yes --confirm-serials LABNVME0001,LABNVME0002 --until datasets.datapool --live "$image/live" --state-dir "$dir/state" --ssh-wait 600)
    "${rebuild[@]}" >"$dir/rebuild.out" 2>&1 &
    local rb=$!
    # until the stand-in's reset (or the rebuild's end, when it failed before it)
    while kill -0 $rb 2>/dev/null && [ ! -s "$dir/resets" ]; do sleep 2; done
    [ -s "$dir/resets" ] || pkill -f "[q]emu-system-x86_64 .*$dir/payload.img"
    wait $guest
    if [ -s "$dir/resets" ]; then
      echo "    the server before the rebuild: powered off by the stand-in's reset after $(grep -c . "$dir/resets") reset(s); booting it into the rescue again"
      "${boot[@]}" >"$dir/boot.out" 2>&1 &
      guest=$!
    else
      echo "    FAIL: the rebuild never reset the server"; fails=1; kill $rb 2>/dev/null; guest=""
    fi
    wait $rb
    rc=$?
    grep -v '^      \|warning\|help:' "$dir/rebuild.out" | sed 's/^/    rebuild: /' | tail -22
    # a failed rebuild leaves the guest up (the rescue waiting, or keel-live staying for a look)
    [ $rc = 0 ] || { echo "    FAIL: keel rebuild exit $rc"; fails=1; pkill -f "[q]emu-system-x86_64 .*$dir/payload.img"; }
    grep -q '^rebuild reset: hardware reset of server #2001' "$dir/rebuild.out" || { echo "    FAIL: no reset through Robot"; fails=1; }
    grep -q '^rebuild ssh: the rescue system answers on 127.0.0.1:47222 with' "$dir/rebuild.out" || { echo "    FAIL: the rescue's new host keys were not pinned"; fails=1; }
    grep -q 'keel-live answers on 127.0.0.1 with its announced host key' "$dir/rebuild.out" || { echo "    FAIL: no reconnect to keel-live with its pinned key"; fails=1; }
    grep -q '^rebuild install: keel install running in keel-live on 127.0.0.1 (switched from the rescue system by kexec' "$dir/rebuild.out" || { echo "    FAIL: the rebuild did not go through the switch"; fails=1; }
    grep -q 'paused after datasets.datapool' "$dir/rebuild.out" || { echo "    FAIL: the install in keel-live was not followed to its end"; fails=1; }
    # run again when done: nothing is done twice (no second rescue activation or reset)
    "${rebuild[@]}" >"$dir/rebuild-again.out" 2>&1
    rc=$?
    sed 's/^/    again: /' "$dir/rebuild-again.out" | grep -v 'warning\|help:' | head -3
    [ $rc = 0 ] && grep -q 'continuing (6 done' "$dir/rebuild-again.out" || { echo "    FAIL: the rebuild run again: exit $rc, not 'continuing (6 done'"; fails=1; }
    sleep 1
    sed 's/^/    robot stand-in: /' "$dir/robot.log"
    [ "$(grep -c '^POST /reset/2001 type=hw' "$dir/robot.log")" = 1 ] && [ "$(grep -c '^POST /boot/2001/rescue' "$dir/robot.log")" = 1 ] \
      || { echo "    FAIL: Robot was not asked exactly once for the rescue system and once for a reset"; fails=1; }
    kill $robot_pid 2>/dev/null
    if [ -n "$guest" ]; then
      wait $guest
      rc=$?
      cat "$dir/boot.out"; show "$dir" remote-rescue
      [ $rc = 0 ] || fails=1
    fi
    return $fails
  }
  remote_pid=""
  if [ "${KEEL_LAB_REMOTE:-1}" = 1 ]; then
    timed rebuild-live rebuild_live >"$work/remote.out" 2>&1 &
    remote_pid=$!
  fi
  # A power cut in the middle of node 1's package step (os-cut), then the install run again:
  # it resumes from the journal and runs the package step again from its snapshot (with the
  # registry: armed again first, enrollment tokens are single-use; KEEL_LAB_CUT=0 leaves the
  # cut out)
  resume=""
  if [ "${KEEL_LAB_CUT:-1}" = 1 ]; then
    KEEL_LAB_MAC=52:54:00:a4:41:01 KEEL_LAB_APPEND="keel.node=1 $reg keel.packages-cut=cut" KEEL_LAB_TIMEOUT=7200 \
      bash "$here/boot.sh" "$work/os1" os-cut >"$work/os1-cut.out" 2>&1
    rc=$?
    cat "$work/os1-cut.out"; show "$work/os1" os-cut
    result os-cut $rc $(( $(date +%s) - s ))
    s=$(date +%s)
    resume="keel.packages-cut=resume"
    if [ -n "$reg" ]; then
      t=$(python3 "$here/registry-admin.py" arm "$reg_url" "$reg_dir/admin-token" "$here/../.." lab-node-01) || t=""
      [ -n "$t" ] && reg="keel.registry=http://10.0.2.101:8080 keel.token=$t" || echo "lab: lab-node-01 could not be armed again"
    fi
  fi
  KEEL_LAB_MAC=52:54:00:a4:41:01 KEEL_LAB_APPEND="keel.node=1 $reg $resume" KEEL_LAB_TIMEOUT=7200 \
    bash "$here/boot.sh" "$work/os1" os-install >"$work/os1.out" 2>&1
  r1=$?
  cat "$work/os1.out"; show "$work/os1" os-install
  result os-install $r1 $(( $(date +%s) - s ))
  if [ -n "$reg" ]; then
    timed registry-report python3 "$here/registry-admin.py" installed "$reg_url" "$reg_dir/admin-token"
  fi
  if [ "$os" = cluster ]; then
    wait $o2
    r2=$?
    cat "$work/os2.out"; show "$work/os2" os-install
    result os-install-2 $r2 $(( $(date +%s) - s ))
  fi
  # node 1's first boot from its drives, and the registry's record of it
  first_boot() {
    booted boot-both "$work/os1" 52:54:00:a4:41:01 LABNVME0001 LABNVME0002
    if [ -n "$reg" ]; then
      timed registry-first-boot python3 "$here/registry-admin.py" booted "$reg_url" "$reg_dir/admin-token"
    fi
  }
  # The cluster, then disaster recovery into it. lab-node-02 boots (cluster-survivor) and stays
  # up throughout; lab-node-01 boots beside it on the link (cluster); both check the cluster
  # (lab-node-02's first boot joins it now). lab-node-01 powers off; lab-node-02 stays quorate
  # alone (two_node). lab-node-01 is rebuilt from the image in the rescue system (dr-reinstall:
  # refused without --wipe-existing, then new pools, new host keys, a new registry token) and
  # boots again (rejoin): its first boot joins the cluster lab-node-02 kept running, under its
  # old name and node id. lab-node-02 checks the return and the stale state (dr-survivor).
  cluster_dr() {
    local s survivor rc1 rs t1
    s=$(date +%s)
    KEEL_LAB_BOOT=disk KEEL_LAB_DGRAM=47012:47011 KEEL_LAB_MAC=52:54:00:a4:41:02 KEEL_LAB_TIMEOUT=3600 \
      KEEL_LAB_PAYLOAD_EXTRA="$work/img2/results-live-switch/compat-pools" \
      bash "$here/boot.sh" "$work/img2" cluster-survivor >"$work/img2.cluster-survivor.out" 2>&1 &
    survivor=$!
    KEEL_LAB_BOOT=disk KEEL_LAB_DGRAM=47011:47012 KEEL_LAB_MAC=52:54:00:a4:41:01 \
      bash "$here/boot.sh" "$work/os1" cluster >"$work/os1.cluster.out" 2>&1
    rc1=$?
    cat "$work/os1.cluster.out"; show "$work/os1" cluster
    result cluster $rc1 $(( $(date +%s) - s ))
    timed registry-cluster python3 "$here/registry-admin.py" cluster "$reg_url" "$reg_dir/admin-token"
    if [ $rc1 = 0 ]; then
      t1=$(python3 "$here/registry-admin.py" arm "$reg_url" "$reg_dir/admin-token" "$here/../.." lab-node-01) || t1=""
      KEEL_LAB_MAC=52:54:00:a4:41:01 KEEL_LAB_APPEND="keel.node=1 keel.registry=http://10.0.2.101:8080 keel.token=$t1" KEEL_LAB_TIMEOUT=2400 \
        timed dr-reinstall run dr-reinstall "$work/os1" dr-reinstall
      if grep -q '^PASS dr-reinstall$' "$results"; then
        KEEL_LAB_BOOT=disk KEEL_LAB_DGRAM=47011:47012 KEEL_LAB_MAC=52:54:00:a4:41:01 timed dr-rejoin run rejoin "$work/os1" rejoin
      fi
    fi
    # lab-node-01 did not come back: nothing for the survivor to wait for
    grep -q '^PASS dr-rejoin$' "$results" || pkill -f "$work/img2/payload.img"
    wait $survivor
    rs=$?
    cat "$work/img2.cluster-survivor.out"; show "$work/img2" cluster-survivor
    result dr-survivor $rs $(( $(date +%s) - s ))
    if grep -q '^PASS dr-rejoin$' "$results"; then
      timed registry-rejoined python3 "$here/registry-admin.py" rejoined "$reg_url" "$reg_dir/admin-token"
    fi
  }
  # The image fast path ("node" mode; KEEL_LAB_IMAGE=0 leaves it out): lab-node-01's base
  # snapshot becomes a root image (on an export disk the host reads with debugfs), the registry
  # serves it, lab-node-02 installs from it while node 1 boots for the first time, then the two
  # nodes form the cluster (node 1 from the network, node 2 from the image). The image is built
  # in the rescue system before node 1's first boot: it sends the base snapshot, which that boot
  # does not change.
  if [ "$os" = node ] && [ "${KEEL_LAB_IMAGE:-1}" = 1 ] && [ "$r1" = 0 ]; then
    s=$(date +%s)
    export_img="$work/export.img"
    rm -f "$export_img"
    truncate -s 3G "$export_img"
    # KEEL_LAB_IMAGE_BENCH=1 (bench-image.sh): the larger image and the receive figures too
    bench=""
    files="pve-base.zfs.zst pve-base.zfs.zst.json"
    if [ "${KEEL_LAB_IMAGE_BENCH:-0}" = 1 ]; then bench=keel.bench=1; files="$files pve-big.zfs.zst pve-big.zfs.zst.json"; fi
    KEEL_LAB_APPEND="$bench" KEEL_LAB_EXPORT="$export_img" KEEL_LAB_TIMEOUT=1800 run image-build "$work/os1" image-build
    rb=$?
    if [ $rb = 0 ]; then
      for f in $files; do
        debugfs -R "dump /$f $reg_dir/images/$f" "$export_img" >/dev/null 2>&1 && [ -s "$reg_dir/images/$f" ] || { echo "    FAIL: $f not on the export disk"; rb=1; }
      done
      want=$(sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p' "$reg_dir/images/pve-base.zfs.zst.json" 2>/dev/null)
      [ -n "$want" ] && [ "$(sha256sum <"$reg_dir/images/pve-base.zfs.zst" | cut -d' ' -f1)" = "$want" ] || { echo "    FAIL: the image on the host does not match its manifest"; rb=1; }
      ls -l "$reg_dir/images" | sed 's/^/    /'
    fi
    rm -f "$export_img"
    result image-build $rb $(( $(date +%s) - s ))
    if [ $rb = 0 ] && [ -n "$reg" ]; then
      # lab-node-02 armed again (after its PXE run) with a token on its rescue command line: its
      # install reports to the registry and its first boot joins the cluster through it
      # The lab's path is the one that ships: a rescue without ZFS (live-switch) switches to
      # keel-live by kexec, which installs from the image; the rescue stand-in then checks what
      # it left (image-check: the install's result "image-install"). The bench keeps the install
      # in a rescue with ZFS (image-install.sh), its figures are the receive's.
      image_install() {
        local t2
        t2=$(python3 "$here/registry-admin.py" arm "$reg_url" "$reg_dir/admin-token" "$here/../..") || t2=""
        if [ -n "$bench" ]; then
          KEEL_LAB_MAC=52:54:00:a4:41:02 KEEL_LAB_APPEND="keel.node=2 $bench keel.registry=http://10.0.2.101:8080 keel.token=$t2" KEEL_LAB_TIMEOUT=2400 \
            timed image-install run image-install "$work/img2" image-install
          return
        fi
        KEEL_LAB_MAC=52:54:00:a4:41:02 KEEL_LAB_APPEND="keel.node=2 keel.registry=http://10.0.2.101:8080 keel.token=$t2" KEEL_LAB_TIMEOUT=1500 \
          KEEL_LAB_LIVE=1 KEEL_LAB_MEM=3072 KEEL_LAB_RESULT=console timed live-switch run live-switch "$work/img2" live-switch
        if grep -q '^PASS live-switch$' "$results"; then
          KEEL_LAB_MAC=52:54:00:a4:41:02 timed image-install run image-check "$work/img2" image-check
        else
          echo "FAIL image-install" >>"$results"
        fi
      }
      # the bench's figures (KEEL_LAB_IMAGE_BENCH=1) are taken with the guest alone
      if [ -n "$bench" ]; then image_install; first_boot; else side_by_side first_boot image_install; fi
      if grep -q '^PASS image-install$' "$results" && grep -q '^PASS boot-both$' "$results"; then
        # node 2's first boot from its drives is the cluster's: both nodes boot from their
        # drives (the first drive first) and each runs the booted checks, then the quorum
        # checks; then disaster recovery into the running cluster (cluster_dr)
        cluster_dr
        dr_ran=1
        # the image-installed node boots from its second drive alone as well (drive 1 above),
        # through UEFI firmware (every other boot is SeaBIOS; keel-boot-sync installs both)
        image_drive_2() { KEEL_LAB_UEFI=1 booted boot-image-drive-2-uefi "$work/img2" 52:54:00:a4:41:02 LABNVME0002; }
      fi
    else
      [ $rb = 0 ] && { echo "lab: no registry to serve the image: image-install left out"; echo "FAIL image-install" >>"$results"; }
      first_boot
    fi
  elif [ "$r1" = 0 ]; then
    first_boot
  fi
  if [ "$os" = cluster ] && [ "$r1" = 0 ] && [ "$r2" = 0 ]; then
    KEEL_LAB_BOOT=disk timed cluster linked cluster "$work/os1" "$work/os2" 47011
  fi
  # the network-installed node alone on its second drive (KEEL_LAB_DRIVES=0 leaves it out,
  # KEEL_LAB_DRIVES=2 adds drive 1 alone), then a reinstall over it; beside them, the
  # image-installed node's UEFI boot from its second drive
  # Drive 2 of node 1 dies and the provider puts in a blank one with another serial: node 1
  # boots degraded from drive 1 (an overlay on os1's, so os1 stays as it is) beside the new
  # drive LABNVME0003 and a decoy NVMe drive with random bytes; keel disk replace there
  # (scenarios/disk-replace.sh); the decoy compared byte for byte on the host; the registry
  # holds the disk-replaced event; then node 1 boots from the new drive alone (in place of
  # boot-drive-2: the new drive is drive 2 now).
  disk_replace() {
    local dir="$work/replace" rc
    rm -rf "$dir"
    mkdir -p "$dir"
    qemu-img create -q -f qcow2 -b "$work/os1/nvme-LABNVME0001.qcow2" -F qcow2 "$dir/nvme-LABNVME0001.qcow2"
    head -c 64M /dev/urandom >"$dir/decoy.raw"
    truncate -s 256M "$dir/decoy.raw"
    qemu-img convert -O qcow2 "$dir/decoy.raw" "$dir/nvme-LABDECOY01.qcow2"
    KEEL_LAB_BOOT=disk KEEL_LAB_MAC=52:54:00:a4:41:01 timed disk-replace run disk-replace "$dir" disk-replace LABNVME0001 LABNVME0003 LABDECOY01
    qemu-img compare -q "$dir/decoy.raw" "$dir/nvme-LABDECOY01.qcow2"
    rc=$?
    [ $rc = 0 ] && echo "    ok    the decoy drive is byte-identical (qemu-img compare on the host)" || echo "    FAIL  the decoy drive changed"
    result decoy-untouched $rc 0
    [ -n "${reg:-}" ] && timed registry-disk-replaced python3 "$here/registry-admin.py" disk-replaced "$reg_url" "$reg_dir/admin-token" LABNVME0002 LABNVME0003
    booted boot-new-drive "$dir" 52:54:00:a4:41:01 LABNVME0003
  }
  # The same from a rescue system (KEEL_LAB_REPLACE_RESCUE=0 leaves it out): drive 1 of node 1
  # as it is (the node down, pools exported) beside a blank LABNVME0004. disk-replace-live: a
  # rescue like Hetzner's (no ZFS) refuses without keel-live and switches to it with --yes;
  # keel-live runs the replace and powers off. disk-replace-rescue: a rescue with ZFS checks
  # what it left (pools, the boot loader on the new drive: GRUB's boot sector and core image,
  # the ESP; the node's boot from a new drive alone is boot-new-drive's) and a second replace
  # writes nothing. Beside the image-installed node's UEFI boot.
  disk_replace_rescue() {
    local dir="$work/replace-rescue"
    rm -rf "$dir"
    mkdir -p "$dir"
    qemu-img create -q -f qcow2 -b "$work/os1/nvme-LABNVME0001.qcow2" -F qcow2 "$dir/nvme-LABNVME0001.qcow2"
    # keel-live replaces from a rescue without ZFS, then a rescue with ZFS checks what it left
    KEEL_LAB_LIVE=1 KEEL_LAB_MEM=3072 KEEL_LAB_RESULT=console KEEL_LAB_MAC=52:54:00:a4:41:01 \
      timed disk-replace-live run disk-replace-live "$dir" disk-replace-live LABNVME0001 LABNVME0004 || return 1
    # keel-live told the registry with the node's credentials from its root
    [ -n "${reg:-}" ] && timed registry-disk-replaced-live python3 "$here/registry-admin.py" disk-replaced "$reg_url" "$reg_dir/admin-token" LABNVME0002 LABNVME0004
    KEEL_LAB_PAYLOAD_EXTRA="$dir/results-disk-replace-live/before" KEEL_LAB_MAC=52:54:00:a4:41:01 \
      timed disk-replace-rescue run disk-replace-rescue "$dir" disk-replace-rescue LABNVME0001 LABNVME0004
  }
  node_1_last() {
    [ "${KEEL_LAB_DRIVES:-1}" = 2 ] && booted boot-drive-1 "$work/os1" 52:54:00:a4:41:01 LABNVME0001
    if [ "${KEEL_LAB_REPLACE:-1}" = 1 ]; then
      disk_replace
    else
      [ "${KEEL_LAB_DRIVES:-1}" = 0 ] || booted boot-drive-2 "$work/os1" 52:54:00:a4:41:01 LABNVME0002
    fi
    # the reinstall over an installed node is dr-reinstall's first half when the DR ran
    [ -n "${dr_ran:-}" ] || timed reinstall run reinstall "$work/os1" reinstall
  }
  # the lane beside node_1_last: the image-installed node's UEFI boot, then the rescue replace
  other_lane=""
  declare -F image_drive_2 >/dev/null && other_lane=image_drive_2
  if [ "$r1" = 0 ] && [ "${KEEL_LAB_REPLACE_RESCUE:-1}" = 1 ]; then
    rescue_lane() { if declare -F image_drive_2 >/dev/null; then image_drive_2; fi; disk_replace_rescue; }
    other_lane=rescue_lane
  fi
  if [ "$r1" = 0 ]; then
    if [ -n "$other_lane" ]; then side_by_side "$other_lane" node_1_last; else node_1_last; fi
  elif declare -F image_drive_2 >/dev/null; then
    image_drive_2
  fi
fi
if [ -n "${remote_pid:-}" ]; then
  wait "$remote_pid"
  cat "$work/remote.out"
fi
[ -n "$repo" ] && kill $http 2>/dev/null
[ -n "${reg_pid:-}" ] && kill $reg_pid 2>/dev/null
[ -n "${boot_http:-}" ] && kill $boot_http 2>/dev/null

passed=$(grep -c '^PASS' "$results")
failed=$(grep -c '^FAIL' "$results")
echo "lab: all scenarios took $(( $(date +%s) - t0 ))s"
echo "lab: $passed passed, $failed failed"
[ "$failed" = 0 ]
