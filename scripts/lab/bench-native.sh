#!/usr/bin/env bash
# The OS phase's package work natively on this host, outside the emulator, against the lab
# repository (repo.sh), into folders under the work folder (no ZFS, no guest):
#   one pass   this checkout's `os.packages` command from `keel plan` (mmdebstrap), as keel runs it
#   two pass   the older commit's `os.debootstrap` and `os.packages` commands, read from that
#              commit's golden plan of lab-node-01 (debootstrap, then apt-get in the target)
# Each runs twice, alternating; prints every time and the medians.
#   bench-native.sh [OLD_COMMIT]   default fcdc1ba
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
old=${1:-fcdc1ba}
work=${KEEL_BENCH_NATIVE:-/tmp/keel-lab-bench-native}
rm -rf "$work"
mkdir -p "$work"
bash "$here/host-packages.sh" >&2
repo=$(bash "$here/repo.sh" 2>"$work/repo.log") || { cat "$work/repo.log"; exit 1; }
bash "$src/scripts/build-static.sh" >/dev/null || exit 1
bin="$src/target/x86_64-unknown-linux-gnu/release/keel"
port=47081
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$repo" >"$work/http.log" 2>&1 &
http=$!
umount_all() { for m in $(awk -v w="$work" '$2 ~ "^"w {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null; done; }
trap 'umount_all; kill $http 2>/dev/null' EXIT
url="http://127.0.0.1:$port"
key="$here/keys/lab-repo.gpg"
plan_json=$("$bin" plan --profile "$src/profiles/lab-node-01.toml" --root "$src/tests/fixtures/qemu-lab" --json 2>/dev/null)
old_plan=$(git -C "$src" show "$old:tests/golden/cli/plan-lab-node-01-qemu-lab.txt") || { echo "bench-native: no golden plan at $old"; exit 1; }
seed='postfix postfix/main_mailer_type select Local only
postfix postfix/mailname string lab-node-01.lab.example'

target() { # DIR: the target as the steps before the package work leave it
  mkdir -p "$1/etc/apt/trusted.gpg.d" "$1/etc/apt/sources.list.d" "$1/var/cache/keel"
  printf 'deb %s/debian bookworm main contrib\ndeb %s/debian bookworm-updates main contrib\ndeb %s/debian-security bookworm-security main contrib\n' \
    "$url" "$url" "$url" >"$1/etc/apt/sources.list"
  echo "deb $url/pve bookworm pve-no-subscription" >"$1/etc/apt/sources.list.d/pve.list"
  cp "$key" "$1/etc/apt/trusted.gpg.d/proxmox-release-bookworm.gpg"
  echo "$seed" >"$1/var/cache/keel/debconf-selections"
}

one_pass() { # DIR
  local d=$1
  target "$d/root"
  mkdir -p "$d/keys" && cp "$key" "$d/keys/"
  python3 -c '
import json, os, sys
steps = {s["id"]: s for s in json.loads(sys.argv[2])["steps"]}
c = next(c for c in steps["os.packages"]["commands"] if c[0] == "mmdebstrap")
c = [a.replace("/mnt/keel", sys.argv[1] + "/root").replace("/run/keel/apt-keyring", sys.argv[1] + "/keys") for a in c]
os.execvp(c[0], c)' "$d" "$plan_json"
}

two_pass() { # DIR
  local d=$1 r=$1/root boot pkgs
  boot=$(sed -n 's/^ *\$ \(debootstrap .*\)$/\1/p' <<<"$old_plan" | sed "s#/payload/lab-repo.gpg#$key#; s#/mnt/keel#$r#; s#http://10.0.2.100#$url#")
  pkgs=$(sed -n 's/^ *\$ chroot \/mnt\/keel env DEBIAN_FRONTEND=noninteractive apt-get install .*Dpkg::Options::=--force-confold \(.*\)$/\1/p' <<<"$old_plan")
  [ -n "$boot" ] && [ -n "$pkgs" ] || { echo "bench-native: the old plan's commands were not found"; return 1; }
  $boot || return 1
  for fs in dev proc sys run; do mount --make-private --rbind "/$fs" "$r/$fs"; done
  target "$r"
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d" && chmod 755 "$r/usr/sbin/policy-rc.d"
  chroot "$r" debconf-set-selections /var/cache/keel/debconf-selections &&
  chroot "$r" apt-get update --quiet &&
  chroot "$r" env DEBIAN_FRONTEND=noninteractive apt-get install --yes --quiet -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $pkgs &&
  chroot "$r" dpkg --purge linux-image-amd64 os-prober &&
  rm -f "$r/usr/sbin/policy-rc.d"
}

timed() { # NAME RUN: one run, its seconds on stdout (log in the work folder)
  local d="$work/$1-$2" s rc
  mkdir -p "$d"
  s=$(date +%s.%N)
  "$1" "$d" >"$d.log" 2>&1
  rc=$?
  umount_all
  [ $rc = 0 ] || { echo "bench-native: $1 run $2 failed (exit $rc): $d.log" >&2; tail -5 "$d.log" >&2; echo fail; return; }
  awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", b - a }'
  # never remove a folder that still has /dev, /proc, /sys or /run bound under it
  if awk -v w="$d" '$2 ~ "^"w {found = 1} END {exit !found}' /proc/mounts; then
    echo "bench-native: $d still has mounts; left in place" >&2
  else
    rm -rf --one-file-system "$d"
  fi
}

declare -A t
for run in 1 2; do
  for pass in one_pass two_pass; do
    t[$pass-$run]=$(timed $pass $run)
    echo "bench-native: $pass run $run: ${t[$pass-$run]} s" >&2
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
one=$(median "${t[one_pass-1]}" "${t[one_pass-2]}")
two=$(median "${t[two_pass-1]}" "${t[two_pass-2]}")
echo "native package work on this host ($(nproc) cores, $(date -u +%F)), seconds: one pass ${t[one_pass-1]} ${t[one_pass-2]} (median $one), two passes ${t[two_pass-1]} ${t[two_pass-2]} (median $two)"
awk -v a="$two" -v b="$one" 'BEGIN { if (a > 0 && b > 0) printf "figure: native two-pass/one-pass %.2fx\n", a / b }'
