//! The day-one node's own protection and services: the host firewall, fail2ban, metrics and the
//! services keel keeps closed. Raw TOML shapes, the validated model and their checks.
//!
//! Every section is optional: a profile without `[firewall]` gets no firewall from keel (the
//! seed profiles have all of them, with the values of the operator's write-up).

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::validate::Problems;

// ---------------------------------------------------------------- raw TOML

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawFirewall {
    /// Routed traffic between two guest segments (vmbr0's untagged network and each VLAN) and
    /// from guests into the cluster network is dropped unless a `guest-allow` entry lets it.
    #[serde(default = "yes")]
    pub isolate_guest_vlans: bool,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    #[serde(default)]
    pub guest_allow: Vec<RawGuestAllow>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawRule {
    pub ports: String,
    pub protocol: String,
    /// Empty: from anywhere.
    #[serde(default)]
    pub sources: Vec<String>,
    /// "N/Ss": more than N new connections in S seconds from one address are dropped (`ufw limit`
    /// is "6/30s").
    #[serde(default)]
    pub limit: Option<String>,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawGuestAllow {
    /// A VLAN id of the guest bridge, or 0 for its untagged network.
    pub from_vlan: u32,
    pub to_vlan: u32,
    pub ports: String,
    pub protocol: String,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawFail2ban {
    pub bantime: u32,
    pub findtime: u32,
    pub maxretry: u32,
    /// Never banned (fail2ban's own 127.0.0.1/8 and ::1 are added).
    #[serde(default)]
    pub ignore_ip: Vec<String>,
    pub jails: Vec<RawJail>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawJail {
    pub name: String,
    pub ports: String,
    #[serde(default)]
    pub maxretry: Option<u32>,
    #[serde(default)]
    pub bantime: Option<u32>,
    /// A filter of keel's (filter.d/keel-NAME.conf); without it the jail uses fail2ban's filter
    /// of its name (only `sshd` is accepted).
    #[serde(default)]
    pub failregex: Option<String>,
    /// With `failregex`: the journal entries it reads (journalctl match syntax).
    #[serde(default)]
    pub journalmatch: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawMetrics {
    /// address:port of prometheus-node-exporter (one of the node's own addresses).
    pub node_exporter: String,
    /// address:port of a second node exporter with only its ZFS collector.
    #[serde(default)]
    pub zfs_exporter: Option<String>,
    /// Who may scrape them (the firewall opens both ports to these networks only).
    pub allow_from: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawServices {
    /// rpcbind (port 111) runs only when true; otherwise it is masked.
    #[serde(default)]
    pub rpcbind: bool,
}

// ---------------------------------------------------------------- model

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    Tcp,
    Udp,
    /// Both TCP and UDP (`ufw allow ... port N` without a protocol).
    Any,
}

impl Protocol {
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Protocol::Tcp => &["tcp"],
            Protocol::Udp => &["udp"],
            Protocol::Any => &["tcp", "udp"],
        }
    }
}

/// One port or an inclusive range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ports {
    pub first: u16,
    pub last: u16,
}

impl std::fmt::Display for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last { write!(f, "{}", self.first) } else { write!(f, "{}-{}", self.first, self.last) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub connections: u32,
    pub seconds: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub ports: Vec<Ports>,
    pub protocol: Protocol,
    /// Empty: from anywhere.
    pub sources: Vec<IpNet>,
    pub limit: Option<RateLimit>,
    pub comment: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GuestAllow {
    /// 0: the guest bridge's untagged network.
    pub from_vlan: u16,
    pub to_vlan: u16,
    pub ports: Vec<Ports>,
    pub protocol: Protocol,
    pub comment: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Firewall {
    pub isolate_guest_vlans: bool,
    pub rules: Vec<Rule>,
    pub guest_allow: Vec<GuestAllow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Jail {
    pub name: String,
    pub ports: Vec<Ports>,
    pub maxretry: Option<u32>,
    pub bantime: Option<u32>,
    pub failregex: Option<String>,
    pub journalmatch: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fail2ban {
    pub bantime: u32,
    pub findtime: u32,
    pub maxretry: u32,
    pub ignore_ip: Vec<IpNet>,
    pub jails: Vec<Jail>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub node_exporter: std::net::SocketAddr,
    pub zfs_exporter: Option<std::net::SocketAddr>,
    pub allow_from: Vec<IpNet>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Services {
    pub rpcbind: bool,
}

/// fail2ban's filters keel uses by name (shipped with Debian's fail2ban).
pub const SHIPPED_FILTERS: &[&str] = &["sshd"];

// ---------------------------------------------------------------- checks

/// "22", "5405-5412", "8080,9113": ports and ranges, comma-separated.
fn ports(p: &mut Problems, field: &str, text: &str) -> Vec<Ports> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
            (Ok(first), Ok(last)) if first >= 1 && first <= last => out.push(Ports { first, last }),
            _ => {
                p.err(field, format!("\"{part}\" is not a port or a range"), "write ports 1-65535 as \"22\", \"60000-60050\" or \"8080,9113\"");
                return Vec::new();
            }
        }
    }
    out
}

fn protocol(p: &mut Problems, field: &str, text: &str) -> Protocol {
    match text {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "any" => Protocol::Any,
        _ => {
            p.err(field, format!("\"{text}\" is not a protocol"), "use tcp, udp or any (both)");
            Protocol::Tcp
        }
    }
}

fn nets(p: &mut Problems, field: &str, list: &[String]) -> Vec<IpNet> {
    let mut out = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let parsed = s.parse::<IpNet>().or_else(|_| s.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(n) => out.push(n.trunc()),
            Err(_) => p.err(format!("{field}[{i}]"), format!("\"{s}\" is not an address or network"), "write an address or a network with its prefix, such as \"10.10.0.0/24\""),
        }
    }
    out
}

fn limit(p: &mut Problems, field: &str, text: &str) -> Option<RateLimit> {
    let parsed = text.split_once('/').and_then(|(n, s)| Some((n.parse::<u32>().ok()?, s.strip_suffix('s')?.parse::<u32>().ok()?)));
    match parsed {
        // nft counts a rate per hour at the finest that keeps the ufw figure exact
        Some((connections, seconds)) if connections >= 1 && seconds >= 1 && 3600 % seconds == 0 => Some(RateLimit { connections, seconds }),
        _ => {
            p.err(field, format!("\"{text}\" is not a connection limit"), "write N/Ss, such as \"6/30s\" (ufw limit: 6 new connections in 30 seconds); S must divide 3600");
            None
        }
    }
}

/// The profile's own addresses a listener may bind to.
pub(super) struct OwnAddresses {
    pub addresses: Vec<IpAddr>,
    pub vlans: BTreeSet<u16>,
    pub has_guest_bridge: bool,
    pub cluster_net: ipnet::Ipv4Net,
}

pub(super) fn firewall(p: &mut Problems, raw: &RawFirewall, own: &OwnAddresses) -> Firewall {
    let mut rules = Vec::new();
    for (i, r) in raw.rules.iter().enumerate() {
        let f = |k: &str| format!("firewall.rules[{i}].{k}");
        rules.push(Rule {
            ports: ports(p, &f("ports"), &r.ports),
            protocol: protocol(p, &f("protocol"), &r.protocol),
            sources: nets(p, &f("sources"), &r.sources),
            limit: r.limit.as_deref().and_then(|l| limit(p, &f("limit"), l)),
            comment: one_line(p, &f("comment"), &r.comment),
        });
    }
    let mut guest_allow = Vec::new();
    for (i, a) in raw.guest_allow.iter().enumerate() {
        let f = |k: &str| format!("firewall.guest-allow[{i}].{k}");
        for (k, v) in [("from-vlan", a.from_vlan), ("to-vlan", a.to_vlan)] {
            if v != 0 && !own.vlans.contains(&(v as u16)) {
                p.err(f(k), format!("VLAN {v} is not a VLAN of the guest bridge"), "use a VLAN id listed under [[network.guest-bridge.vlans]], or 0 for the bridge's untagged network");
            }
        }
        if a.from_vlan == a.to_vlan {
            p.err(f("to-vlan"), "from-vlan and to-vlan are the same segment", "traffic inside one VLAN is bridged, not routed: it needs no allow");
        }
        guest_allow.push(GuestAllow {
            from_vlan: a.from_vlan as u16,
            to_vlan: a.to_vlan as u16,
            ports: ports(p, &f("ports"), &a.ports),
            protocol: protocol(p, &f("protocol"), &a.protocol),
            comment: one_line(p, &f("comment"), &a.comment),
        });
    }
    if !own.has_guest_bridge && raw.isolate_guest_vlans {
        p.err("firewall.isolate-guest-vlans", "the profile has no guest bridge to isolate", "remove the key");
    }
    // the operator's way in: SSH must stay open to someone outside the cluster network (the
    // nodes cannot be reached from there)
    let outside = |n: &IpNet| !matches!(n, IpNet::V4(v4) if own.cluster_net.contains(v4));
    let ssh_open = rules.iter().any(|r| {
        r.protocol != Protocol::Udp && r.ports.iter().any(|pr| pr.first <= 22 && 22 <= pr.last) && (r.sources.is_empty() || r.sources.iter().any(outside))
    });
    if !ssh_open {
        p.err("firewall.rules", "no rule lets SSH (port 22) in from outside the cluster network: the node would lock its operator out", "add { ports = \"22\", protocol = \"tcp\", limit = \"6/30s\" } (from anywhere, as the seed's `ufw limit 22/tcp`)");
    }
    Firewall { isolate_guest_vlans: raw.isolate_guest_vlans, rules, guest_allow }
}

/// A comment lands in a config file's line: one line, no quote that would end it.
fn one_line(p: &mut Problems, field: &str, text: &str) -> String {
    if text.contains(['\n', '"', '\\']) {
        p.err(field, "the comment has a line break, a quote or a backslash", "write one plain line");
    }
    text.to_string()
}

pub(super) fn fail2ban(p: &mut Problems, raw: &RawFail2ban) -> Fail2ban {
    for (k, v) in [("bantime", raw.bantime), ("findtime", raw.findtime), ("maxretry", raw.maxretry)] {
        if v == 0 {
            p.err(format!("fail2ban.{k}"), "0 is not allowed", "the seed's values: bantime 3600, findtime 600, maxretry 3");
        }
    }
    let mut jails = Vec::new();
    let mut names = BTreeSet::new();
    for (i, j) in raw.jails.iter().enumerate() {
        let f = |k: &str| format!("fail2ban.jails[{i}].{k}");
        if j.name.is_empty() || !j.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            p.err(f("name"), format!("\"{}\" is not a jail name", j.name), "lower-case letters, digits and '-'");
        }
        if !names.insert(j.name.clone()) {
            p.err(f("name"), format!("jail \"{}\" is listed twice", j.name), "list each jail once");
        }
        match (&j.failregex, &j.journalmatch) {
            (None, None) if !SHIPPED_FILTERS.contains(&j.name.as_str()) => p.err(
                f("failregex"),
                format!("jail \"{}\" has no failregex and fail2ban ships no filter keel uses under that name", j.name),
                format!("add failregex (with <HOST>) and journalmatch, or use one of: {}", SHIPPED_FILTERS.join(", ")),
            ),
            (None, Some(_)) => p.err(f("journalmatch"), "journalmatch without failregex", "journalmatch belongs to keel's own filter: add failregex"),
            (Some(re), jm) => {
                if !re.contains("<HOST>") {
                    p.err(f("failregex"), "the expression has no <HOST>", "fail2ban bans the address it finds at <HOST>, such as 'rhost=<HOST>'");
                }
                if re.contains('\n') {
                    p.err(f("failregex"), "more than one line", "one expression per jail");
                }
                if jm.is_none() {
                    p.err(f("journalmatch"), "missing: the jails read the journal (Debian 12 has no /var/log/daemon.log)", "add the unit the lines come from, such as \"_SYSTEMD_UNIT=pvedaemon.service\"");
                }
            }
            _ => {}
        }
        for (k, v) in [("maxretry", j.maxretry), ("bantime", j.bantime)] {
            if v == Some(0) {
                p.err(f(k), "0 is not allowed", "leave it out to use [fail2ban]'s value");
            }
        }
        jails.push(Jail {
            name: j.name.clone(),
            ports: ports(p, &f("ports"), &j.ports),
            maxretry: j.maxretry,
            bantime: j.bantime,
            failregex: j.failregex.clone(),
            journalmatch: j.journalmatch.clone(),
        });
    }
    if jails.is_empty() {
        p.err("fail2ban.jails", "no jail", "the seed's jails are sshd and proxmox");
    }
    Fail2ban { bantime: raw.bantime, findtime: raw.findtime, maxretry: raw.maxretry, ignore_ip: nets(p, "fail2ban.ignore-ip", &raw.ignore_ip), jails }
}

pub(super) fn metrics(p: &mut Problems, raw: &RawMetrics, own: &OwnAddresses) -> Metrics {
    let mut addr = |field: &str, text: &str| -> Option<std::net::SocketAddr> {
        match text.parse::<std::net::SocketAddr>() {
            Ok(a) if !own.addresses.contains(&a.ip()) => {
                p.err(field, format!("{} is not one of this node's addresses", a.ip()), format!("listen on the cluster address (one of: {})", own.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")));
                None
            }
            Ok(a) => Some(a),
            Err(_) => {
                p.err(field, format!("\"{text}\" is not address:port"), "write it as \"192.168.100.1:9100\"");
                None
            }
        }
    };
    let node_exporter = addr("metrics.node-exporter", &raw.node_exporter);
    let zfs_exporter = raw.zfs_exporter.as_deref().and_then(|z| addr("metrics.zfs-exporter", z));
    if let (Some(a), Some(b)) = (node_exporter, zfs_exporter) {
        if a.port() == b.port() {
            p.err("metrics.zfs-exporter", "the same port as node-exporter", "the seed scrapes ZFS metrics on 9134");
        }
    }
    if raw.allow_from.is_empty() {
        p.err("metrics.allow-from", "nobody may scrape", "list Prometheus's networks, such as the cluster network and the monitoring VLAN");
    }
    Metrics {
        node_exporter: node_exporter.unwrap_or_else(|| ([0, 0, 0, 0], 0).into()),
        zfs_exporter,
        allow_from: nets(p, "metrics.allow-from", &raw.allow_from),
    }
}

#[cfg(test)]
mod tests {
    use crate::profile::tests::seed_with;
    use crate::profile::Profile;
    use crate::source::SourceFile;


    /// Each mistake is refused at its field, with what to do.
    #[test]
    fn day_one_sections_are_checked_at_their_fields() {
        let p = seed_with("", "").unwrap();
        let f = p.firewall.as_ref().unwrap();
        assert_eq!(f.rules.len(), 5);
        assert_eq!(f.rules[1].limit, Some(super::RateLimit { connections: 6, seconds: 30 }));
        assert_eq!(p.fail2ban.as_ref().unwrap().jails.len(), 2);
        assert_eq!(p.zfs.arc_max_bytes(), Some(6420 * 1024 * 1024));
        for (from, to, field, says) in [
            ("ports = \"22\"\nprotocol = \"tcp\"\nlimit", "ports = \"2222\"\nprotocol = \"tcp\"\nlimit", "firewall.rules", "lock its operator out"),
            ("ports = \"22,8006,60000-60050\"", "ports = \"22,8006,60050-60000\"", "firewall.rules[0].ports", "not a port or a range"),
            ("limit = \"6/30s\"", "limit = \"6/7s\"", "firewall.rules[1].limit", "S must divide 3600"),
            ("sources = [\"10.10.0.0/24\"]", "sources = [\"10.10.0.0/33\"]", "firewall.rules[2].sources[0]", "not an address or network"),
            ("protocol = \"any\"", "protocol = \"sctp\"", "firewall.rules[3].protocol", "use tcp, udp or any"),
            ("from-vlan = 30", "from-vlan = 50", "firewall.guest-allow[0].from-vlan", "VLAN 50 is not a VLAN"),
            ("failregex = 'pvedaemon\\[.*authentication failure; rhost=<HOST>'\njournalmatch = \"_SYSTEMD_UNIT=pvedaemon.service\"\n", "", "fail2ban.jails[1].failregex", "ships no filter"),
            ("rhost=<HOST>'", "rhost=HOST'", "fail2ban.jails[1].failregex", "no <HOST>"),
            ("journalmatch = \"_SYSTEMD_UNIT=pvedaemon.service\"\n", "", "fail2ban.jails[1].journalmatch", "Debian 12 has no /var/log/daemon.log"),
            ("node-exporter = \"192.168.100.1:9100\"", "node-exporter = \"192.168.100.7:9100\"", "metrics.node-exporter", "not one of this node's addresses"),
            ("zfs-exporter = \"192.168.100.1:9134\"", "zfs-exporter = \"192.168.100.1:9100\"", "metrics.zfs-exporter", "the same port"),
            ("arc-max = \"6420MiB\"", "arc-max = \"32MiB\"", "zfs.arc-max", "below OpenZFS's minimum"),
        ] {
            let e = seed_with(from, to).expect_err(field);
            assert!(e.contains(&format!("{field}:")) && e.contains(says), "{field}: {e}");
        }
        // fail2ban bans through the firewall: not without it
        let mut src = SourceFile::read(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/pve-node-01.toml")).unwrap();
        let start = src.text.find("[firewall]").unwrap();
        let end = src.text.find("[fail2ban]").unwrap();
        src.text.replace_range(start..end, "");
        let e = Profile::from_source(&src).unwrap_err().to_string();
        assert!(e.contains("fail2ban: fail2ban bans through keel's firewall"), "{e}");
    }
}
