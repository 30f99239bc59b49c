#!/usr/bin/env bash
# keel's main job, end to end on a simulated AX41: builds (or reuses) the lab guest and the
# lab's package repository, boots the guest as a rescue system with two fresh NVMe drives, and
# runs the whole `keel install` of lab-node-01 in it (disks, pools, Debian + stand-in Proxmox
# packages, configuration, GRUB on both drives, keel verify, export), printing keel's own
# progress from the guest. Then the installed node boots from its own drives and `keel verify`
# runs on it. About 29 minutes warm under TCG; cold, with the image (~7 min) and the
# repository (~2 min) built first, 38 minutes (measured 2026-11-30, see the README).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${KEEL_LAB_WORK:-/tmp/keel-lab}/provision
rm -rf "$work"
start=$(date +%s)
echo "keel lab: preparing the guest image, the package repository (both cached after the first run) and the static keel"
bash "$here/image.sh" >/dev/null
repo=$(bash "$here/repo.sh")
port=47085
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$repo" >/dev/null 2>&1 &
http=$!
trap 'kill $http 2>/dev/null' EXIT
mkdir -p "$work"
run() { # scenario, then boot.sh's serials; environment passes through
  local scenario=$1
  shift
  : >"$work/console-$scenario.log"
  bash "$here/boot.sh" "$work" "$scenario" "$@" &
  local boot=$!
  tail -n +1 -f --pid=$boot "$work/console-$scenario.log" | sed -un '/=== lab/,$p'
  wait $boot
}
set +e
KEEL_LAB_REPO_PORT=$port KEEL_LAB_TIMEOUT=3600 run os-install
rc=$?
if [ $rc = 0 ]; then
  echo "keel lab: the node is installed; booting it from its own drives"
  KEEL_LAB_BOOT=disk KEEL_LAB_TIMEOUT=900 run booted LABNVME0001 LABNVME0002
  rc=$?
fi
set -e
echo "provisioned a simulated AX41 in $(( $(date +%s) - start ))s (exit $rc); guest consoles: $work/console-*.log"
exit $rc
