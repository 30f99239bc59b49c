#!/usr/bin/env bash
# Side-by-side bench of the network install on this machine, in one run: keel's one package
# pass (this checkout: mmdebstrap) against the two-pass path of an older commit (debootstrap,
# then apt-get in the target). Each is lab-node-01's os-install scenario in a fresh TCG guest,
# one after the other: the same guest image (it carries both tools), the same lab repository,
# the same profile, no registry.
#   bench-network.sh [OLD_COMMIT]   default fcdc1ba, the last commit with the two-pass path
#   KEEL_BENCH_SIDES="new"          runs only this checkout's install and keeps the other side's
#                                   results from an earlier run in the same work folder (the
#                                   table then says when each ran)
# Then the native figure: the same package pass (this checkout's mmdebstrap command from
# `keel plan`) into a folder on this host, outside the emulator, against the same repository.
# Prints per install keel's phase table and its OS steps, then the ratios.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
old=${1:-fcdc1ba}
work=${KEEL_LAB_WORK:-/tmp/keel-lab-bench-network}
cache_root=${KEEL_LAB_CACHE:-/var/cache/keel-lab}
sides=${KEEL_BENCH_SIDES:-new old}
mkdir -p "$work"
for which in $sides; do rm -rf "$work/$which" "$work/$which.out" "$work/$which.rc"; done
rm -rf "$work/native"
bash "$here/host-packages.sh" >&2
bash "$here/image.sh" >/dev/null || { echo "bench-network: the guest image could not be built"; exit 1; }
bash "$src/scripts/build-static.sh" >/dev/null || { echo "bench-network: static build failed"; exit 1; }
new_bin="$src/target/x86_64-unknown-linux-gnu/release/keel"
repo=$(bash "$here/repo.sh" 2>"$work/repo.log") || { cat "$work/repo.log"; echo "bench-network: no lab repository"; exit 1; }

