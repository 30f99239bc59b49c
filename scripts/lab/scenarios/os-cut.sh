# keel install of lab-node-0N as os-install.sh runs it, and a power cut in the middle of the
# package step: once dpkg in the target has configured part of the packages (20 or more) and
# left others unpacked or half-configured, the earliest such moment. The next boot
# (os-install.sh with keel.packages-cut=resume) resumes it: the step starts again from the
# snapshot taken before it, never from the half-configured dpkg database.
. ./scenarios/lib.sh
node=$(node_number)
rescue_network
profile="--profile profiles/lab-node-0$node.toml"
grep -q 'keel\.token=' /proc/cmdline && profile=""
./keel install $profile --yes --confirm-serials "$SERIALS" --journal-dir $JOURNALS --progress plain >/tmp/install.txt 2>&1 &
j=$JOURNALS/install-lab-node-0$node.jsonl
dpkg=/mnt/keel/var/lib/dpkg
# dpkg's view now: its status file with the journal of changes since (updates/NNNN, one
# package's record each; dpkg folds them into status only every few hundred changes), the last
# record of a package wins. Prints: installed, unpacked or half-configured, the first of those.
states() {
  cat $dpkg/status $(ls $dpkg/updates/[0-9]* 2>/dev/null) 2>/dev/null | awk '
    /^Package: /{p=$2} /^Status: /{s[p]=$4}
    END{for(k in s){if(s[k]=="installed")i++; else if(s[k]~/^(unpacked|half-configured|half-installed|triggers-awaited|triggers-pending)$/){u++; if(f=="")f=k}}
        print i+0, u+0, f}'
}
cut=""
for _ in $(seq 1 3600); do
  if grep -q '"event":"done","step":"os.packages"' $j 2>/dev/null; then break; fi
  # dpkg has configured some packages and left others unpacked: the earliest such moment is in
  # the base system's configuration, before apt installs the rest
  if grep -q '"event":"start","step":"os.packages"' $j 2>/dev/null; then
    set -- $(states)
    if [ "${1:-0}" -ge 20 ] && [ "${2:-0}" -ge 1 ]; then
      cut=yes
      break
    fi
  fi
  sleep 1
done
tail -30 /tmp/install.txt
set -- $(states)
echo "dpkg in the target at the cut: ${1:-0} installed, ${2:-0} unpacked or half-configured (${3:-none} among them)"
check "the cut falls in the middle of the package step" test "$cut" = yes
echo "cutting the power now (no sync)"
echo "scenario: $failures check(s) failed"
[ "$failures" = 0 ] && echo 0 >/results/rc || echo 1 >/results/rc
echo 0 >/results/seconds
cp -a $JOURNALS /results/journal 2>/dev/null
(cd /results && tar cf /dev/vdc .)
sync /dev/vdc  # the results disk only: the pools get no sync
echo 1 >/proc/sys/kernel/sysrq
echo o >/proc/sysrq-trigger
sleep 30
