#!/usr/bin/env bash
# keel's whole test suite: the README's test command, and what .ci/run calls.
#  1. test dependencies (Debian packages; as root, installed when missing): sshd, corosync,
#     iproute2/unshare for the corosync check, the partitioning tools for the loop-device
#     install tests, headless Chromium for the registry's status page, and Debian's ifupdown2
#     unpacked (not installed);
#  2. the recorded fixtures are exactly what tests/fixtures/make-fixtures.sh generates;
#  3. cargo test on the whole workspace, with the real-parser checks required (no skipping) and
#     the registry's API suite run against SQLite and a throwaway PostgreSQL server;
#  4. the static binary builds, ldd calls it static, and it runs in an empty chroot;
#  5. the lab (scripts/lab/run-all.sh, root): QEMU guests with real NVMe serials and ZFS run
#     keel's disk phase, crash/resume, refusals, the rendered network, the wrong-key refusal, the
#     PXE boot, the whole OS install of lab-node-01 with its boots (both drives, drive 2 alone), a
#     root image built from it, lab-node-02 installed from that image in keel-live (switched to
#     by kexec from a rescue without ZFS; OpenZFS 2.3 making pools limited to the 2.1 set), the two booted as one
#     cluster, and a reinstall over node 1. The guest image (about 8 minutes cold) is built in
#     the background from the start, beside the Rust tests; the package repository (about 2
#     minutes cold) beside the first scenarios; both are cached in /var/cache/keel-lab.
#     The README's "CI budget" table has each phase's time, cold and warm.
#     KEEL_SKIP_LAB=1 skips the lab; KEEL_LAB_OS=cluster installs both nodes from the network,
#     none leaves the installs out (scripts/lab/run-all.sh lists the switches).
# Nothing on the machine is assumed beyond Debian's stock packages: what is missing is installed
# here or by scripts/lab/host-packages.sh, and the parser checks run in private mount namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${KEEL_TOOLS_DIR:-/tmp/keel-test-tools}
cleanup=()
trap 'for c in "${cleanup[@]}"; do eval "$c"; done' EXIT
t0=$(date +%s)
t_last=
phase() { # prints how long the previous phase took, then the next one's title
  local now
  now=$(date +%s)
  [ -z "$t_last" ] || echo "   (took $((now - t_last))s)"
  t_last=$now
  echo "== $*"
}

need=()
for cmd in /usr/sbin/sshd:openssh-server ssh-keygen:openssh-client /usr/sbin/corosync:corosync \
           ip:iproute2 unshare:util-linux python3:python3 bc:bc /usr/sbin/sgdisk:gdisk \
           /usr/sbin/mkfs.vfat:dosfstools /usr/sbin/partprobe:parted /usr/sbin/sfdisk:fdisk \
           /usr/bin/udevadm:udev /usr/sbin/losetup:mount /usr/sbin/mkfs.ext4:e2fsprogs \
           chromium:chromium /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core; do
  { command -v "${cmd%%:*}" || [ -e "${cmd%%:*}" ]; } >/dev/null 2>&1 || need+=("${cmd#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing test dependencies: ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
    exit 1
  fi
  phase "installing test dependencies: ${need[*]}"
  # Package scripts must not start sshd or corosync on this machine.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    cleanup+=("rm -f /usr/sbin/policy-rc.d")
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ ! -x "$tools/ifupdown2/bin/ifup" ]; then
  [ -d /var/lib/apt/lists ] && ls /var/lib/apt/lists/*Packages* >/dev/null 2>&1 || apt-get update -qq
  bash scripts/ci/fetch-ifupdown2.sh "$tools/ifupdown2"
fi

# The lab's guest image (7-10 minutes cold, then cached in /var/cache/keel-lab) builds in the
# background while the Rust tests and the static build run: debootstrap waits on the network
# and dpkg, and much of cargo's time is one crate or one link on one core. run-all.sh then
# finds it built. On an early exit the build is waited for (it leaves no chroot mounts behind).
lab_image_pid=""
if [ "${KEEL_SKIP_LAB:-}" != 1 ] && [ "$(id -u)" = 0 ]; then
  lab_image_log=$(mktemp /tmp/keel-lab-image.XXXXXX)
  bash scripts/lab/image.sh >"$lab_image_log" 2>&1 &
  lab_image_pid=$!
  cleanup+=("[ -z \"\$lab_image_pid\" ] || { echo 'waiting for the lab image build to end'; wait \$lab_image_pid; }; rm -f '$lab_image_log'")
  echo "lab image: building in the background (log $lab_image_log)"
fi

phase "fixtures match their generator"
bash tests/fixtures/make-fixtures.sh >/dev/null
if [ -n "$(git status --porcelain -- tests/fixtures)" ]; then
  git status --porcelain -- tests/fixtures | head -20 >&2
  echo "tests/fixtures differs from what make-fixtures.sh generates" >&2
  exit 1
fi

phase "PostgreSQL for the registry's tests (throwaway server on 127.0.0.1)"
pg_dir=$(mktemp -d /tmp/keel-pg.XXXXXX)
cleanup+=("bash scripts/ci/postgres.sh '$pg_dir' stop; rm -rf '$pg_dir'")
KEEL_TEST_POSTGRES_URL=$(bash scripts/ci/postgres.sh "$pg_dir")
export KEEL_TEST_POSTGRES_URL
echo "$KEEL_TEST_POSTGRES_URL"

phase "cargo test"
export KEEL_REQUIRE_TOOLS=1 KEEL_IFUP="$tools/ifupdown2/bin/ifup"
log=$(mktemp)
cleanup+=("rm -f '$log'")
cargo test --workspace --locked 2>&1 | tee "$log"
passed=$(grep -Eo '^test result: .* ([0-9]+) passed' "$log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')

phase "static binary"
bash scripts/build-static.sh
root=$(mktemp -d)
cleanup+=("rm -rf '$root'")
cp target/x86_64-unknown-linux-gnu/release/keel "$root/keel"
cp -a tests/fixtures/ax41-nvme "$root/fixture"
cp -a profiles hardware-specs "$root/"
chroot "$root" /keel plan --profile /profiles/pve-node-01.toml --root /fixture >/dev/null 2>&1 \
  || { echo "the static binary failed to plan inside an empty chroot" >&2; exit 1; }
echo "static keel plans inside an empty chroot: ok"

if [ "${KEEL_SKIP_LAB:-}" = 1 ]; then
  phase "lab: skipped (KEEL_SKIP_LAB=1)"
else
  if [ -n "$lab_image_pid" ]; then
    phase "lab image (built in the background since the start)"
    wait "$lab_image_pid" || echo "the background build of the lab image failed; run-all.sh tries again"
    lab_image_pid=""
    cat "$lab_image_log"
  fi
  phase "lab"
  lablog=$(mktemp)
  cleanup+=("rm -f '$lablog'")
  lab_start=$(date +%s)
  bash scripts/lab/run-all.sh 2>&1 | tee "$lablog"
  echo "lab took $(( $(date +%s) - lab_start ))s"
  passed=$(( passed + $(sed -n 's/^lab: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$lablog") ))
fi
phase "done after $(( $(date +%s) - t0 ))s"
echo "tests: $passed passed, $failed failed"
