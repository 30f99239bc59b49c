# keel install of lab-node-0N as os-install.sh runs it, and a power cut in the middle of the
# package step: once dpkg in the target has installed part of the packages and left others
# unpacked or half-configured. The next boot (os-install.sh with keel.packages-cut=resume)
# resumes it: the step starts again from the snapshot taken before it, never from the
# half-configured dpkg database.
. ./scenarios/lib.sh
node=$(node_number)
rescue_network
profile="--profile profiles/lab-node-0$node.toml"
grep -q 'keel\.token=' /proc/cmdline && profile=""
./keel install $profile --yes --confirm-serials "$SERIALS" --journal-dir $JOURNALS --progress plain >/tmp/install.txt 2>&1 &
j=$JOURNALS/install-lab-node-0$node.jsonl
status=/mnt/keel/var/lib/dpkg/status
count() { n=$(grep -c "$1" $status 2>/dev/null); echo "${n:-0}"; }  # 0 before dpkg's status exists
unfinished() { count '^Status: install ok \(unpacked\|half-configured\|half-installed\|triggers-awaited\|triggers-pending\)$'; }
installed() { count '^Status: install ok installed$'; }
cut=""
for _ in $(seq 1 3600); do
  if grep -q '"event":"done","step":"os.packages"' $j 2>/dev/null; then break; fi
  # the base (about 90 required packages) is in; the remaining ones are going in
  if grep -q '"event":"start","step":"os.packages"' $j 2>/dev/null && [ "$(installed)" -ge 110 ] && [ "$(unfinished)" -ge 1 ]; then
    cut=yes
    break
  fi
  sleep 1
done
tail -30 /tmp/install.txt
echo "dpkg in the target at the cut: $(installed) installed, $(unfinished) unpacked or half-configured"
grep -h '^Package: \|^Status: install ok \(unpacked\|half-configured\|half-installed\|triggers-awaited\|triggers-pending\)$' $status 2>/dev/null \
  | grep -B1 '^Status' | grep '^Package' | head -5 | sed 's/^/  not configured: /'
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
