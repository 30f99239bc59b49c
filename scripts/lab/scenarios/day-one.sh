# The day-one node (profile sections firewall, fail2ban, metrics, services, zfs.arc-max) on a
# booted cluster node, from the other node and from network namespaces that play guests on
# vmbr0's VLANs (the lab harness makes them; keel makes none). Sourced by cluster.sh (sh: dash,
# no bash syntax; bash only where a command names it, for its /dev/tcp).

# lab-node-02's part, at the start of its cluster scenario: the "Hetzner gateway" of
# lab-node-01's uplink. A namespace on a macvlan of its uplink (the link between the guests)
# holds 10.0.2.2, the point-to-point gateway of lab-node-01's /32, and answers HTTP on :8081
# with the address the request came from. Nothing of lab-node-02's own network changes.
upstream_gateway() {
  ip netns add upstream
  ip link add gw0 link nic0 type macvlan mode bridge
  ip link set gw0 netns upstream
  ip -n upstream link set lo up
  ip -n upstream link set gw0 up
  ip -n upstream addr add 10.0.2.2/32 dev gw0
  ip -n upstream route add 10.0.2.15/32 dev gw0
  cat >/run/echo-address.py <<'PY'
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = self.client_address[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("10.0.2.2", 8081), H).serve_forever()
PY
  ip netns exec upstream setsid python3 /run/echo-address.py </dev/null >/dev/null 2>&1 &
  echo "lab: the uplink's gateway 10.0.2.2 (a namespace on nic0) answers on :8081 with the client's address"
}

# A guest on a VLAN of vmbr0: a namespace with a veth port of the bridge, untagged in the VLAN.
lab_guest() { # name vlan address/prefix gateway
  ip netns add "$1"
  ip link add "g$1" type veth peer name eth0 netns "$1"
  ip link set "g$1" master vmbr0
  bridge vlan del dev "g$1" vid 1 2>/dev/null
  bridge vlan add dev "g$1" vid "$2" pvid untagged
  ip link set "g$1" up
  ip -n "$1" link set lo up
  ip -n "$1" link set eth0 up
  ip -n "$1" addr add "$3" dev eth0
  ip -n "$1" route add default via "$4"
}
in_ns() { ip netns exec "$@"; }
# The node has no curl: an HTTP GET in python3 (fail2ban's), with curl's exit codes for what is
# checked: 0 and the body for 200, 28 for a timeout (dropped), 7 for a refused connection.
cat >/run/lab-http-get.py <<'PY'
import socket, sys, urllib.error, urllib.request
try:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(sys.argv[1], timeout=float(sys.argv[2]) if len(sys.argv) > 2 else 10) as r:
        sys.stdout.write(r.read().decode(errors="replace"))
except urllib.error.HTTPError:
    sys.exit(22)
except (urllib.error.URLError, OSError) as e:
    reason = getattr(e, "reason", e)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        sys.exit(28)
    if isinstance(reason, ConnectionRefusedError):
        sys.exit(7)
    sys.exit(1)
PY
hget() { python3 /run/lab-http-get.py "$@"; } # url [timeout]
tcp_open() { # namespace address port: a TCP connection within 5 s
  in_ns "$1" timeout 5 bash -c "</dev/tcp/$2/$3" 2>/dev/null
}
in_ns_or_node() { # namespace ("-": the node itself) command...
  ns=$1
  shift
  if [ "$ns" = - ]; then "$@"; else ip netns exec "$ns" "$@"; fi
}
http_server() { # namespace address port ("-": the node itself): serves a page saying "ok"
  mkdir -p /run/lab-www && echo ok >/run/lab-www/index.html
  in_ns_or_node "$1" setsid python3 -m http.server "$3" --bind "$2" --directory /run/lab-www </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 30); do in_ns_or_node "$1" timeout 2 bash -c "</dev/tcp/$2/$3" 2>/dev/null && return 0; sleep 1; done
  return 1
}
# ssh as root from a namespace: refused (root may log in from the cluster network only)
failed_login() { # namespace address
  in_ns "$1" ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o ConnectTimeout=5 -o LogLevel=ERROR -i /dev/null root@"$2" true >/dev/null 2>&1
}

