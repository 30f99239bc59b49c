//! The host firewall: keel's own nftables table `inet keel` (`/etc/keel/firewall.nft`), loaded
//! by `keel-firewall.service` before the network comes up.
//!
//! Why a table of keel's own and not UFW (the seed's tool) or Proxmox VE's firewall: UFW and
//! pve-firewall both own the whole iptables ruleset and rewrite it, so each would have to be
//! the only firewall on the node; Proxmox's is configured in /etc/pve (the cluster file system,
//! not there before the cluster forms, so not at the first boot) and is off by default. A table
//! of its own is loaded and replaced atomically without touching anybody else's: Proxmox's
//! firewall (iptables-nft or proxmox-firewall's nftables tables), fail2ban's `inet f2b-table`,
//! the masquerade rules ifupdown2 adds. nftables runs every base chain of a hook: a packet gets
//! in only when every table accepts it, so turning Proxmox's firewall on later narrows, never
//! widens, what this table lets in. Masquerade and its conntrack zones stay in
//! /etc/network/interfaces as Proxmox's admin guide writes them.

use std::fmt::Write;

use ipnet::IpNet;

use crate::profile::host::{Ports, Protocol, Rule};
use crate::profile::{Firewall, Profile};

pub const RULES_PATH: &str = "/etc/keel/firewall.nft";
pub const UNIT: &str = "keel-firewall.service";
pub const UNIT_PATH: &str = "/etc/systemd/system/keel-firewall.service";
pub const TABLE: &str = "keel";

fn port_set(ports: &[Ports]) -> String {
    if ports.len() == 1 {
        ports[0].to_string()
    } else {
        format!("{{ {} }}", ports.iter().map(Ports::to_string).collect::<Vec<_>>().join(", "))
    }
}

/// `tcp dport 22`, `udp dport 5405`, or for both `meta l4proto { tcp, udp } th dport 5405`.
fn match_ports(protocol: Protocol, ports: &[Ports]) -> String {
    match protocol {
        Protocol::Any => format!("meta l4proto {{ tcp, udp }} th dport {}", port_set(ports)),
        p => format!("{} dport {}", p.names()[0], port_set(ports)),
    }
}

/// The source matches of a rule: none (anywhere), or one per address family.
fn source_matches(sources: &[IpNet]) -> Vec<String> {
    if sources.is_empty() {
        return vec![String::new()];
    }
    let mut out = Vec::new();
    for (family, nets) in [("ip", sources.iter().filter(|n| matches!(n, IpNet::V4(_))).collect::<Vec<_>>()), ("ip6", sources.iter().filter(|n| matches!(n, IpNet::V6(_))).collect())] {
        match nets.len() {
            0 => {}
            1 => out.push(format!("{family} saddr {} ", nets[0])),
            _ => out.push(format!("{family} saddr {{ {} }} ", nets.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", "))),
        }
    }
    out
}

fn comment(text: &str) -> String {
    if text.is_empty() { String::new() } else { format!(" comment \"{text}\"") }
}

/// The guest segments: the bridge's untagged network and each VLAN's interface.
fn segment(p: &Profile, vlan: u16) -> String {
    let b = &p.network.guest_bridge.name;
    if vlan == 0 { b.clone() } else { format!("{b}.{vlan}") }
}

fn rule_lines(out: &mut String, i: usize, r: &Rule) {
    let what = match_ports(r.protocol, &r.ports);
    if let Some(l) = r.limit {
        // `ufw limit`: more than N new connections in S seconds from one address are dropped;
        // a per-address token bucket of N, refilled at N per S seconds
        let per_hour = l.connections * (3600 / l.seconds);
        for (family, saddr) in [("4", "ip"), ("6", "ip6")] {
            let _ = writeln!(out, "\t\t{what} ct state new add @limit{family}_{i} {{ {saddr} saddr limit rate over {per_hour}/hour burst {} packets }} drop", l.connections);
        }
    }
    for src in source_matches(&r.sources) {
        let _ = writeln!(out, "\t\t{src}{what} accept{}", comment(&r.comment));
    }
}

