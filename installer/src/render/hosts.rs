//! `/etc/hosts` and `/etc/resolv.conf`.

use crate::profile::Profile;

/// The node name resolves to `node.hosts-address` (never loopback: Proxmox VE needs a reachable
/// address); the other cluster nodes resolve to their ring0 addresses so corosync and
/// migration work before DNS does.
pub fn render(p: &Profile) -> String {
    let mut out = super::header(p, "/etc/hosts");
    out.push_str("127.0.0.1\tlocalhost\n");
    out.push_str(&format!("{}\t{} {}\n", p.node.hosts_address, p.node.fqdn(), p.node.hostname));
    for n in p.cluster.nodes.iter().filter(|n| n.name != p.node.hostname) {
        out.push_str(&format!("{}\t{}.{} {}\n", n.ring0_address, n.name, p.node.domain, n.name));
    }
    out.push_str("\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n");
    out
}

pub fn render_resolv(p: &Profile) -> String {
    let mut out = super::header(p, "/etc/resolv.conf");
    out.push_str(&format!("search {}\n", p.node.domain));
    for ns in &p.network.nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    out
}
