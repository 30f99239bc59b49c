//! `/etc/corosync/corosync.conf` for corosync 3 with knet, as in the seed.
//!
//! The seed's excerpt carries corosync-2 `interface` keys (`ringnumber`, `bindnetaddr`,
//! `mcastport`) that knet does not use; the link is written as `linknumber: 0` and the
//! addresses come from the nodelist's `ring0_addr`, as `pvecm` writes it.

use crate::profile::Profile;

pub fn render(p: &Profile) -> String {
    let c = &p.cluster;
    let on_off = |b: bool| if b { "on" } else { "off" };
    let mut out = super::cluster_header("corosync configuration");
    out.push_str("totem {\n");
    out.push_str("  version: 2\n");
    out.push_str(&format!("  cluster_name: {}\n", c.name));
    out.push_str("  config_version: 1\n");
    out.push_str(&format!("  transport: {}\n", c.transport));
    out.push_str(&format!("  secauth: {}\n", on_off(c.secauth)));
    out.push_str(&format!("  crypto_cipher: {}\n", c.crypto_cipher));
    out.push_str(&format!("  crypto_hash: {}\n", c.crypto_hash));
    out.push_str("  ip_version: ipv4\n");
    out.push_str("  link_mode: passive\n");
    out.push_str("  interface {\n    linknumber: 0\n  }\n");
    out.push_str("}\n\nnodelist {\n");
    let mut nodes = c.nodes.clone();
    nodes.sort_by_key(|n| n.id);
    for n in &nodes {
        out.push_str(&format!(
            "  node {{\n    name: {}\n    nodeid: {}\n    quorum_votes: 1\n    ring0_addr: {}\n  }}\n",
            n.name, n.id, n.ring0_address
        ));
    }
    out.push_str("}\n\nquorum {\n  provider: corosync_votequorum\n");
    out.push_str(&format!("  expected_votes: {}\n", nodes.len()));
    if c.two_node {
        out.push_str("  two_node: 1\n");
    }
    out.push_str("}\n\nlogging {\n  to_syslog: yes\n}\n");
    out
}
