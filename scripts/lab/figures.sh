#!/usr/bin/env bash
# The install figures in one table, read from the work folders of the last lab runs on this
# machine (nothing is run here; each row says which run it comes from):
#   .ci/run's lab (run-all.sh)       KEEL_LAB_WORK, default /tmp/keel-lab
#   bench-network.sh                 KEEL_BENCH_NETWORK, default /tmp/keel-lab-bench-network
#   bench-install.sh                 KEEL_BENCH_INSTALL, default /tmp/keel-lab-bench
# A figure whose run is missing is shown as "-" with the command that makes it.
set -uo pipefail
lab=${KEEL_LAB_WORK:-/tmp/keel-lab}
net=${KEEL_BENCH_NETWORK:-/tmp/keel-lab-bench-network}
cmp=${KEEL_BENCH_INSTALL:-/tmp/keel-lab-bench}

phase() { # FILE PHASE: that phase's seconds in keel's step table ("total" for all)
  [ -f "$1" ] && awk -v p="$2" '/^ *phase times/ {on=1; next} on && NF==2 && $1 == p {print $2; exit} on && !/^ *PHASE/ && NF!=2 {on=0}' "$1"
}
step() { # FILE STEP: that step's seconds in keel's step table
  [ -f "$1" ] && awk -v s="$2" '/^ *step times/ {on=1; next} on && NF==3 && $1 == s {print $3; exit}' "$1"
}
share() { [ -f "$1" ] && sed -n 's/^time of this run: .*= \([0-9.]*\) %$/\1/p' "$1" | tail -1; }
when() { [ -e "$1" ] && date -u -r "$1" '+%F %H:%M' || echo "-"; }
row() { printf '  %-62s %10s  %s\n' "$1" "${2:--}" "$3"; }
ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", a / b }'; }

one="$net/new/results-os-install/output.txt"
two="$net/old/results-os-install/output.txt"
ci_net="$lab/os1/results-os-install/output.txt"
ci_img="$lab/img2/results-image-install/output.txt"
bench="$cmp/bench/results-bench-install/output.txt"
echo "keel install figures on $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)); lab guests are TCG-emulated, 2 vCPUs"
printf '  %-62s %10s  %s\n' FIGURE VALUE "FROM (date)"
row "network install, one package pass (s)" "$(phase "$one" total)" "bench-network.sh ($(when "$one"))"
row "  its OS phase (s)" "$(phase "$one" os)" ""
row "network install, two-pass path of an older commit (s)" "$(phase "$two" total)" "bench-network.sh ($(when "$two"))"
row "  its OS phase (s)" "$(phase "$two" os)" ""
row "two-pass / one-pass, whole install" "$(ratio "$(phase "$two" total)" "$(phase "$one" total)")" "goal >= 1.5x"
row "two-pass / one-pass, OS phase" "$(ratio "$(phase "$two" os)" "$(phase "$one" os)")" ""
native=$([ -f "$net/native/mmdebstrap.log" ] && sed -n 's/^I: success in \([0-9.]*\) seconds$/\1/p' "$net/native/mmdebstrap.log")
row "the same package pass natively on this host (s)" "$native" "bench-network.sh ($(when "$net/native/mmdebstrap.log"))"
row "os.packages in .ci/run's lab (s; resumed after the power cut)" "$(step "$ci_net" os.packages)" ".ci/run ($(when "$ci_net"))"
row "image install in .ci/run's lab (s)" "$(phase "$ci_img" total)" ".ci/run, same run; goal <= 180 s"
row "  its receive, os.image (s)" "$(step "$ci_img" os.image)" ""
row "keel's own time, network install (% of the install)" "$(share "$one")" "bench-network.sh; goal < 2 %"
row "keel's own time, image install (% of the install)" "$(share "$ci_img")" ".ci/run"
row "keel / plain script of the same plan, whole install" "$([ -f "$bench" ] && sed -n 's/.*ratio keel\/shell \([0-9.]*\)$/\1/p' "$bench")" "bench-install.sh ($(when "$bench"))"
[ -f "$one" ] || echo "  (no bench-network run here: bash scripts/lab/bench-network.sh)"
[ -f "$ci_img" ] || echo "  (no lab run here: bash .ci/run, or bash scripts/lab/run-all.sh)"
[ -f "$bench" ] || echo "  (no bench-install run here: bash scripts/lab/bench-install.sh)"
exit 0
