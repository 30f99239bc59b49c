//! keel-live: the live system keel switches to when the rescue system has no usable ZFS (a
//! Debian kernel with OpenZFS, keel, sshd and the tools, the whole root in memory). This module
//! holds what the rescue hands over, as data: the uplink as the rescue has it (read from
//! `ip -j`), the SSH keys, the live system's own host keys, and the install to run with the
//! consent already given. Pure: parsing and rendering only; `keel` packs it into the small
//! archive appended to keel-live's initramfs and the live system's init reads it back.

use serde::{Deserialize, Serialize};

/// Where the configuration sits in the live system (and in the appended archive).
pub const CONFIG_PATH: &str = "etc/keel-live/config.json";
/// The profile and hardware spec the install uses, copied in.
pub const PROFILE_PATH: &str = "etc/keel-live/profile.toml";
pub const SPEC_PATH: &str = "etc/keel-live/spec.toml";
/// keel itself in the live system; `/init` is a link to it.
pub const KEEL_PATH: &str = "usr/local/sbin/keel";
/// The journal directory of the install in the live system.
pub const JOURNAL_DIR: &str = "/var/lib/keel";
/// Identifies the configuration's JSON shape.
pub const SCHEMA: &str = "keel.live/v2";
/// What the live system's init prints when the install ended (the lab and `keel rebuild` read it);
/// another command's line names it instead (`finished_line`).
pub const FINISHED_LINE: &str = "keel-live: install finished:";
/// What it prints when it is up with the network and sshd (boot-to-ready).
pub const READY_LINE: &str = "keel-live: ready";

/// What to do when the install ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum After {
    /// Restart the machine (after a finished install: into the installed system).
    Reboot,
    /// Power off.
    Poweroff,
    /// Stay up with sshd running, for the operator to look.
    Stay,
}

