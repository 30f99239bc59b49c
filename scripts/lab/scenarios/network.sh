# The rendered network on a real kernel: the .link file renames the uplink to nic0, ifupdown2
# applies /etc/network/interfaces, vmbr0 comes up VLAN-aware with VLANs 10/20/30/40 and their
# gateways, vmbr1 rides the vSwitch VLAN 4000 with MTU 1400, and the other guest (node 2) on the
# same link answers on 192.168.100.x. keel.node=1|2 on the kernel command line picks the node.
. ./scenarios/lib.sh
node=$(sed -n 's/.*keel\.node=\([0-9]\).*/\1/p' /proc/cmdline)
[ -n "$node" ] || node=1
profile=profiles/lab-node-0$node.toml
./keel render --profile $profile --out /tmp/r >/dev/null
mkdir -p /etc/systemd/network
cp /tmp/r/etc/systemd/network/10-keel-nic0.link /etc/systemd/network/
udevadm control --reload
nic=$(ls /sys/class/net | grep -v '^lo$' | head -1)
ip link set "$nic" down
# under load udev can be slow to get to the event: wait for the new name, trigger again if needed
for _ in 1 2 3; do
  udevadm trigger --action=add --subsystem-match=net --sysname-match="$nic"
  udevadm settle --timeout=60
  for _ in $(seq 1 20); do [ -e /sys/class/net/nic0 ] && break; sleep 0.5; done
  [ -e /sys/class/net/nic0 ] && break
done
check "the .link file renamed $nic to nic0 (matched by MAC)" ip link show nic0
cp /tmp/r/etc/network/interfaces /etc/network/interfaces
mkdir -p /run/network # ifupdown2 keeps its lock and state there (networking.service makes it)
ifup -a >/tmp/ifup.txt 2>&1
equals "ifup -a exit code" 0 "$?"
cat /tmp/ifup.txt
ip -d link show vmbr0 >/tmp/vmbr0.txt
check "vmbr0 is VLAN-aware" grep -q "vlan_filtering 1" /tmp/vmbr0.txt
for vid in 10 20 30 40; do
  check "vmbr0 carries VLAN $vid" sh -c "bridge vlan show dev vmbr0 | grep -qw $vid"
  check "gateway 10.0.$vid.1/24 on vmbr0.$vid" sh -c "ip -4 addr show vmbr0.$vid | grep -q 'inet 10.0.$vid.1/24'"
done
# the uplink as on Hetzner: a /32 whose gateway is the point-to-point peer, the default route via it
check "nic0 has 10.0.2.1$((4 + node))/32 with peer 10.0.2.2" sh -c "ip -4 addr show nic0 | grep -q 'inet 10.0.2.1$((4 + node)) peer 10.0.2.2/32'"
check "the default route goes via 10.0.2.2 on nic0" sh -c "ip -4 route show default | grep -q 'default via 10.0.2.2 dev nic0'"
check "nic0 has its IPv6 /64" sh -c "ip -6 addr show nic0 | grep -q 'inet6 fec0::1$((4 + node))/64'"
check "vmbr0 has 10.0.0.1/24" sh -c "ip -4 addr show vmbr0 | grep -q 'inet 10.0.0.1/24'"
check "vSwitch VLAN nic0.4000" sh -c "ip -d link show nic0.4000 | grep -q 'vlan protocol 802.1Q id 4000'"
equals "nic0.4000 MTU" 1400 "$(cat /sys/class/net/nic0.4000/mtu)"
equals "vmbr1 MTU" 1400 "$(cat /sys/class/net/vmbr1/mtu)"
check "vmbr1 has 192.168.100.$node/24" sh -c "ip -4 addr show vmbr1 | grep -q 'inet 192.168.100.$node/24'"
check "guests are masqueraded out of nic0" sh -c "iptables -t nat -S POSTROUTING | grep -q -- '-s 10.0.10.0/24 -o nic0 -j MASQUERADE'"
check "guests behind Proxmox's firewall bridges get their own conntrack zone" sh -c "iptables -t raw -S PREROUTING | grep -q -- '-i fwbr+ -j CT --zone 1'"
check "forwarding on" test "$(cat /proc/sys/net/ipv4/ip_forward)" = 1
peer=192.168.100.$((3 - node))
for _ in $(seq 1 240); do ping -c 1 -W 1 "$peer" >/dev/null 2>&1 && break; sleep 0.5; done
check "node $node reaches $peer over vmbr1 (vSwitch VLAN 4000)" ping -c 3 -W 2 "$peer"
check "1372-byte frames pass unfragmented (MTU 1400)" ping -c 1 -W 2 -M do -s 1372 "$peer"
sleep 20 # let the other guest finish its own checks
finish
