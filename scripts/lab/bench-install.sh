#!/usr/bin/env bash
# Benchmark: keel's full lab install of lab-node-01 vs the same plan as a plain shell script
# (keel plan --shell), in one guest boot on the same drives, against the lab repository.
# Prints both wall times and the ratio (scenario bench-install). Takes two installs' time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${KEEL_LAB_WORK:-/tmp/keel-lab-bench}
rm -rf "$work"
mkdir -p "$work"
repo=$(bash "$here/repo.sh")
port=47090
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$repo" >"$work/repo-http.log" 2>&1 &
http=$!
trap 'kill $http 2>/dev/null' EXIT
set +e
KEEL_LAB_REPO_PORT=$port KEEL_LAB_TIMEOUT=5400 bash "$here/boot.sh" "$work/bench" bench-install
rc=$?
sed 's/^/    /' "$work/bench/results-bench-install/output.txt"
exit $rc
