# Both installed nodes booted on one loopback link (the vSwitch stand-in), the registry on a
# second NIC: the cluster formed as Proxmox VE forms it, through keel's first boot and the lab's
# stand-in pvecm/pmxcfs (scripts/lab/standin; Debian's corosync forms the quorum). lab-node-01
# created it at its own first boot (boot-both); lab-node-02's first boot joins it now with the
# cluster root key and lab-node-01's host key pinned from the registry. Each node first passes
# the checks of a boot from its drives.
. ./scenarios/lib.sh
wait_booted
host=$(hostname)
# what a boot from the drives must show (as booted.sh): the ZFS root, the installed host id
equals "root file system" rpool/ROOT/pve-1 "$(findmnt -n -o SOURCE /)"
equals "host id in use is the installed one" "$(od -An -tx4 /etc/hostid | tr -d ' ')" "$(hostid)"
check "keel-first-boot finished" sh -c 'for i in $(seq 300); do [ -e /var/lib/keel/first-boot.done ] && exit 0; sleep 2; done; journalctl -u keel-first-boot --no-pager | tail -30; exit 1'
equals "keel-first-boot disabled itself" disabled "$(systemctl is-enabled keel-first-boot.service 2>&1)"
journalctl -u keel-first-boot --no-pager -o cat 2>/dev/null | grep 'first boot' | tail -8
for _ in $(seq 1 150); do
  corosync-quorumtool -s 2>/dev/null | grep -q '^Quorate: *Yes' && corosync-quorumtool -s | grep -q '^Nodes: *2' && break
  sleep 2
done
corosync-quorumtool -s
equals "quorate" Yes "$(corosync-quorumtool -s 2>/dev/null | awk -F: '/^Quorate/ {gsub(/ /, "", $2); print $2}')"
equals "nodes" 2 "$(corosync-quorumtool -s 2>/dev/null | awk -F: '/^Nodes/ {gsub(/ /, "", $2); print $2}')"
# pvecm's file, shared by both nodes (the joiner added two_node; the stand-in's pmxcfs hands it on)
check "both nodes in /etc/pve/corosync.conf" sh -c 'grep -q "name: lab-node-01" /etc/pve/corosync.conf && grep -q "name: lab-node-02" /etc/pve/corosync.conf'
check "two_node in /etc/pve/corosync.conf (added after the join)" sh -c 'for i in $(seq 60); do grep -q "two_node: 1" /etc/pve/corosync.conf && exit 0; sleep 2; done; cat /etc/pve/corosync.conf; exit 1'
check "corosync runs the same file" cmp /etc/pve/corosync.conf /etc/corosync/corosync.conf
check "keel wrote no corosync file of its own: pvecm made the authkey" test -s /etc/corosync/authkey
# Proxmox VE took root's authorized_keys over (pvecm updatecerts); keel's key lines are still in it
check "root's authorized_keys is pvecm's link" test "$(readlink /root/.ssh/authorized_keys)" = /etc/pve/priv/authorized_keys
check "the cluster key is accepted from the cluster network only" grep -q '^from="192.168.100.0/24" ssh-rsa ' /etc/pve/priv/authorized_keys
# pvecm sets PermitRootLogin yes in sshd_config; keel's drop-in comes first and wins
equals "sshd's effective PermitRootLogin" without-password "$(sshd -T 2>/dev/null | awk '/^permitrootlogin/ {print $2}')"
if [ "$host" = lab-node-02 ]; then
  check "the first node's host key was pinned" sh -c "grep -q '^192.168.100.1 ssh-' /root/.ssh/known_hosts"
  # negative control: without the trust (another root key), pvecm add cannot authenticate,
  # prints its worker's error and still exits 0 (what keel must not take for success)
  mv /root/.ssh/id_rsa /root/.ssh/id_rsa.keel && mv /root/.ssh/id_rsa.pub /root/.ssh/id_rsa.pub.keel
  pvecm add 192.168.100.1 --link0 192.168.100.2 --nodeid 2 --use_ssh --force </dev/null >/tmp/pvecm-untrusted.txt 2>&1
  rc=$?
  mv -f /root/.ssh/id_rsa.keel /root/.ssh/id_rsa && mv -f /root/.ssh/id_rsa.pub.keel /root/.ssh/id_rsa.pub
  tail -3 /tmp/pvecm-untrusted.txt | sed 's/^/      pvecm: /'
  equals "pvecm add without the trust: exit code" 0 "$rc"
  check "pvecm add without the trust: the failure is only in its words" grep -q 'TASK ERROR: unable to copy ssh ID' /tmp/pvecm-untrusted.txt
fi
/usr/local/sbin/keel verify --expect-quorum >/tmp/verify.txt 2>&1
equals "keel verify --expect-quorum exit code" 0 "$?"
cat /tmp/verify.txt
# stay in the cluster while the other node runs its own checks (powering off first would
# leave it alone: it saw "1 of 2" in a run that did not wait)
sleep 45
finish
