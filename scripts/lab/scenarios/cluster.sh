# Both installed nodes booted on one loopback link (the vSwitch stand-in): corosync, as Debian
# packages it, with keel's rendered corosync.conf and the shared authkey, forms a quorate
# two-node cluster; keel verify --expect-quorum passes on each node. Each node first passes the
# checks of a boot from its drives.
. ./scenarios/lib.sh
wait_booted
# what a boot from the drives must show (as booted.sh): the ZFS root, the installed host id,
# keel's first-boot unit done and disabled
equals "root file system" rpool/ROOT/pve-1 "$(findmnt -n -o SOURCE /)"
equals "host id in use is the installed one" "$(od -An -tx4 /etc/hostid | tr -d ' ')" "$(hostid)"
check "keel-first-boot finished" sh -c 'for i in $(seq 90); do [ -e /var/lib/keel/first-boot.done ] && exit 0; sleep 2; done; exit 1'
equals "keel-first-boot disabled itself" disabled "$(systemctl is-enabled keel-first-boot.service 2>&1)"
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
