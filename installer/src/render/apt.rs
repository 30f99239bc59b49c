//! APT sources: Debian 12 and the Proxmox VE 8 repository.

use crate::profile::{Profile, PveRepository};

pub fn render_debian(p: &Profile) -> String {
    let (m, s, suite) = (&p.os.debian_mirror, &p.os.debian_security_mirror, &p.os.suite);
    format!(
        "{}deb {m} {suite} main contrib\ndeb {m} {suite}-updates main contrib\ndeb {s} {suite}-security main contrib\n",
        super::header(p, "/etc/apt/sources.list: Debian")
    )
}

pub fn render_pve(p: &Profile) -> String {
    let (suite, mirror) = (&p.os.suite, p.os.pve_mirror());
    let line = match p.os.pve_repository {
        PveRepository::NoSubscription => format!("deb {mirror} {suite} pve-no-subscription"),
        PveRepository::Enterprise => format!("deb {mirror} {suite} pve-enterprise"),
    };
    format!("{}{line}\n", super::header(p, "Proxmox VE 8 package repository"))
}

/// `Acquire::http::Proxy` for the node, when the profile sets one.
pub fn render_proxy(p: &Profile) -> Option<String> {
    p.os.apt_proxy.as_ref().map(|proxy| format!("{}Acquire::http::Proxy \"{proxy}\";\n", super::header(p, "APT proxy").replace('#', "//")))
}
