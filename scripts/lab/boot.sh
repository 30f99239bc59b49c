#!/usr/bin/env bash
# Boots the lab guest once and runs one scenario in it:
#   boot.sh WORKDIR SCENARIO [SERIAL...]
# WORKDIR keeps the NVMe disks (one 8 GiB qcow2 per serial, made if missing) between boots, so a
# scenario can power the guest off and the next boot continue on the same disks. The root disk
# is the cached image in snapshot mode: like a rescue system, every boot starts pristine and
# forgets /var/lib/keel. Results land in WORKDIR/results-SCENARIO (output.txt, rc, journal/),
# the console in WORKDIR/console-SCENARIO.log. Exit code: the scenario's (124 on timeout).
# Environment: KEEL_LAB_MAC (NIC MAC), KEEL_LAB_DGRAM=LOCALPORT:REMOTEPORT (link to another
# guest over loopback UDP instead of user-mode networking), KEEL_LAB_APPEND (kernel arguments),
# KEEL_LAB_TIMEOUT (seconds, default 900), KEEL_LAB_START_LIMIT (seconds, default 480: a guest that
# has not started its scenario by then is taken for hung and booted once more), KEEL_LAB_BIN (another keel binary for the payload), KEEL_LAB_UEFI=1 (boot through OVMF instead of SeaBIOS),
# KEEL_LAB_REPO_PORT (the lab repository's port on the host loopback: the guest reaches it as
# http://10.0.2.100/), KEEL_LAB_REGISTRY_PORT (a keel-registry on the host loopback: the guest
# reaches it as http://10.0.2.101:8080), KEEL_LAB_BOOT=disk (boot the installed system from the NVMe drives given,
# the first one first, instead of the rescue kernel; the installed system's lab probe unit runs
# the scenario), KEEL_LAB_BOOT=pxe (netboot: the NIC's iPXE fetches the registry's script
# /ipxe/MAC, which boots the live kernel and initrd from KEEL_LAB_BOOTFILES_PORT, an HTTP server
# on the host loopback reached as http://10.0.2.102/), KEEL_LAB_EXPORT (a raw disk image attached with serial keelexport: what a
# scenario hands back to the host beyond the results disk, such as a root image),
# KEEL_LAB_SATA=SERIAL (a 1 GiB SATA disk with that serial beside the NVMe drives, kept in
# WORKDIR/sata-SERIAL.qcow2 between boots: an old install's disk), KEEL_LAB_LIVE=1 (keel-live's
# files on the payload disk, in live/), KEEL_LAB_MEM (guest MiB, default 2048),
# KEEL_LAB_SSH_PORT (the guest's port 22 forwarded to that port on the host loopback),
# KEEL_LAB_AUTHORIZED_KEY (a public key file: root's authorized_keys for the scenario's sshd),
# KEEL_LAB_PAYLOAD_EXTRA (a folder copied onto the payload disk, as /payload/BASENAME),
# KEEL_LAB_RESULT=console (the scenario hands over to keel-live, which never returns to it: the
# scenario's own part is its pre-rc on the results disk, the rest is keel-live's "COMMAND
# finished: exit N" line on the console), KEEL_LAB_RESULT=live (no scenario runs: keel-live is
# the whole boot, booted by PXE; the result is its "install finished: exit N" line).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${1:?usage: boot.sh WORKDIR SCENARIO [SERIAL...]}
scenario=${2:?usage: boot.sh WORKDIR SCENARIO [SERIAL...]}
shift 2
serials=("$@")
[ ${#serials[@]} -gt 0 ] || serials=(LABNVME0001 LABNVME0002)
timeout_s=${KEEL_LAB_TIMEOUT:-900}
start_limit=${KEEL_LAB_START_LIMIT:-480}
bash "$here/host-packages.sh" >&2   # QEMU, and nc for the repository forwarding (quick when present)
image=$(bash "$here/image.sh")
mkdir -p "$work"
bin="$repo/target/x86_64-unknown-linux-gnu/release/keel"
[ -x "$bin" ] || bash "$repo/scripts/build-static.sh" >/dev/null
# another keel build in the payload (bench-network.sh: an older commit's, for the side-by-side)
bin=${KEEL_LAB_BIN:-$bin}

# payload: keel, profiles, specs, lab-init and scenarios on a small ext4 disk (no loop mount)
payload="$work/payload"
rm -rf "$payload"
mkdir -p "$payload"
cp "$bin" "$payload/keel"
cp -r "$repo/profiles" "$repo/hardware-specs" "$here/scenarios" "$payload/"
cp "$here/lab-init" "$here/probe-init" "$payload/"
cp "$here/keys/lab-repo.gpg" "$payload/lab-repo.gpg"
echo "$scenario" >"$payload/scenario"
[ "${KEEL_LAB_LIVE:-}" = 1 ] && cp -r "$image/live" "$payload/live"
[ -n "${KEEL_LAB_AUTHORIZED_KEY:-}" ] && cp "$KEEL_LAB_AUTHORIZED_KEY" "$payload/authorized_keys"
# a folder an earlier boot handed back (in its results), for this boot's scenario
[ -n "${KEEL_LAB_PAYLOAD_EXTRA:-}" ] && cp -r "$KEEL_LAB_PAYLOAD_EXTRA" "$payload/"
# the firmware this boot uses, for scenarios that check it (booted)
if [ "${KEEL_LAB_UEFI:-}" = 1 ]; then echo uefi; else echo bios; fi >"$payload/firmware"
rm -f "$work/payload.img"
truncate -s $(( $(du -sm "$payload" | cut -f1) * 11 / 10 + 64 ))M "$work/payload.img"
mkfs.ext4 -q -F -L keelpayload -d "$payload" "$work/payload.img"

nvme=()
for i in "${!serials[@]}"; do
  disk="$work/nvme-${serials[$i]}.qcow2"
  [ -f "$disk" ] || qemu-img create -q -f qcow2 "$disk" 8G
  boot=""
  [ "$i" = 0 ] && [ "${KEEL_LAB_BOOT:-}" = disk ] && boot=",bootindex=0"
  # cache=unsafe: the guest's flushes stop at QEMU (no host fsync per dpkg file); a guest power
  # cut (sysrq o) still loses what the guest had not written, and QEMU writes the rest on exit
  nvme+=(-drive "file=$disk,if=none,id=n$i,format=qcow2,cache=unsafe" -device "nvme,serial=${serials[$i]},drive=n$i$boot")
done

# one NIC with a fixed MAC: user-mode networking that reaches nothing (restrict=on), or, for
# two guests that talk to each other, a UDP datagram link on the host's loopback
mac=${KEEL_LAB_MAC:-52:54:00:a4:41:01}
if [ -n "${KEEL_LAB_DGRAM:-}" ]; then
  net=(-netdev "dgram,id=net0,local.type=inet,local.host=127.0.0.1,local.port=${KEEL_LAB_DGRAM%:*},remote.type=inet,remote.host=127.0.0.1,remote.port=${KEEL_LAB_DGRAM#*:}"
       -device "e1000,netdev=net0,mac=$mac")
  # the registry for the first boot (cluster key, cluster view) on a second NIC the lab adds
  # (MAC 52:54:00:ff:..., configured by the lab's keel-lab-registry-link unit, not by keel): the
  # node's own uplink is the link to the other node
  [ -n "${KEEL_LAB_REGISTRY_PORT:-}" ] && net+=(-nic "user,model=e1000,mac=52:54:00:ff:00:${mac##*:},restrict=on,guestfwd=tcp:10.0.2.101:8080-cmd:nc 127.0.0.1 $KEEL_LAB_REGISTRY_PORT")
else
  fwd=""
  # one nc per guest connection (a tcp: target would carry a single connection only)
  [ -n "${KEEL_LAB_REPO_PORT:-}" ] && fwd=",guestfwd=tcp:10.0.2.100:80-cmd:nc 127.0.0.1 $KEEL_LAB_REPO_PORT"
  [ -n "${KEEL_LAB_REGISTRY_PORT:-}" ] && fwd="$fwd,guestfwd=tcp:10.0.2.101:8080-cmd:nc 127.0.0.1 $KEEL_LAB_REGISTRY_PORT"
  [ -n "${KEEL_LAB_BOOTFILES_PORT:-}" ] && fwd="$fwd,guestfwd=tcp:10.0.2.102:80-cmd:nc 127.0.0.1 $KEEL_LAB_BOOTFILES_PORT"
  # a netboot: QEMU's DHCP hands the NIC's iPXE ROM the registry's script for this MAC
  [ "${KEEL_LAB_BOOT:-}" = pxe ] && fwd="$fwd,bootfile=http://10.0.2.101:8080/ipxe/$mac"
  # the guest's sshd on the host loopback (keel remote install from the host)
  [ -n "${KEEL_LAB_SSH_PORT:-}" ] && fwd="$fwd,hostfwd=tcp:127.0.0.1:$KEEL_LAB_SSH_PORT-:22"
  net=(-nic "user,model=e1000,mac=$mac,restrict=on$fwd")
fi

# firmware: SeaBIOS (legacy BIOS, the AX41 default) or OVMF (UEFI) with KEEL_LAB_UEFI=1
firmware=()
[ "${KEEL_LAB_UEFI:-}" = 1 ] && firmware=(-bios /usr/share/ovmf/OVMF.fd)

export_disk=()
[ -n "${KEEL_LAB_EXPORT:-}" ] && export_disk=(-drive "file=$KEEL_LAB_EXPORT,format=raw,if=none,id=export" -device virtio-blk-pci,drive=export,serial=keelexport)
# a SATA disk beside the NVMe drives (an old install's disk): WORKDIR/sata-SERIAL.qcow2, 1 GiB
old_disk=()
if [ -n "${KEEL_LAB_SATA:-}" ]; then
  [ -f "$work/sata-$KEEL_LAB_SATA.qcow2" ] || qemu-img create -q -f qcow2 "$work/sata-$KEEL_LAB_SATA.qcow2" 1G
  old_disk=(-device ahci,id=ahci0 -drive "file=$work/sata-$KEEL_LAB_SATA.qcow2,if=none,id=old,format=qcow2,cache=unsafe"
            -device "ide-hd,drive=old,bus=ahci0.0,serial=$KEEL_LAB_SATA")
fi

console="$work/console-$scenario.log"
results="$work/results-$scenario"
start=$(date +%s)
# QEMU's TCG has been seen to abort on its own assertion (iotlb_to_section) while booting, before
# the guest ran anything: such a crash of the emulator (SIGABRT/SIGSEGV, no result) gets one
# more boot, said in the log; so does a boot that stalled before the scenario started (lab-init's
# "boot stalled" marker, or the kernel's RCU stall report: a CPU's timer stopped firing). A
# scenario's own failure or a timeout is never retried.
for attempt in 1 2; do
  rm -f "$work/results.img"
  truncate -s 64M "$work/results.img"
  set +e
  if [ "${KEEL_LAB_BOOT:-}" = disk ]; then
    # the installed system: firmware -> GRUB on the first drive -> kernel and initramfs from its
    # ESP -> ZFS root; payload and results disks as vda and vdb
    system=()
  elif [ "${KEEL_LAB_BOOT:-}" = pxe ]; then
    # firmware -> the NIC's iPXE -> the registry's script -> keel-live's kernel and initrd over
    # HTTP, with the registry and a token on the command line: keel-live is the whole system
    system=(-boot order=n)
  else
    system=(-kernel "$image/vmlinuz" -initrd "$image/initrd.img"
      -append "console=ttyS0 root=/dev/vda rw init=/keel-lab-init keel.scenario=$scenario ${KEEL_LAB_APPEND:-} panic=-1 quiet loglevel=3"
      -drive "file=$image/root.img,format=raw,if=none,id=root,snapshot=on" -device virtio-blk-pci,drive=root,serial=keelroot)
  fi
  rm -f "$work/kernel-stalled"
  timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -m "${KEEL_LAB_MEM:-2048}" -smp 2 -nographic -no-reboot "${firmware[@]}" \
    "${system[@]}" \
    -drive "file=$work/payload.img,format=raw,if=none,id=payload,readonly=on" -device virtio-blk-pci,drive=payload,serial=keelpayload \
    -drive "file=$work/results.img,format=raw,if=none,id=results" -device virtio-blk-pci,drive=results,serial=keelresults \
    "${export_disk[@]}" \
    "${old_disk[@]}" \
    "${nvme[@]}" \
    -uuid 11111111-2222-3333-4444-555555555555 \
    -smbios type=1,manufacturer=Hetzner,product=AX41-NVMe,serial=LAB-AX41-0001 \
    -smbios type=2,manufacturer=Hetzner,product=LabBoard \
    "${net[@]}" \
    </dev/null >"$console" 2>&1 &
  qpid=$!
  # a guest kernel whose timer on a CPU stopped firing (TCG, seen on a loaded host: RCU stall
  # reports, "Possible timer handling issue", the boot never goes on) before the scenario or
  # keel-live started is powered off here at once, not left to the timeout; so is a guest that
  # has not started the scenario within start_limit seconds (seen: a quiet rescue kernel that
  # printed nothing after the firmware for 900 s). Normal starts take 20-130 s.
  booted_at=$(date +%s)
  started=''
  while kill -0 $qpid 2>/dev/null; do
    sleep 3
    [ -n "$started" ] && continue
    if grep -aq '^=== lab: scenario\|=== lab probe: scenario\|keel-live: ' "$console"; then
      started=yes
      echo "lab: $scenario: the scenario started $(( $(date +%s) - booted_at ))s after power-on" >&2
    elif grep -aq 'rcu: INFO: rcu_[a-z]* detected stalls\|rcu: INFO: rcu_[a-z]* self-detected stall' "$console"; then
      grep -a -m1 'Possible timer handling issue\|detected stall' "$console" | tr -d '\r' | sed 's/^\[ *[0-9.]*\] //' >"$work/kernel-stalled"
      kill $qpid 2>/dev/null
      break
    elif [ $(( $(date +%s) - booted_at )) -ge "$start_limit" ]; then
      echo "the scenario had not started ${start_limit}s after power-on; the console's last line: $(tail -c 300 "$console" | tr -d '\r' | tr '\n\033' '  ' | sed 's/.*  //' | cut -c1-120)" >"$work/kernel-stalled"
      kill $qpid 2>/dev/null
      break
    fi
  done
  wait $qpid
  qrc=$?
  set -e
  rm -rf "$results"
  mkdir -p "$results"
  tar xf "$work/results.img" -C "$results" 2>/dev/null || true
  if { [ $qrc = 134 ] || [ $qrc = 139 ]; } && [ ! -f "$results/rc" ] && [ $attempt = 1 ]; then
    echo "lab: $scenario: QEMU itself crashed (exit $qrc: $(grep -m1 -a 'Assertion\|Segmentation' "$console" || echo no message)); booting once more" >&2
    cp "$console" "$console.crashed"
    continue
  fi
  if [ -f "$work/kernel-stalled" ] && [ ! -f "$results/rc" ]; then
    cp "$console" "$console.stalled"
    if [ $attempt = 1 ]; then
      echo "lab: $scenario: the guest stalled before the scenario started ($(cat "$work/kernel-stalled"); console kept as $console.stalled); booting once more" >&2
      continue
    fi
    echo "lab: $scenario: the guest stalled before the scenario started, twice ($(cat "$work/kernel-stalled"); console: $console.stalled)" >&2
  fi
  if grep -aq '^=== lab: boot stalled' "$console" && [ ! -f "$results/rc" ] && [ $attempt = 1 ]; then
    echo "lab: $scenario: the guest's boot stalled before the scenario started (udev never settled; console kept as $console.stalled); booting once more" >&2
    cp "$console" "$console.stalled"
    continue
  fi
  break
done
secs=$(( $(date +%s) - start ))
if [ $qrc = 124 ] || [ $qrc = 137 ]; then
  echo "lab: $scenario: the guest did not finish within ${timeout_s}s (console: $console)" >&2
  tail -20 "$console" >&2
  exit 124
fi
if [ "${KEEL_LAB_RESULT:-}" = console ] && [ -f "$results/pre-rc" ]; then
  # the scenario's checks before the switch, then keel-live's word on its command (install,
  # disk replace)
  live_rc=$(grep -a -o 'keel-live: [a-z ]* finished: exit [0-9]*' "$console" | tail -1 | grep -o '[0-9]*$' || true)
  { echo "--- keel-live (console, kernel lines left out)"; sed -n '/^live-switch: switching at/,$p' "$console" | grep -av '^\[ *[0-9]*\.[0-9]*\]' | tr -d '\r'; } >>"$results/output.txt"
  if [ "$(cat "$results/pre-rc")" != 0 ]; then echo 1; elif [ -n "$live_rc" ]; then echo "$live_rc"; else echo 125; fi >"$results/rc"
  echo "$secs" >"$results/seconds"
  [ -n "$live_rc" ] || echo "lab: $scenario: keel-live never said its command finished (console: $console)" >&2
fi
if [ "${KEEL_LAB_RESULT:-}" = live ]; then
  # no scenario ran: keel-live's own lines are the output, its last word the result
  live_rc=$(grep -a -o 'keel-live: [a-z ]* finished: exit [0-9]*' "$console" | tail -1 | grep -o '[0-9]*$' || true)
  mkdir -p "$results"
  grep -av '^\[ *[0-9]*\.[0-9]*\]' "$console" | tr -d '\r' | sed -n '/keel-live: /,$p' >"$results/output.txt"
  echo "${live_rc:-125}" >"$results/rc"
  echo "$secs" >"$results/seconds"
  [ -n "$live_rc" ] || echo "lab: $scenario: keel-live never said its command finished (console: $console)" >&2
fi
if [ ! -f "$results/rc" ]; then
  echo "lab: $scenario: no result from the guest after ${secs}s (QEMU exit $qrc; console: $console)" >&2
  tail -30 "$console" >&2
  exit 125
fi
rc=$(cat "$results/rc")
echo "lab: $scenario: exit $rc, ${secs}s wall (guest scenario $(cat "$results/seconds")s)"
exit "$rc"
