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
    let suite = &p.os.suite;
    let line = match p.os.pve_repository {
        PveRepository::NoSubscription => format!("deb http://download.proxmox.com/debian/pve {suite} pve-no-subscription"),
        PveRepository::Enterprise => format!("deb https://enterprise.proxmox.com/debian/pve {suite} pve-enterprise"),
    };
    format!("{}{line}\n", super::header(p, "Proxmox VE 8 package repository"))
}