# the older keel, built once per commit from its own worktree
sha=$(git -C "$src" rev-parse --verify "$old^{commit}") || { echo "bench-network: unknown commit $old"; exit 1; }
old_dir="$cache_root/old-keel-${sha:0:12}"
old_bin="$old_dir/target/x86_64-unknown-linux-gnu/release/keel"
if [[ " $sides " == *" old "* ]] && [ ! -x "$old_bin" ]; then
  rm -rf "$old_dir"
  mkdir -p "$old_dir"
  git -C "$src" archive "$sha" | tar -x -C "$old_dir" || exit 1
  echo "bench-network: building keel ${sha:0:12} (once)" >&2
  (cd "$old_dir" && RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$old_dir/target" \
    cargo build -q --release --locked --target x86_64-unknown-linux-gnu -p keel) >"$work/old-build.log" 2>&1 \
    || { tail -20 "$work/old-build.log"; echo "bench-network: the old keel did not build"; exit 1; }
fi

port=47080
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$repo" >"$work/repo-http.log" 2>&1 &
http=$!
trap 'kill $http 2>/dev/null' EXIT
export KEEL_LAB_REPO_PORT=$port
for which in $sides; do
  bin=$new_bin
  [ $which = old ] && bin=$old_bin
  s=$(date +%s)
  KEEL_LAB_BIN=$bin KEEL_LAB_MAC=52:54:00:a4:41:01 KEEL_LAB_APPEND="keel.node=1" KEEL_LAB_TIMEOUT=7200 \
    bash "$here/boot.sh" "$work/$which" os-install >"$work/$which.out" 2>&1
  echo "$? $(( $(date +%s) - s ))" >"$work/$which.rc"
  echo "bench-network: $which: exit $(cut -d' ' -f1 "$work/$which.rc"), $(cut -d' ' -f2 "$work/$which.rc") s wall" >&2
done

# native: the package pass of this checkout's plan, into a folder here (no ZFS, no emulator)
native="$work/native"
mkdir -p "$native/keys" "$native/root/etc/apt/trusted.gpg.d" "$native/root/etc/apt/sources.list.d" "$native/root/var/cache/keel"
"$new_bin" plan --profile "$src/profiles/lab-node-01.toml" --root "$src/tests/fixtures/qemu-lab" --json 2>/dev/null \
  | python3 -c '
import json, sys
steps = {s["id"]: s for s in json.load(sys.stdin)["steps"]}
c = next(c for c in steps["os.packages"]["commands"] if c[0] == "mmdebstrap")
json.dump(c, sys.stdout)' >"$native/command.json"
url="http://127.0.0.1:$port"
printf 'deb %s/debian bookworm main contrib\ndeb %s/debian bookworm-updates main contrib\ndeb %s/debian-security bookworm-security main contrib\n' \
  "$url" "$url" "$url" >"$native/root/etc/apt/sources.list"
echo "deb $url/pve bookworm pve-no-subscription" >"$native/root/etc/apt/sources.list.d/pve.list"
cp "$here/keys/lab-repo.gpg" "$native/root/etc/apt/trusted.gpg.d/proxmox-release-bookworm.gpg"
cp "$here/keys/lab-repo.gpg" "$native/keys/"
printf 'postfix postfix/main_mailer_type select Local only\npostfix postfix/mailname string lab-node-01.lab.example\n' >"$native/root/var/cache/keel/debconf-selections"
s=$(date +%s.%N)
python3 -c '
import json, os, sys
c = [a.replace("/mnt/keel", sys.argv[1] + "/root").replace("/run/keel/apt-keyring", sys.argv[1] + "/keys") for a in json.load(open(sys.argv[1] + "/command.json"))]
os.execvp(c[0], c)' "$native" >"$native/mmdebstrap.log" 2>&1
native_rc=$?
native_s=$(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
for m in dev/pts dev proc sys; do umount -l "$native/root/$m" 2>/dev/null; done

phases() { awk '/^ *phase times/ {on=1; next} on && /^ *PHASE/ {next} on && NF==2 && $2 ~ /^[0-9.]+$/ {print $1, $2; next} on {on=0}' "$1"; }
steps() { awk '/^ *step times/ {on=1; next} on && /^ *STEP/ {next} on && NF==3 && $3 ~ /^[0-9.]+$/ {print $1, $3; next} on {on=0}' "$1"; }
out() { echo "$work/$1/results-os-install/output.txt"; }
echo "network install of lab-node-01, seconds (TCG guest, 2 vCPUs; $(nproc) host cores, $(date -u +%F)):"
echo "  this checkout $(git -C "$src" rev-parse --short HEAD) (one package pass, ran $(date -u -r "$(out new)" '+%F %H:%M')) vs ${sha:0:7} (debootstrap + apt, ran $(date -u -r "$(out old)" '+%F %H:%M'))"
printf '  %-22s %10s %10s\n' STEP ONE-PASS TWO-PASS
awk 'NR == FNR { o[$1] = $2; next } { printf "  %-22s %10s %10s\n", $1, $2, ($1 in o) ? o[$1] : "-"; seen[$1] = 1 }
  END { for (k in o) if (!(k in seen)) printf "  %-22s %10s %10s\n", k, "-", o[k] }' \
  <(steps "$(out old)" | grep '^os\.') <(steps "$(out new)" | grep '^os\.')
printf '  %-22s %10s %10s\n' PHASE ONE-PASS TWO-PASS
awk 'NR == FNR { o[$1] = $2; next } { printf "  %-22s %10s %10s\n", $1, $2, ($1 in o) ? o[$1] : "-" }' <(phases "$(out old)") <(phases "$(out new)")
awk 'NR == FNR { o[$1] = $2; next } { n[$1] = $2 } END {
  if (n["total"] > 0 && n["os"] > 0) printf "figure: network install two-pass/one-pass %.2fx (whole install), %.2fx (OS phase)\n", o["total"] / n["total"], o["os"] / n["os"] }' \
  <(phases "$(out old)") <(phases "$(out new)")
echo "figure: the same package pass natively on this host: exit $native_rc, $(printf '%.1f' "$native_s") s ($(grep -c '^Status: install ok installed$' "$native/root/var/lib/dpkg/status" 2>/dev/null) packages installed)"
for which in new old; do
  [ "$(cut -d' ' -f1 "$work/$which.rc")" = 0 ] || { echo "bench-network: the $which install failed: $work/$which.out"; exit 1; }
done
[ $native_rc = 0 ] || { echo "bench-network: the native pass failed: $native/mmdebstrap.log"; exit 1; }
