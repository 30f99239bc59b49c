# Both installed nodes booted on one loopback link (the vSwitch stand-in), the registry on a
# second NIC: the cluster formed as Proxmox VE forms it, through keel's first boot and the lab's
# stand-in pvecm/pmxcfs (scripts/lab/standin; Debian's corosync forms the quorum). lab-node-01
# created it at its own first boot (boot-both); lab-node-02's first boot joins it now with the
# cluster root key and lab-node-01's host key pinned from the registry. Each node first passes
# the checks of a boot from its drives.
# Sourced by cluster-survivor.sh (DR_ROLE=survivor: lab-node-02 then stays up while lab-node-01
# is rebuilt from the image, stays quorate alone, and checks the rebuilt node's return) and by
# rejoin.sh (DR_ROLE=rejoined: the rebuilt lab-node-01's first boot joined the running cluster).
. ./scenarios/lib.sh
. ./scenarios/day-one.sh
wait_booted
host=$(hostname)
# lab-node-02 plays the gateway of lab-node-01's uplink for the day-one checks (day-one.sh)
[ "$host" = lab-node-02 ] && [ "${DR_ROLE:-}" != rejoined ] && upstream_gateway
# what a boot from the drives must show (as booted.sh): the ZFS root, the installed host id
equals "root file system" rpool/ROOT/pve-1 "$(findmnt -n -o SOURCE /)"
equals "host id in use is the installed one" "$(od -An -tx4 /etc/hostid | tr -d ' ')" "$(hostid)"
equals "OpenZFS runs with it (spl_hostid from the kernel command line)" "$(od -An -tx4 /etc/hostid | tr -d ' ')" "$(printf '%08x' "$(cat /sys/module/spl/parameters/spl_hostid)")"
check "keel-first-boot finished" sh -c 'for i in $(seq 300); do [ -e /var/lib/keel/first-boot.done ] && exit 0; sleep 2; done; journalctl -u keel-first-boot --no-pager | tail -30; exit 1'
first_boot_disabled
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
# the stand-in pmxcfs hands a new /etc/pve/corosync.conf to corosync from a path unit: a moment later
check "corosync runs the same file" sh -c 'for i in $(seq 30); do cmp -s /etc/pve/corosync.conf /etc/corosync/corosync.conf && exit 0; sleep 2; done; cmp /etc/pve/corosync.conf /etc/corosync/corosync.conf'
check "keel wrote no corosync file of its own: pvecm made the authkey" test -s /etc/corosync/authkey
# Proxmox VE took root's authorized_keys over (pvecm updatecerts); keel's key lines are still in it
check "root's authorized_keys is pvecm's link" test "$(readlink /root/.ssh/authorized_keys)" = /etc/pve/priv/authorized_keys
check "the cluster key is accepted from the cluster network only" grep -q '^from="192.168.100.0/24" ssh-rsa ' /etc/pve/priv/authorized_keys
# pvecm sets PermitRootLogin yes in sshd_config; keel's drop-in comes first and wins
equals "sshd's effective PermitRootLogin" without-password "$(sshd -T 2>/dev/null | awk '/^permitrootlogin/ {print $2}')"
if [ "${DR_ROLE:-}" = rejoined ]; then
  # the rebuilt node joined the cluster lab-node-02 kept running (no second cluster): pvecm add
  # from its first boot, under its old name and node id
  check "the first boot joined the running cluster (pvecm add), it did not create one" sh -c "journalctl -u keel-first-boot --no-pager -o cat | grep -q 'pvecm add 192.168.100.2 --link0 192.168.100.1 --nodeid 1 --use_ssh' && ! journalctl -u keel-first-boot --no-pager -o cat | grep -q 'pvecm create'"
  equals "lab-node-01 in the nodelist once, node id 1" "1 1" "$(awk '/name:/ {n=$2} /nodeid:/ {if (n == "lab-node-01") {c++; id=$2}} END {print c+0, id}' /etc/pve/corosync.conf)"
  check "the peer's host key was pinned from the registry" sh -c "grep -q '^192.168.100.2 ssh-' /root/.ssh/known_hosts"
  check "root reaches lab-node-02 with its host key checked" ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=10 root@192.168.100.2 true
fi
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
if [ "$host" = lab-node-02 ]; then
  # Prometheus scrapes every node over the cluster network (the seed's scrape config)
  check "lab-node-01's node exporter answers over the cluster network (192.168.100.1:9100)" sh -c 'for i in $(seq 60); do python3 /run/lab-http-get.py http://192.168.100.1:9100/metrics 5 2>/dev/null | grep -q "^node_uname_info" && exit 0; sleep 3; done; exit 1'
