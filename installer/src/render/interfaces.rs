//! `/etc/network/interfaces` in ifupdown2 syntax (what Proxmox VE uses).
//!
//! Hetzner filters the switch port by MAC, so guests are never bridged onto the uplink:
//! the public address sits on the uplink itself (point-to-point to the gateway when the
//! profile gives a /32), `vmbr0` is a VLAN-aware bridge with no ports whose addresses are the
//! guests' gateways, and guest traffic is routed and masqueraded out through the uplink.
//! `vmbr1` carries corosync and migration over a vSwitch VLAN on the uplink (or a second NIC).

use std::fmt::Write;

use crate::profile::{ClusterLink, Profile};

use super::{CLUSTER_NIC_IFNAME, UPLINK_IFNAME};

fn masquerade(out: &mut String, subnet: &ipnet::Ipv4Net) {
    let rule = format!("-t nat -A POSTROUTING -s {} -o {UPLINK_IFNAME} -j MASQUERADE", subnet.trunc());
    let _ = writeln!(out, "\tpost-up   iptables {rule}");
    let _ = writeln!(out, "\tpost-down iptables {}", rule.replace(" -A ", " -D "));
}

pub fn render(p: &Profile) -> String {
    let n = &p.network;
    let u = &n.uplink;
    let mut out = super::header(p, "/etc/network/interfaces (ifupdown2)");
    let _ = writeln!(out, "# {UPLINK_IFNAME} is the uplink {}, named by /etc/systemd/network/10-keel-{UPLINK_IFNAME}.link.", u.mac);
    out.push_str("\nauto lo\niface lo inet loopback\n\n");

    let _ = writeln!(out, "auto {UPLINK_IFNAME}\niface {UPLINK_IFNAME} inet static");
    let _ = writeln!(out, "\taddress {}", u.ipv4);
    let _ = writeln!(out, "\tgateway {}", u.ipv4_gateway);
    if u.gateway_is_peer() {
        let _ = writeln!(out, "\tpointopoint {}", u.ipv4_gateway);
    }
    if let (Some(v6), Some(gw6)) = (&u.ipv6, &u.ipv6_gateway) {
        let _ = writeln!(out, "\niface {UPLINK_IFNAME} inet6 static\n\taddress {v6}\n\tgateway {gw6}");
    }

    let g = &n.guest_bridge;
    let _ = writeln!(out, "\n# Guest bridge: VLAN-aware, no ports (routed, not bridged: Hetzner filters MACs).");
    let _ = writeln!(out, "auto {}\niface {} inet static", g.name, g.name);
    let _ = writeln!(out, "\taddress {}", g.address);
    out.push_str("\tbridge-ports none\n\tbridge-stp off\n\tbridge-fd 0\n");
    if !g.vlans.is_empty() {
        out.push_str("\tbridge-vlan-aware yes\n");
        let ids: Vec<String> = g.vlans.iter().map(|v| v.id.to_string()).collect();
        let _ = writeln!(out, "\tbridge-vids {}", ids.join(" "));
    }
    out.push_str("\tpost-up   sysctl -qw net.ipv4.ip_forward=1\n");
    if g.masquerade {
        // Proxmox VE's admin guide (masquerading with the firewall on): guest traffic entering
        // through the firewall bridges (fwbr*) gets a conntrack zone of its own, or the
        // firewall's bridge pass and the routed pass share one entry and replies are dropped
        out.push_str("\tpost-up   iptables -t raw -I PREROUTING -i fwbr+ -j CT --zone 1\n");
        out.push_str("\tpost-down iptables -t raw -D PREROUTING -i fwbr+ -j CT --zone 1\n");
        masquerade(&mut out, &g.address);
    }
    for v in &g.vlans {
        let _ = writeln!(out, "\n# VLAN {} ({}): the guests' gateway.", v.id, v.name);
        let _ = writeln!(out, "auto {}.{}\niface {}.{} inet static", g.name, v.id, g.name, v.id);
        let _ = writeln!(out, "\taddress {}", v.address);
        if g.masquerade {
            masquerade(&mut out, &v.address);
        }
    }

    let c = &n.cluster_bridge;
    let port = match &c.link {
        ClusterLink::Vswitch { vlan } => {
            let port = format!("{UPLINK_IFNAME}.{vlan}");
            let _ = writeln!(out, "\n# Hetzner vSwitch: VLAN {vlan} on the uplink (vSwitch frames allow MTU 1400 at most).");
            let _ = writeln!(out, "auto {port}\niface {port} inet manual\n\tmtu {}", c.mtu);
            port
        }
        ClusterLink::Nic { mac } => {
            let _ = writeln!(out, "\n# Second NIC {mac}, named by /etc/systemd/network/10-keel-{CLUSTER_NIC_IFNAME}.link.");
            let _ = writeln!(out, "auto {CLUSTER_NIC_IFNAME}\niface {CLUSTER_NIC_IFNAME} inet manual\n\tmtu {}", c.mtu);
            CLUSTER_NIC_IFNAME.to_string()
        }
    };
    let _ = writeln!(out, "\n# Cluster bridge: corosync and migration.");
    let _ = writeln!(out, "auto {}\niface {} inet static", c.name, c.name);
    let _ = writeln!(out, "\taddress {}", c.address);
    // The MTU goes on the bridge too: ifupdown2's syntax check says a bridge inherits it from
    // its ports, but the lab shows vmbr1 staying at 1500 without it (scripts/lab, network).
    let _ = writeln!(out, "\tbridge-ports {port}\n\tbridge-stp off\n\tbridge-fd 0\n\tmtu {}", c.mtu);
    out
}
