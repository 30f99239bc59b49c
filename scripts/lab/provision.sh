#!/usr/bin/env bash
# keel's main job, end to end on a simulated AX41: builds (or reuses) the lab guest, boots it
# with two fresh NVMe drives, and runs the disk phase of `keel install` for lab-node-01 in it:
# preflight, wipe, partition, ESPs, rpool + datapool mirrors, datasets, swap, export. Then the
# result is verified inside the guest. Prints keel's own progress from the guest.
# Cold (image build with ZFS DKMS): about 12 minutes; warm: about 2 minutes under TCG.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${KEEL_LAB_WORK:-/tmp/keel-lab}/provision
rm -rf "$work"
start=$(date +%s)
echo "keel lab: preparing the guest image (cached after the first run) and the static keel binary"
bash "$here/image.sh" >/dev/null
mkdir -p "$work"
: >"$work/console-disk-phase.log"
bash "$here/boot.sh" "$work" disk-phase &
boot=$!
# follow the guest's console (keel's progress as it happens) until the guest is gone
tail -n +1 -f --pid=$boot "$work/console-disk-phase.log" | sed -un '/=== lab: scenario/,$p'
set +e
wait $boot
rc=$?
set -e
echo "provisioned a simulated AX41 in $(( $(date +%s) - start ))s (exit $rc); guest console: $work/console-disk-phase.log"
exit $rc