fi
# the profile's Proxmox VE storages and backup job, registered by the first boot with pvesm and
# pvesh (the lab's stand-ins write storage.cfg and jobs.cfg as pve-common's SectionConfig does)
check "first boot: the storage step passed" sh -c "journalctl -u keel-first-boot --no-pager -o cat | grep -q '^first boot: storage step: ok'"
section() { awk -v h="$2" '$0 == h {on=1; next} /^[^ \t]/ {on=0} on && NF' "$1" | sed 's/^[ \t]*//' | sort | tr '\n' ';'; }
equals "storage.cfg: datapool" "content images,rootdir;pool datapool;sparse 1;" "$(section /etc/pve/storage.cfg 'zfspool: datapool')"
equals "storage.cfg: backups" "content backup;is_mountpoint 1;path /datapool/backups;" "$(section /etc/pve/storage.cfg 'dir: backups')"
equals "storage.cfg: templates" "content iso,vztmpl;is_mountpoint 1;path /datapool/templates;" "$(section /etc/pve/storage.cfg 'dir: templates')"
equals "storage.cfg: pbs-local (added disabled: no password in a profile)" "content backup;datastore datastore1;disable;fingerprint $(printf '00:%.0s' $(seq 31))00;server 192.168.100.1;username root@pam;" "$(section /etc/pve/storage.cfg 'pbs: pbs-local')"
equals "jobs.cfg: daily-backup" "all 1;compress zstd;enabled 1;mailnotification always;mailto admin@neurodatalab.ai;mode snapshot;prune-backups keep-daily=7,keep-weekly=4,keep-monthly=6;schedule 02:00;storage pbs-local;" "$(section /etc/pve/jobs.cfg 'vzdump: daily-backup')"
[ "$host" = lab-node-01 ] && [ -z "${DR_ROLE:-}" ] && day_one_checks
/usr/local/sbin/keel verify --expect-quorum >/tmp/verify.txt 2>&1
equals "keel verify --expect-quorum exit code" 0 "$?"
cat /tmp/verify.txt
mark_done cluster-checked
case $host in lab-node-01) peer=192.168.100.2 ;; *) peer=192.168.100.1 ;; esac
if [ "${DR_ROLE:-}" = survivor ]; then
  # Disaster recovery while this node runs: lab-node-01 powers off (end of its cluster
  # scenario), is rebuilt from the image with new host keys, and its first boot joins this
  # node's cluster again. The key keel pinned for lab-node-01 when this node joined it:
  awk '$1 == "192.168.100.1" {print $3}' /root/.ssh/known_hosts >/tmp/old-keys
  version_before=$(awk '/config_version:/ {print $2; exit}' /etc/pve/corosync.conf)
  nodes() { corosync-quorumtool -s 2>/dev/null | awk -F: '/^Nodes/ {gsub(/ /, "", $2); print $2}'; }
  quorate() { corosync-quorumtool -s 2>/dev/null | awk -F: '/^Quorate/ {gsub(/ /, "", $2); print $2}'; }
  echo "dr: waiting for lab-node-01 to go down"
  for _ in $(seq 1 300); do [ "$(nodes)" = 1 ] && break; sleep 2; done
  equals "lab-node-01 gone: nodes" 1 "$(nodes)"
  equals "alone, still quorate (two_node)" Yes "$(quorate)"
  echo "dr: $(date +%T) waiting for lab-node-01, rebuilt from the image, to rejoin"
  for _ in $(seq 1 1200); do [ "$(nodes)" = 2 ] && [ "$(quorate)" = Yes ] && break; sleep 2; done
  echo "dr: $(date +%T)"
  corosync-quorumtool -s
  equals "lab-node-01 back: nodes" 2 "$(nodes)"
  equals "quorate" Yes "$(quorate)"
  equals "one cluster: its name" lab-cluster "$(awk '/cluster_name:/ {print $2; exit}' /etc/pve/corosync.conf)"
  equals "lab-node-01 in the nodelist once, node id 1" "1 1" "$(awk '/name:/ {n=$2} /nodeid:/ {if (n == "lab-node-01") {c++; id=$2}} END {print c+0, id}' /etc/pve/corosync.conf)"
  check "config_version raised by the re-add (was $version_before)" test "$(awk '/config_version:/ {print $2; exit}' /etc/pve/corosync.conf)" -gt "$version_before"
  check "two_node kept" grep -q "two_node: 1" /etc/pve/corosync.conf
  # stale state on this node: keel's pinned key for lab-node-01 is replaced by the new node's
  new_key=$(ssh-keyscan -T 10 -t ed25519 192.168.100.1 2>/dev/null | awk '{print $3; exit}')
  check "lab-node-01 has new host keys (rebuilt; $(wc -l </tmp/old-keys) old ones were pinned)" sh -c "[ -n '$new_key' ] && [ -s /tmp/old-keys ] && ! grep -qxF '$new_key' /tmp/old-keys"
  # keel on lab-node-01 refreshes this file after its `pvecm add` returned (updatecerts, then
  # over ssh): corosync shows 2 nodes before that, so the refresh is waited for (up to 300 s)
  echo "dr: $(date +%T) waiting for lab-node-01's keel to refresh root's known_hosts here"
  for _ in $(seq 1 150); do
    ! grep -qFf /tmp/old-keys /root/.ssh/known_hosts && [ -n "$new_key" ] && grep -qF "$new_key" /root/.ssh/known_hosts && break
    sleep 2
  done
  echo "dr: $(date +%T)"
  check "its old host keys are gone from root's known_hosts" sh -c "! grep -qFf /tmp/old-keys /root/.ssh/known_hosts"
  check "root reaches the rebuilt lab-node-01 with its host key checked" ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=10 root@192.168.100.1 true
  /usr/local/sbin/keel verify --expect-quorum >/tmp/verify.txt 2>&1
  equals "keel verify --expect-quorum after the rejoin: exit code" 0 "$?"
  grep -i "cluster\|quorum" /tmp/verify.txt
  # node 1 powers off as soon as it sees rejoin-checked: wait for its own checks first (marking
  # first left the survivor polling a node already going down, 60 s until it gave up)
  wait_peer "$peer" cluster-checked 1200
  mark_done rejoin-checked
fi
# stay in the cluster until the other node is done with its checks (powering off first leaves
# it alone: "1 of 2"). The survivor's waits are above: for lab-node-01 to go down and come back,
# then, after its rejoin checks, for the rebuilt node's own checks before it says
# rejoin-checked; the rebuilt node stays until it sees that.
case ${DR_ROLE:-} in
  survivor) ;; # waited above, before rejoin-checked
  rejoined) wait_peer "$peer" rejoin-checked 1200 ;;
  *) wait_peer "$peer" cluster-checked ;;
esac
finish
