# Both installed nodes booted on one loopback link (the vSwitch stand-in): corosync, as Debian
# packages it, with keel's rendered corosync.conf and the shared authkey, forms a quorate
# two-node cluster; keel verify --expect-quorum passes on each node.
. ./scenarios/lib.sh
wait_booted
for _ in $(seq 1 90); do
  corosync-quorumtool -s 2>/dev/null | grep -q '^Quorate: *Yes' && corosync-quorumtool -s | grep -q '^Nodes: *2' && break
  sleep 2
done
corosync-quorumtool -s
equals "quorate" Yes "$(corosync-quorumtool -s 2>/dev/null | awk -F: '/^Quorate/ {gsub(/ /, "", $2); print $2}')"
equals "nodes" 2 "$(corosync-quorumtool -s 2>/dev/null | awk -F: '/^Nodes/ {gsub(/ /, "", $2); print $2}')"
/usr/local/sbin/keel verify --expect-quorum >/tmp/verify.txt 2>&1
equals "keel verify --expect-quorum exit code" 0 "$?"
cat /tmp/verify.txt
# stay in the cluster while the other node runs its own checks (powering off first would
# leave it alone: it saw "1 of 2" in a run that did not wait)
sleep 45
finish