# lab-node-01's part, with the cluster formed (node 2 up, its gateway namespace made)
day_one_checks() {
  echo "--- the day-one node: ARC, rpcbind, metrics, firewall, fail2ban"
  # ZFS ARC cap (zfs.arc-max = 256MiB): in force, on the command line, inside the initramfs
  equals "zfs_arc_max in force" 268435456 "$(cat /sys/module/zfs/parameters/zfs_arc_max)"
  check "zfs.zfs_arc_max on the kernel command line" grep -q 'zfs.zfs_arc_max=268435456' /proc/cmdline
  check "/etc/modprobe.d/zfs.conf inside the initramfs" sh -c "lsinitramfs /boot/initrd.img-$(uname -r) | grep -qx 'etc/modprobe.d/zfs.conf'"
  # rpcbind: installed (Proxmox VE's storage pulls it in: nfs-common), masked, port 111 closed
  check "rpcbind is installed (nfs-common, as Proxmox VE pulls it in)" dpkg-query -W -f='${Status}' rpcbind
  equals "rpcbind.socket" masked "$(systemctl is-enabled rpcbind.socket 2>&1)"
  check "nothing listens on port 111" sh -c "! ss -Hltun | awk '{print \$5}' | grep -q ':111\$'"
  # metrics: on the cluster address only; the ZFS exporter reports the ARC cap
  for _ in $(seq 1 60); do hget http://192.168.100.1:9100/metrics 5 >/dev/null 2>&1 && break; sleep 2; done
  check "node exporter answers on 192.168.100.1:9100" sh -c "python3 /run/lab-http-get.py http://192.168.100.1:9100/metrics | grep -q '^node_uname_info'"
  equals "port 9100: listening addresses" 192.168.100.1:9100 "$(ss -Hltn | awk '{print $4}' | grep ':9100$' | tr '\n' ' ' | sed 's/ $//')"
  hget http://10.0.2.15:9100/metrics 5 >/dev/null 2>&1
  equals "the uplink's 10.0.2.15:9100: connection refused (exit 7)" 7 "$?"
  check "ZFS metrics on 192.168.100.1:9134 report the ARC cap" sh -c "python3 /run/lab-http-get.py http://192.168.100.1:9134/metrics | awk '/^node_zfs_arc_c_max / {v=\$2+0} END {exit !(v == 268435456)}'"
  # the firewall: keel's table loaded before the network (and the conntrack zone for
  # masquerading behind Proxmox's firewall bridges)
  check "keel-firewall.service active" systemctl is-active keel-firewall.service
  check "table inet keel: input policy drop" sh -c "nft list chain inet keel input | grep -q 'policy drop'"
  check "conntrack zone for guests behind fwbr (iptables raw)" sh -c "iptables -t raw -S PREROUTING | grep -q -- '-i fwbr+ -j CT --zone 1'"

  # guests: VLAN 10 (v10), 20 (v20), 30 (v30, monitoring), and an admin VPN client (adm: the
  # admin network 10.10.0.0/24 brought in on VLAN 40, the node 10.10.0.1 there)
  lab_guest v10 10 10.0.10.50/24 10.0.10.1
  lab_guest v20 20 10.0.20.50/24 10.0.20.1
  lab_guest v30 30 10.0.30.50/24 10.0.30.1
  ip addr add 10.10.0.1/24 dev vmbr0.40
  lab_guest adm 40 10.10.0.5/24 10.10.0.1
  check "a listener on VLAN 10 (10.0.10.50:8080)" http_server v10 10.0.10.50 8080
  check "a listener on VLAN 20 (10.0.20.50:8080)" http_server v20 10.0.20.50 8080
  check "SSH reachable from a guest (VLAN 20 to 10.0.20.1:22)" tcp_open v20 10.0.20.1 22
  in_ns v10 python3 /run/lab-http-get.py http://10.0.20.50:8080/ 5 >/dev/null 2>&1
  equals "VLAN 10 cannot open a connection to VLAN 20 (10.0.20.50:8080): dropped, timed out (exit 28)" 28 "$?"
  check "VLAN 10 cannot reach the cluster network (lab-node-02's 192.168.100.2:22)" sh -c "! ip netns exec v10 timeout 5 bash -c '</dev/tcp/192.168.100.2/22'"
  check "VLAN 30 reaches VLAN 10's :8080 (the profile's guest-allow)" in_ns v30 python3 /run/lab-http-get.py http://10.0.10.50:8080/
  # negative control: the same connection works without keel's table, so the drop above is it
  systemctl stop keel-firewall.service
  check "control: without keel's table VLAN 10 reaches VLAN 20" in_ns v10 python3 /run/lab-http-get.py http://10.0.20.50:8080/
  systemctl start keel-firewall.service
  in_ns v10 python3 /run/lab-http-get.py http://10.0.20.50:8080/ 5 >/dev/null 2>&1
  equals "and with it again it does not (exit 28)" 28 "$?"
  # the outside: through the uplink, masqueraded (the gateway sees the node's address)
  seen=""
  for _ in $(seq 1 60); do seen=$(in_ns v10 python3 /run/lab-http-get.py http://10.0.2.2:8081/ 5 2>/dev/null) && break; sleep 3; done
  equals "VLAN 10 reaches the outside (10.0.2.2:8081 beyond the uplink), masqueraded as" 10.0.2.15 "$seen"
  # Proxmox's web UI port (a listener stands in for pveproxy): the admin VPN only
  check "a listener on the node's :8006, every address (stands in for pveproxy)" http_server - 0.0.0.0 8006
  check "8006 from the admin VPN (10.10.0.5)" in_ns adm python3 /run/lab-http-get.py http://10.10.0.1:8006/
  in_ns v10 python3 /run/lab-http-get.py http://10.0.10.1:8006/ 5 >/dev/null 2>&1
  equals "8006 from VLAN 10 (not an admin source): dropped, timed out (exit 28)" 28 "$?"
  # metrics from the monitoring VLAN (allowed) and from VLAN 10 (not)
  check "metrics from VLAN 30 (Prometheus's VLAN): 192.168.100.1:9100" in_ns v30 python3 /run/lab-http-get.py http://192.168.100.1:9100/metrics
  in_ns v10 python3 /run/lab-http-get.py http://192.168.100.1:9100/metrics 5 >/dev/null 2>&1
  equals "no metrics from VLAN 10: dropped (exit 28)" 28 "$?"

  # fail2ban: three refused logins from VLAN 10 ban its address (sshd jail, nftables), VLAN 20
  # still gets in, and the ban lifts after the jail's bantime (45 s in the lab profile)
  for _ in $(seq 1 60); do fail2ban-client status sshd >/dev/null 2>&1 && break; sleep 2; done
  check "fail2ban's jails: sshd and proxmox" sh -c "fail2ban-client status | grep 'Jail list' | grep -q 'proxmox, sshd'"
  for _ in 1 2 3; do failed_login v10 10.0.10.1; sleep 1; done
  banned=no
  for _ in $(seq 1 30); do fail2ban-client status sshd | grep -q 'Banned IP list:.*10\.0\.10\.50' && { banned=yes; break; }; sleep 2; done
  equals "three refused logins from 10.0.10.50: banned" yes "$banned"
  fail2ban-client status sshd | sed 's/^/      /'
  check "banned: 10.0.10.50 cannot connect to :22" sh -c "! ip netns exec v10 timeout 5 bash -c '</dev/tcp/10.0.10.1/22'"
  check "the ban is its own: VLAN 20 still connects to :22" tcp_open v20 10.0.20.1 22
  lifted=no
  for _ in $(seq 1 60); do tcp_open v10 10.0.10.1 22 && { lifted=yes; break; }; sleep 3; done
  equals "the ban lifts (bantime 45 s)" yes "$lifted"
  # `ufw limit 22/tcp`: more than 6 new connections in 30 s from one address are dropped (a
  # bucket of 6, refilled at one per 5 s: the 7th right after the 6th finds it empty)
  opened=0
  for _ in $(seq 1 6); do tcp_open v30 10.0.30.1 22 && opened=$((opened + 1)); done
  equals "SSH rate limit: 6 connections at once from one address open" 6 "$opened"
  check "the 7th is dropped" sh -c "! ip netns exec v30 timeout 1 bash -c '</dev/tcp/10.0.30.1/22'"

  for ns in v10 v20 v30 adm; do ip netns pids "$ns" | xargs -r kill 2>/dev/null; ip netns del "$ns"; done
  ip addr del 10.10.0.1/24 dev vmbr0.40
  pkill -f 'http.server 8006' 2>/dev/null
}
