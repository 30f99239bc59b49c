#!/usr/bin/env bash
# Figures of the image fast path from one lab run (the default OS block of run-all.sh):
#  - lab-node-01 installed from the network vs lab-node-02 installed from the root image made of
#    it: wall time per phase and in total (keel's own step table of each install);
#  - keel's receive pipeline vs the same receive as a shell one-liner (curl | zstd -dc | zfs
#    receive), the same image from the same registry in the same guest;
#  - keel's peak memory (VmHWM) receiving the base image and one 512 MiB larger;
#  - the image builds.
#   bench-image.sh              runs the lab's OS block (KEEL_LAB_BASIC=0; about an hour), then
#                               prints the figures
#   bench-image.sh --from DIR   prints them from an earlier run's work folder that ran with
#                               KEEL_LAB_IMAGE_BENCH=1 (.ci/run's lab leaves the bench out; its
#                               /tmp/keel-lab gives the phase table only)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" = --from ]; then
  work=${2:?usage: bench-image.sh --from DIR}
else
  work=${KEEL_LAB_WORK:-/tmp/keel-lab-bench-image}
  KEEL_LAB_BASIC=0 KEEL_LAB_PXE=0 KEEL_LAB_IMAGE_BENCH=1 KEEL_LAB_WORK="$work" bash "$here/run-all.sh" || echo "bench-image: the lab run failed; figures below may be incomplete"
fi
net="$work/os1/results-os-install/output.txt"
img="$work/img2/results-image-install/output.txt"
build="$work/os1/results-image-build/output.txt"
for f in "$net" "$img" "$build"; do
  [ -f "$f" ] || { echo "bench-image: $f is missing (did the lab's os-install, image-build and image-install run?)" >&2; exit 1; }
done
phases() { # the "phase times" table of an install's output: PHASE SECONDS lines
  awk '/^ *phase times/ {on=1; next} on && /^ *PHASE/ {next} on && NF==2 && $2 ~ /^[0-9.]+$/ {print $1, $2; next} on {on=0}' "$1"
}
echo "install of a lab node, seconds per phase (keel's step table; TCG guest, 2 cores):"
printf '  %-10s %10s %10s\n' PHASE NETWORK IMAGE
awk 'NR == FNR { img[$1] = $2; next } { printf "  %-10s %10s %10s\n", $1, $2, ($1 in img) ? img[$1] : "-" }' <(phases "$img") <(phases "$net")
grep -h '^figure: ' "$build" "$img" | sed 's/^figure: /  /'