/// The rules file: the table replaced as a whole (created empty first so that `delete` never
/// fails), nothing outside it touched.
pub fn render(p: &Profile, f: &Firewall) -> String {
    let mut out = String::from("#!/usr/sbin/nft -f\n");
    out.push_str(&super::header(p, &format!("keel's host firewall: the nftables table inet {TABLE} (loaded by {UNIT})")));
    out.push_str("# Other tables (Proxmox VE's firewall, fail2ban's, iptables' NAT) are not touched; a packet\n# must pass every table's input chain.\n\n");
    let _ = writeln!(out, "table inet {TABLE}\ndelete table inet {TABLE}\n\ntable inet {TABLE} {{");
    for (i, r) in f.rules.iter().enumerate() {
        if let Some(l) = r.limit {
            for (family, kind) in [("4", "ipv4_addr"), ("6", "ipv6_addr")] {
                let _ = writeln!(out, "\tset limit{family}_{i} {{\n\t\ttype {kind}\n\t\tflags dynamic\n\t\ttimeout {}s\n\t}}", l.seconds);
            }
        }
    }
    out.push_str("\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n");
    out.push_str("\t\tiif \"lo\" accept\n\t\tct state established,related accept\n\t\tct state invalid drop\n");
    out.push_str("\t\t# ping, path MTU discovery, IPv6 neighbour discovery\n\t\tmeta l4proto { icmp, ipv6-icmp } accept\n");
    for (i, r) in f.rules.iter().enumerate() {
        rule_lines(&mut out, i, r);
    }
    if let Some(m) = &p.metrics {
        let mut ports = vec![Ports { first: m.node_exporter.port(), last: m.node_exporter.port() }];
        ports.extend(m.zfs_exporter.map(|z| Ports { first: z.port(), last: z.port() }));
        rule_lines(&mut out, usize::MAX, &Rule { ports, protocol: Protocol::Tcp, sources: m.allow_from.clone(), limit: None, comment: "metrics: node exporter and ZFS metrics ([metrics] allow-from)".into() });
    }
    out.push_str("\t}\n");

    out.push_str("\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n");
    if f.isolate_guest_vlans {
        let g = &p.network.guest_bridge;
        let mut segments = vec![0u16];
        segments.extend(g.vlans.iter().map(|v| v.id));
        out.push_str("\t\tct state established,related accept\n");
        for a in &f.guest_allow {
            let _ = writeln!(out, "\t\tiifname \"{}\" oifname \"{}\" {} accept{}", segment(p, a.from_vlan), segment(p, a.to_vlan), match_ports(a.protocol, &a.ports), comment(&a.comment));
        }
        let _ = writeln!(out, "\t\t# guest segments reach the outside (masqueraded) and nothing of each other or the cluster network");
        for &s in &segments {
            let mut others: Vec<String> = segments.iter().filter(|&&o| o != s).map(|&o| format!("\"{}\"", segment(p, o))).collect();
            others.push(format!("\"{}\"", p.network.cluster_bridge.name));
            let _ = writeln!(out, "\t\tiifname \"{}\" oifname {{ {} }} drop", segment(p, s), others.join(", "));
        }
    }
    out.push_str("\t}\n}\n");
    out
}

/// Loads the table before any interface comes up (as Debian's nftables.service orders itself),
/// again on `systemctl reload`; stopping it removes the table. After nftables.service, should
/// an operator enable it: Debian's /etc/nftables.conf starts with `flush ruleset`.
pub fn unit(p: &Profile) -> String {
    format!(
        "{}\n[Unit]\nDescription=keel host firewall (nftables table inet {TABLE} from {RULES_PATH})\nDocumentation=file:{RULES_PATH}\nWants=network-pre.target\nBefore=network-pre.target shutdown.target\nAfter=nftables.service\nConflicts=shutdown.target\nDefaultDependencies=no\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/usr/sbin/nft -f {RULES_PATH}\nExecReload=/usr/sbin/nft -f {RULES_PATH}\nExecStop=/usr/sbin/nft delete table inet {TABLE}\n\n[Install]\nWantedBy=sysinit.target\n",
        super::header(p, "keel's host firewall")
    )
}
