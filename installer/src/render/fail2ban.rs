//! fail2ban: `/etc/fail2ban/jail.local` with the profile's jails, on the journal (Debian 12 has
//! no /var/log/auth.log or daemon.log without rsyslog), banning through nftables
//! (`nftables-multiport`: fail2ban's own table `inet f2b-table`, whose input chain runs before
//! keel's), and `filter.d/keel-NAME.conf` for each jail with an expression of its own.

use std::fmt::Write;

use crate::profile::host::{Jail, Ports};
use crate::profile::{Fail2ban, Profile};

pub const JAIL_LOCAL: &str = "/etc/fail2ban/jail.local";

pub fn filter_path(jail: &Jail) -> String {
    format!("/etc/fail2ban/filter.d/keel-{}.conf", jail.name)
}

fn ports(p: &[Ports]) -> String {
    p.iter().map(|r| if r.first == r.last { r.first.to_string() } else { format!("{}:{}", r.first, r.last) }).collect::<Vec<_>>().join(",")
}

pub fn jail_local(p: &Profile, f: &Fail2ban) -> String {
    let mut out = super::header(p, "fail2ban jails (read after jail.conf and jail.d/*.conf)");
    let mut ignore = vec!["127.0.0.1/8".to_string(), "::1".to_string()];
    ignore.extend(f.ignore_ip.iter().map(|n| n.to_string()));
    let _ = writeln!(out, "\n[DEFAULT]\nbantime = {}\nfindtime = {}\nmaxretry = {}", f.bantime, f.findtime, f.maxretry);
    let _ = writeln!(out, "backend = systemd\nbanaction = nftables-multiport\nbanaction_allports = nftables-allports\nignoreip = {}", ignore.join(" "));
    for j in &f.jails {
        let _ = writeln!(out, "\n[{}]\nenabled = true\nport = {}", j.name, ports(&j.ports));
        if j.failregex.is_some() {
            let _ = writeln!(out, "filter = keel-{}", j.name);
        }
        if let Some(m) = j.maxretry {
            let _ = writeln!(out, "maxretry = {m}");
        }
        if let Some(b) = j.bantime {
            let _ = writeln!(out, "bantime = {b}");
        }
    }
    out
}

/// The filter of a jail with its own expression (None for fail2ban's shipped filters).
pub fn filter(p: &Profile, j: &Jail) -> Option<String> {
    let re = j.failregex.as_ref()?;
    let mut out = super::header(p, &format!("fail2ban filter of the jail {}", j.name));
    let _ = writeln!(out, "\n[Definition]\nfailregex = {re}\nignoreregex =\njournalmatch = {}", j.journalmatch.as_deref().unwrap_or(""));
    Some(out)
}