impl std::str::FromStr for After {
    type Err = String;
    fn from_str(s: &str) -> Result<After, String> {
        match s {
            "reboot" => Ok(After::Reboot),
            "poweroff" => Ok(After::Poweroff),
            "stay" => Ok(After::Stay),
            _ => Err(format!("\"{s}\": use reboot, poweroff or stay")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub schema: String,
    /// The live system's host name while it installs (the node's own, so that prompts say whose).
    pub hostname: String,
    pub uplink: Uplink,
    /// `/etc/resolv.conf` of the rescue: its name servers.
    pub nameservers: Vec<String>,
    /// What keel-live runs: keel's arguments, the command first (`install ...`, `disk replace
    /// ...`), consent included (`--yes --confirm-serials ...`, `--yes` with `--new SERIAL`).
    pub keel: Vec<String>,
    pub after_success: After,
    pub after_failure: After,
}

/// The command of keel's arguments, for messages and file names: `install`, `disk replace`.
pub fn command_name(keel: &[String]) -> String {
    keel.iter().take_while(|a| !a.starts_with('-')).map(String::as_str).collect::<Vec<_>>().join(" ")
}

/// What keel-live prints when the command it ran ended: `FINISHED_LINE` for an install.
pub fn finished_line(keel: &[String]) -> String {
    format!("keel-live: {} finished:", command_name(keel))
}

/// The NIC the rescue reached the network through, found again in the live system by its MAC
/// (the live kernel may name it differently), with the rescue's addresses and routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uplink {
    pub mac: String,
    /// The rescue's name for it (for messages only).
    pub rescue_name: String,
    pub addresses: Vec<Address>,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// `203.0.113.10/32`, `2001:db8::2/64`.
    pub cidr: String,
    /// The point-to-point peer (Hetzner's /32 with the gateway as peer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// `default` or a prefix.
    pub dst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    pub ipv6: bool,
    pub onlink: bool,
}

impl Address {
    /// `ip addr add` arguments after the command (`ADDR [peer PEER] dev IF`).
    pub fn ip_args(&self, dev: &str) -> Vec<String> {
        let mut v = match &self.peer {
            // a peer address: `ip addr add LOCAL peer PEER/LEN`, the prefix on the peer
            Some(p) => {
                let (local, len) = self.cidr.split_once('/').unwrap_or((&self.cidr, "32"));
                vec![local.to_string(), "peer".into(), format!("{p}/{len}")]
            }
            None => vec![self.cidr.clone()],
        };
        v.extend(["dev".into(), dev.to_string()]);
        v
    }
}

impl Address {
    /// The address, its prefix length and the point-to-point peer, parsed (for netlink).
    pub fn parts(&self) -> Result<(std::net::IpAddr, u8, Option<std::net::IpAddr>), String> {
        let (ip, len) = parse_prefix(&self.cidr)?;
        let peer = self.peer.as_deref().map(|p| p.parse().map_err(|_| format!("peer {p:?} of {} is not an IP address", self.cidr))).transpose()?;
        Ok((ip, len, peer))
    }
}

/// `ADDR/LEN` or a bare address (a host: /32 or /128).
fn parse_prefix(text: &str) -> Result<(std::net::IpAddr, u8), String> {
    let (a, l) = text.split_once('/').map(|(a, l)| (a, Some(l))).unwrap_or((text, None));
    let ip: std::net::IpAddr = a.parse().map_err(|_| format!("{text:?} is not an IP address or prefix"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match l {
        Some(l) => l.parse::<u8>().ok().filter(|n| *n <= max).ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
        None => max,
    };
    Ok((ip, len))
}

impl Route {
    /// The destination (None: the default route) and the gateway, parsed (for netlink).
    #[allow(clippy::type_complexity)]
    pub fn parts(&self) -> Result<(Option<(std::net::IpAddr, u8)>, Option<std::net::IpAddr>), String> {
        let dst = if self.dst == "default" { None } else { Some(parse_prefix(&self.dst)?) };
        let via = self.via.as_deref().map(|g| g.parse::<std::net::IpAddr>().map_err(|_| format!("gateway {g:?} of the route to {} is not an IP address", self.dst))).transpose()?;
        if let (Some((d, _)), Some(g)) = (dst, via) {
            if d.is_ipv4() != g.is_ipv4() {
                return Err(format!("the route to {} goes through {g}, of the other IP version", self.dst));
            }
        }
        Ok((dst, via))
    }
}

impl Route {
    /// `ip [-6] route add` arguments after the command.
    pub fn ip_args(&self, dev: &str) -> Vec<String> {
        let mut v = vec![self.dst.clone()];
        if let Some(g) = &self.via {
            v.extend(["via".into(), g.clone()]);
        }
        v.extend(["dev".into(), dev.to_string()]);
        if self.onlink {
            v.push("onlink".into());
        }
        v
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetError {
    #[error("`ip -j` output is not what keel reads: {0}")]
    Parse(String),
    #[error("the rescue system has no default route: keel-live would not know how to reach the network. Configure the uplink (address and default route) first")]
    NoDefaultRoute,
    #[error("the default route leaves through {0}, which has no MAC address keel-live could find it by")]
    NoMac(String),
}

#[derive(Deserialize)]
struct IpLink {
    ifname: String,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    addr_info: Vec<IpAddr>,
}

#[derive(Deserialize)]
struct IpAddr {
    family: String,
    local: String,
    prefixlen: u8,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    scope: String,
}

#[derive(Deserialize)]
struct IpRoute {
    dst: String,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    dev: Option<String>,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    flags: Vec<String>,
}

/// The uplink as the rescue system has it: the NIC of the IPv4 (else IPv6) default route, its
/// MAC, its global addresses and the routes through it that were set by hand (the kernel's own
/// prefix routes come back with the addresses). `addr`, `route4`, `route6` are the JSON of
/// `ip -j addr show`, `ip -j route show`, `ip -j -6 route show`.
pub fn rescue_uplink(addr: &str, route4: &str, route6: &str) -> Result<Uplink, NetError> {
    let links: Vec<IpLink> = serde_json::from_str(addr).map_err(|e| NetError::Parse(format!("ip -j addr: {e}")))?;
    let parse = |text: &str, what: &str| -> Result<Vec<IpRoute>, NetError> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_str(text).map_err(|e| NetError::Parse(format!("{what}: {e}")))
    };
    let (r4, r6) = (parse(route4, "ip -j route")?, parse(route6, "ip -j -6 route")?);
    let dev = r4.iter().chain(r6.iter()).find(|r| r.dst == "default").and_then(|r| r.dev.clone()).ok_or(NetError::NoDefaultRoute)?;
    let link = links.iter().find(|l| l.ifname == dev).ok_or_else(|| NetError::Parse(format!("the default route's device {dev} is not in `ip -j addr`")))?;
    let mac = link.address.clone().filter(|m| m.len() == 17 && m != "00:00:00:00:00:00").ok_or_else(|| NetError::NoMac(dev.clone()))?;
    let addresses = link
        .addr_info
        .iter()
        .filter(|a| a.scope == "global" && (a.family == "inet" || a.family == "inet6"))
        .map(|a| Address { cidr: format!("{}/{}", a.local, a.prefixlen), peer: a.address.clone().filter(|p| p != &a.local) })
        .collect();
    let routes = [(false, &r4), (true, &r6)]
        .into_iter()
        .flat_map(|(ipv6, rs)| rs.iter().map(move |r| (ipv6, r)))
        .filter(|(_, r)| r.dev.as_deref() == Some(dev.as_str()) && r.protocol.as_deref() != Some("kernel") && !r.dst.starts_with("fe80:") && !r.dst.starts_with("ff00:") && r.dst != "multicast")
        .map(|(ipv6, r)| Route { dst: r.dst.clone(), via: r.gateway.clone(), ipv6, onlink: r.flags.iter().any(|f| f == "onlink") })
        .collect::<Vec<_>>();
    // routes to a gateway first (a link route to the gateway before the default through it)
    let (mut direct, defaults): (Vec<Route>, Vec<Route>) = routes.into_iter().partition(|r| r.dst != "default");
    direct.extend(defaults);
    Ok(Uplink { mac: mac.to_ascii_lowercase(), rescue_name: dev, addresses, routes: direct })
}

/// Name servers of a resolv.conf.
pub fn nameservers(resolv_conf: &str) -> Vec<String> {
    resolv_conf.lines().filter_map(|l| l.trim().strip_prefix("nameserver")).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// The live kernel's command line: the rescue's console settings (so its output goes where the
/// rescue's did) and keel's own arguments (a registry link given there: `keel.registry=`,
/// `keel.token=`), then keel-live's.
pub fn kernel_cmdline(rescue_cmdline: &str) -> String {
    let words: Vec<&str> = rescue_cmdline.split_whitespace().collect();
    let mut args: Vec<&str> = words.iter().copied().filter(|a| a.starts_with("console=")).collect();
    if args.is_empty() {
        args = vec!["console=tty0", "console=ttyS0,115200n8"];
    }
    args.extend(words.iter().copied().filter(|a| a.starts_with("keel.") && !a.starts_with("keel.live=")));
    let mut s = args.join(" ");
    // no root=: the initramfs is the root; panic=10: a live system that fails to start restarts
    // (into the rescue again, by the netboot Hetzner's rescue sets)
    s.push_str(" panic=10 keel.live=1");
    s
}

/// keel-live booted by PXE (the registry's iPXE script), with no archive handed over: what
/// its kernel command line says. The install runs unattended: `keel install --unattended`
/// takes the registry and token from the same command line, the profile from the registry, and
/// the consent from the drive serials that profile pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pxe {
    /// The host name while it installs: `keel.node=` when given, else "keel-live" (the
    /// registry's script names no node; the install sets the profile's).
    pub hostname: String,
    /// The registry (`keel.registry=`), for messages.
    pub registry: String,
    /// The NIC iPXE booted from (`BOOTIF=01-aa-bb-..`), brought up by DHCP; None: every NIC.
    pub mac: Option<String>,
    /// keel's arguments: `install ...`.
    pub keel: Vec<String>,
    pub after_success: After,
    pub after_failure: After,
}

/// Reads a PXE boot from the kernel command line: None when it carries no `keel.registry=`
/// (then keel-live was not booted by the registry; its script carries no token, the node
/// enrolls by its hardware). Optional: `keel.until=STEP`,
/// `keel.live-after-success=` (default reboot: into the installed system) and
/// `keel.live-after-failure=` (default stay).
pub fn pxe_from_cmdline(cmdline: &str) -> Result<Option<Pxe>, String> {
    let arg = |key: &str| cmdline.split_whitespace().find_map(|w| w.strip_prefix(key)).filter(|v| !v.is_empty());
    let Some(registry) = arg("keel.registry=") else { return Ok(None) };
    let mac = match arg("BOOTIF=") {
        // pxelinux's and iPXE's form: the hardware type (01: Ethernet), then the MAC with hyphens
        Some(b) => {
            let m = b.strip_prefix("01-").unwrap_or(b).replace('-', ":").to_ascii_lowercase();
            if m.len() != 17 || !m.split(':').all(|x| x.len() == 2 && x.chars().all(|c| c.is_ascii_hexdigit())) {
                return Err(format!("BOOTIF={b} on the kernel command line is not a MAC address (01-aa-bb-cc-dd-ee-ff)"));
            }
            Some(m)
        }
        None => None,
    };
    let after = |key: &str, default: After| -> Result<After, String> { arg(key).map(|v| v.parse().map_err(|e| format!("{key}{v}: {e}"))).unwrap_or(Ok(default)) };
    let mut install: Vec<String> = ["install", "--unattended", "--journal-dir", JOURNAL_DIR, "--progress", "plain"].map(String::from).to_vec();
    if let Some(u) = arg("keel.until=") {
        install.extend(["--until".into(), u.to_string()]);
    }
    Ok(Some(Pxe {
        hostname: arg("keel.node=").unwrap_or("keel-live").to_string(),
        registry: registry.to_string(),
        mac,
        keel: install,
        after_success: after("keel.live-after-success=", After::Reboot)?,
        after_failure: after("keel.live-after-failure=", After::Stay)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: &str = r#"[{"ifindex":1,"ifname":"lo","address":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},
      {"ifindex":2,"ifname":"eth0","address":"A8:A1:59:41:00:01","addr_info":[
        {"family":"inet","local":"203.0.113.10","prefixlen":32,"address":"203.0.113.1","scope":"global","label":"eth0"},
        {"family":"inet6","local":"2001:db8:10:1::2","prefixlen":64,"scope":"global"},
        {"family":"inet6","local":"fe80::aaa1:59ff:fe41:1","prefixlen":64,"scope":"link"}]},
      {"ifindex":3,"ifname":"eth1","address":"a8:a1:59:41:00:02","addr_info":[]}]"#;
    const R4: &str = r#"[{"dst":"default","gateway":"203.0.113.1","dev":"eth0","flags":["onlink"]},{"dst":"203.0.113.1","dev":"eth0","protocol":"kernel","scope":"link","flags":[]}]"#;
    const R6: &str = r#"[{"dst":"2001:db8:10:1::/64","dev":"eth0","protocol":"kernel","flags":[]},{"dst":"fe80::/64","dev":"eth0","protocol":"kernel","flags":[]},{"dst":"default","gateway":"fe80::1","dev":"eth0","metric":1024,"flags":[]}]"#;

    /// Hetzner's form: a /32 with the gateway as point-to-point peer, IPv6 via fe80::1.
    #[test]
    fn the_rescue_uplink_is_read_with_peer_and_routes() {
        let u = rescue_uplink(ADDR, R4, R6).unwrap();
        assert_eq!(u.mac, "a8:a1:59:41:00:01");
        assert_eq!(u.rescue_name, "eth0");
        assert_eq!(u.addresses, [Address { cidr: "203.0.113.10/32".into(), peer: Some("203.0.113.1".into()) }, Address { cidr: "2001:db8:10:1::2/64".into(), peer: None }]);
        assert_eq!(u.routes, [
            Route { dst: "default".into(), via: Some("203.0.113.1".into()), ipv6: false, onlink: true },
            Route { dst: "default".into(), via: Some("fe80::1".into()), ipv6: true, onlink: false },
        ]);
        assert_eq!(u.addresses[0].ip_args("enp0s31f6").join(" "), "203.0.113.10 peer 203.0.113.1/32 dev enp0s31f6");
        assert_eq!(u.addresses[1].ip_args("enp0s31f6").join(" "), "2001:db8:10:1::2/64 dev enp0s31f6");
        assert_eq!(u.routes[0].ip_args("enp0s31f6").join(" "), "default via 203.0.113.1 dev enp0s31f6 onlink");
    }

    /// The lab's rescue: a /24 and a default route; a hand-made link route comes before it.
    #[test]
    fn a_plain_subnet_and_a_link_route() {
        let addr = r#"[{"ifname":"ens3","address":"52:54:00:a4:41:02","addr_info":[{"family":"inet","local":"10.0.2.15","prefixlen":24,"scope":"global"}]}]"#;
        let r4 = r#"[{"dst":"default","gateway":"10.0.2.2","dev":"ens3","flags":[]},{"dst":"10.0.2.0/24","dev":"ens3","protocol":"kernel","scope":"link","prefsrc":"10.0.2.15","flags":[]},{"dst":"192.0.2.1","dev":"ens3","scope":"link","flags":[]}]"#;
        let u = rescue_uplink(addr, r4, "").unwrap();
        assert_eq!(u.addresses, [Address { cidr: "10.0.2.15/24".into(), peer: None }]);
        assert_eq!(u.routes.iter().map(|r| r.ip_args("eth0").join(" ")).collect::<Vec<_>>(), ["192.0.2.1 dev eth0", "default via 10.0.2.2 dev eth0"]);
    }

    #[test]
    fn refusals_say_what_is_missing() {
        assert_eq!(rescue_uplink(ADDR, "[]", "[]").unwrap_err(), NetError::NoDefaultRoute);
        let no_mac = ADDR.replace("A8:A1:59:41:00:01", "00:00:00:00:00:00");
        assert_eq!(rescue_uplink(&no_mac, R4, R6).unwrap_err(), NetError::NoMac("eth0".into()));
        assert!(matches!(rescue_uplink("not json", R4, R6), Err(NetError::Parse(_))));
    }

    #[test]
    fn cmdline_and_resolvers() {
        assert_eq!(kernel_cmdline("BOOT_IMAGE=/vmlinuz root=/dev/vda rw console=ttyS0 quiet"), "console=ttyS0 panic=10 keel.live=1");
        assert_eq!(kernel_cmdline("root=/dev/ram0"), "console=tty0 console=ttyS0,115200n8 panic=10 keel.live=1");
        assert_eq!(
            kernel_cmdline("console=ttyS0 init=/x keel.registry=http://10.0.2.101:8080 keel.token=abc keel.live=1"),
            "console=ttyS0 keel.registry=http://10.0.2.101:8080 keel.token=abc panic=10 keel.live=1"
        );
        assert_eq!(nameservers("# Hetzner\nnameserver 185.12.64.1\nnameserver  185.12.64.2\nsearch x\n"), ["185.12.64.1", "185.12.64.2"]);
    }

    #[test]
    fn the_config_round_trips() {
        let c = Config {
            schema: SCHEMA.into(),
            hostname: "pve-node-01".into(),
            uplink: rescue_uplink(ADDR, R4, R6).unwrap(),
            nameservers: vec!["185.12.64.1".into()],
            keel: vec!["install".into(), "--profile".into(), format!("/{PROFILE_PATH}"), "--yes".into()],
            after_success: After::Reboot,
            after_failure: After::Stay,
        };
        let text = serde_json::to_string_pretty(&c).unwrap();
        assert_eq!(serde_json::from_str::<Config>(&text).unwrap(), c);
        assert!(text.contains("\"after_failure\": \"stay\""), "{text}");
    }

    /// keel-live's last line names the command it ran; an install's is the one `keel rebuild`
    /// and the lab read.
    #[test]
    fn the_finished_line_names_the_command() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(finished_line(&v(&["install", "--profile", "/p", "--yes"])), FINISHED_LINE);
        assert_eq!(finished_line(&v(&["disk", "replace", "--new", "S2", "--yes"])), "keel-live: disk replace finished:");
        assert_eq!(command_name(&v(&["disk", "replace", "--new", "S2"])), "disk replace");
    }

    /// The registry's iPXE script's command line (registry/src/ipxe.rs) as keel-live reads it.
    #[test]
    fn a_pxe_boot_is_read_from_the_command_line() {
        let line = "initrd=initrd.img keel.registry=http://10.0.2.101:8080 console=tty0 console=ttyS0,115200 BOOTIF=01-52-54-00-A4-41-02 keel.until=datasets.datapool keel.live-after-success=poweroff";
        let p = pxe_from_cmdline(line).unwrap().unwrap();
        assert_eq!((p.hostname.as_str(), p.registry.as_str(), p.mac.as_deref()), ("keel-live", "http://10.0.2.101:8080", Some("52:54:00:a4:41:02")));
        let named = pxe_from_cmdline(&format!("{line} keel.node=lab-node-02")).unwrap().unwrap();
        assert_eq!(named.hostname, "lab-node-02");
        assert_eq!(p.keel.join(" "), "install --unattended --journal-dir /var/lib/keel --progress plain --until datasets.datapool");
        assert_eq!((p.after_success, p.after_failure), (After::Poweroff, After::Stay));
        let bare = pxe_from_cmdline("keel.registry=https://r:8443 keel.token=t").unwrap().unwrap();
        assert_eq!((bare.hostname.as_str(), bare.mac, bare.after_success), ("keel-live", None, After::Reboot));
        assert_eq!(bare.keel.join(" "), "install --unattended --journal-dir /var/lib/keel --progress plain");
        // not a PXE boot: no registry link
        assert_eq!(pxe_from_cmdline("console=ttyS0 panic=10 keel.live=1").unwrap(), None);
        assert_eq!(pxe_from_cmdline("keel.registry= keel.token=t").unwrap(), None);
        assert!(pxe_from_cmdline("keel.registry=r keel.token=t BOOTIF=01-52-54").unwrap_err().contains("BOOTIF=01-52-54"));
        assert!(pxe_from_cmdline("keel.registry=r keel.token=t keel.live-after-success=halt").unwrap_err().contains("keel.live-after-success=halt"));
    }

    #[test]
    fn addresses_and_routes_parse_for_netlink() {
        let u = rescue_uplink(ADDR, R4, R6).unwrap();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(u.addresses[0].parts().unwrap(), (ip("203.0.113.10"), 32, Some(ip("203.0.113.1"))));
        assert_eq!(u.addresses[1].parts().unwrap(), (ip("2001:db8:10:1::2"), 64, None));
        assert_eq!(u.routes[0].parts().unwrap(), (None, Some(ip("203.0.113.1"))));
        assert_eq!(u.routes[1].parts().unwrap(), (None, Some(ip("fe80::1"))));
        let host = Route { dst: "192.0.2.1".into(), via: None, ipv6: false, onlink: false };
        assert_eq!(host.parts().unwrap(), (Some((ip("192.0.2.1"), 32)), None));
        let net = Route { dst: "10.0.0.0/8".into(), via: Some("10.0.2.2".into()), ipv6: false, onlink: false };
        assert_eq!(net.parts().unwrap(), (Some((ip("10.0.0.0"), 8)), Some(ip("10.0.2.2"))));
        assert!(Route { dst: "10.0.0.0/33".into(), via: None, ipv6: false, onlink: false }.parts().unwrap_err().contains("0 to 32"));
        assert!(Route { dst: "10.0.0.0/8".into(), via: Some("fe80::1".into()), ipv6: false, onlink: false }.parts().unwrap_err().contains("other IP version"));
        assert!(Address { cidr: "x/24".into(), peer: None }.parts().is_err());
    }
}
