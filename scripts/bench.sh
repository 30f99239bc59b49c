#!/usr/bin/env bash
# Prints keel's figures: time of detect, validate and plan on the AX41 fixture (cargo bench),
# the size of the static binary, wall time of whole CLI runs (the binary, as an operator runs
# it), then the install figures of the last lab runs on this machine (scripts/lab/figures.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -q -p keel-installer --bench pipeline
bash scripts/build-static.sh | grep -E "^(size|ldd)"
bin=target/x86_64-unknown-linux-gnu/release/keel
for args in "detect --root tests/fixtures/ax41-nvme --json" \
            "validate --profile profiles/pve-node-01.toml" \
            "plan --profile profiles/pve-node-01.toml --root tests/fixtures/ax41-nvme"; do
  start=$(date +%s%N)
  for _ in $(seq 100); do $bin $args >/dev/null 2>&1; done
  end=$(date +%s%N)
  printf 'cli: keel %-70s %7.2f ms per run (100 runs)\n' "$args" "$(echo "($end - $start) / 100000000" | bc -l)"
done
# the install figures of the last lab runs here (network one pass vs two passes, image install,
# keel's own time, keel vs a plain script): read from their work folders, nothing is run
bash scripts/lab/figures.sh
