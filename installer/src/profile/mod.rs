//! Node profiles (`profiles/*.toml`): every node-specific fact, validated into a typed model.
//!
//! `raw` is the TOML shape; `validate` checks it and builds [`Profile`], in which every address
//! is parsed, every id is in range and cross-references hold. A [`Profile`] cannot be invalid.

pub mod host;
pub mod openssh;
pub mod storage;
pub mod raw;
mod validate;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;

pub use host::{Fail2ban, Firewall, Metrics, Services};
pub use raw::{Bootloader, PveRepository};
pub use validate::hex as hex_digest;

use crate::size::ByteSize;
use crate::source::{Diagnostic, SourceError, SourceFile};

#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// Path as given, for messages.
    pub path: String,
    /// SHA-256 of the file's bytes: identifies the exact profile a plan or journal came from.
    pub sha256: String,
    pub hardware_spec: Option<String>,
    pub node: Node,
    pub disks: Disks,
    pub zfs: Zfs,
    pub os: Os,
    pub network: Network,
    pub cluster: Cluster,
    pub ssh: Ssh,
    pub users: Vec<User>,
    pub root_ssh_keys: Vec<String>,
    pub registry: Option<Registry>,
    pub robot: Option<Robot>,
    pub firewall: Option<Firewall>,
    pub fail2ban: Option<Fail2ban>,
    pub metrics: Option<Metrics>,
    pub services: Services,
    pub storage: Option<storage::Storage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub hostname: String,
    pub domain: String,
    pub timezone: String,
    /// The address `/etc/hosts` maps the node name to (Proxmox needs a non-loopback one).
    pub hosts_address: IpAddr,
}

impl Node {
    pub fn fqdn(&self) -> String {
        format!("{}.{}", self.hostname, self.domain)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Disks {
    pub count: u32,
    /// Pinned target serials; empty means "the free NVMe drives the spec found".
    pub serials: Vec<String>,
    pub esp_size: ByteSize,
    pub rpool_size: ByteSize,
    pub swap_size: ByteSize,
    pub datapool_min_size: ByteSize,
    pub bios_boot: bool,
    /// Where `serials` is written: file, line number and the line (for messages that say which
    /// line to change when a drive was swapped).
    #[serde(skip)]
    pub serials_line: Option<(String, usize, String)>,
}

/// Pool and dataset properties, read straight from TOML and checked by `validate`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Zfs {
    pub ashift: u32,
    /// `zpool create -o compatibility=`: the OpenZFS feature set of the oldest system that must
    /// import the pools, so that a newer creator (a rescue system, keel-live) enables nothing the
    /// installed node lacks. Default: Proxmox VE 8's (OpenZFS 2.2).
    #[serde(default = "default_compatibility")]
    pub compatibility: String,
    pub compression: String,
    pub atime: String,
    pub xattr: String,
    pub dnodesize: String,
    pub normalization: String,
    pub datapool_datasets: Vec<String>,
    /// The ARC's upper limit (`zfs_arc_max`), a size; absent: OpenZFS's own default (half the
    /// memory on Linux), which the Proxmox installer never leaves on a ZFS install.
    #[serde(default)]
    pub arc_max: Option<String>,
}

/// Proxmox VE 8 ships OpenZFS 2.2 and later: its pools may use every 2.2 feature, no newer one.
pub const DEFAULT_COMPATIBILITY: &str = "openzfs-2.2-linux";

fn default_compatibility() -> String {
    DEFAULT_COMPATIBILITY.into()
}

impl Zfs {
    /// `arc-max` in bytes (validation guarantees it parses).
    pub fn arc_max_bytes(&self) -> Option<u64> {
        self.arc_max.as_deref().and_then(|t| ByteSize::parse(t).ok()).map(|b| b.bytes())
    }

    /// File-system properties every pool gets at creation (`-O`), in the seed's order.
    pub fn fs_properties(&self) -> Vec<(&'static str, String)> {
        vec![
            ("compression", self.compression.clone()),
            ("atime", self.atime.clone()),
            ("xattr", self.xattr.clone()),
            ("dnodesize", self.dnodesize.clone()),
            ("normalization", self.normalization.clone()),
            ("mountpoint", "none".into()),
        ]
    }
}

/// Debian/Proxmox sources and boot loader, read straight from TOML and checked by `validate`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Os {
    pub suite: String,
    pub debian_mirror: String,
    pub debian_security_mirror: String,
    pub pve_repository: PveRepository,
    pub bootloader: Bootloader,
    /// Proxmox VE package repository base URL (default: Proxmox's own, per `pve-repository`).
    #[serde(default)]
    pub pve_mirror: Option<String>,
    /// Where the Proxmox release key is fetched from (default: Proxmox's URL for the suite).
    #[serde(default)]
    pub pve_key_url: Option<String>,
    /// SHA-512 of that key; a mismatch stops the install before any package is installed.
    /// Default: the published value for bookworm's key ([`PVE_KEY_SHA512_BOOKWORM`]).
    #[serde(default)]
    pub pve_key_sha512: Option<String>,
    /// Keyring the package pass checks the Debian mirror with (a path on the install system);
    /// default: the install system's debian-archive-keyring.
    #[serde(default)]
    pub debian_keyring: Option<String>,
    /// Extra kernel arguments after the ZFS root ones (such as a serial console).
    #[serde(default)]
    pub kernel_args: Vec<String>,
    /// HTTP proxy for APT on the installed node (`Acquire::http::Proxy`).
    #[serde(default)]
    pub apt_proxy: Option<String>,
}

/// SHA-512 of `proxmox-release-bookworm.gpg` as Proxmox publishes it ("Install Proxmox VE on
/// Debian 12 Bookworm").
pub const PVE_KEY_SHA512_BOOKWORM: &str =
    "7da6fe34168adc6e479327ba517796d4702fa2f8b4f0a9833f5ea6e6b48f6507a6da403a274fe201595edc86a84463d50383d07f64bdde2e3658108db7d6dc87";

impl Os {
    pub fn pve_mirror(&self) -> String {
        match (&self.pve_mirror, self.pve_repository) {
            (Some(m), _) => m.clone(),
            (None, PveRepository::NoSubscription) => "http://download.proxmox.com/debian/pve".into(),
            (None, PveRepository::Enterprise) => "https://enterprise.proxmox.com/debian/pve".into(),
        }
    }

    pub fn pve_key_url(&self) -> String {
        self.pve_key_url.clone().unwrap_or_else(|| format!("https://enterprise.proxmox.com/debian/proxmox-release-{}.gpg", self.suite))
    }

    /// Validation guarantees a value (the default exists for bookworm only).
    pub fn pve_key_sha512(&self) -> String {
        self.pve_key_sha512.clone().unwrap_or_else(|| PVE_KEY_SHA512_BOOKWORM.to_string())
    }

    /// Where the key lives on the node.
    pub fn pve_key_path(&self) -> String {
        format!("/etc/apt/trusted.gpg.d/proxmox-release-{}.gpg", self.suite)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Network {
    pub uplink: Uplink,
    pub guest_bridge: GuestBridge,
    pub cluster_bridge: ClusterBridge,
    pub nameservers: Vec<IpAddr>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Uplink {
    /// Lower-case MAC the uplink NIC is found by.
    pub mac: String,
    pub ipv4: Ipv4Net,
    pub ipv4_gateway: Ipv4Addr,
    pub ipv6: Option<Ipv6Net>,
    pub ipv6_gateway: Option<Ipv6Addr>,
}

impl Uplink {
    /// Hetzner's routed setup: the gateway lies outside the node's own prefix, so it is reached
    /// as a point-to-point peer.
    pub fn gateway_is_peer(&self) -> bool {
        !self.ipv4.contains(&self.ipv4_gateway)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GuestBridge {
    pub name: String,
    pub address: Ipv4Net,
    pub masquerade: bool,
    pub vlans: Vec<Vlan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Vlan {
    pub id: u16,
    pub name: String,
    /// The node's gateway address on the VLAN, with its prefix.
    pub address: Ipv4Net,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ClusterLink {
    /// A Hetzner vSwitch: a VLAN on the uplink.
    Vswitch { vlan: u16 },
    /// A second NIC, found by MAC.
    Nic { mac: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterBridge {
    pub name: String,
    pub address: Ipv4Net,
    pub link: ClusterLink,
    pub mtu: u16,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub name: String,
    pub transport: String,
    pub secauth: bool,
    pub crypto_cipher: String,
    pub crypto_hash: String,
    pub two_node: bool,
    pub nodes: Vec<ClusterNode>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterNode {
    pub name: String,
    pub id: u32,
    pub ring0_address: Ipv4Addr,
}

/// sshd hardening, read straight from TOML (kebab-case) and checked by `validate`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Ssh {
    pub port: u16,
    pub permit_root_login: String,
    pub password_authentication: bool,
    pub kbd_interactive_authentication: bool,
    pub x11_forwarding: bool,
    pub max_auth_tries: u32,
    pub max_sessions: u32,
    pub client_alive_interval: u32,
    pub client_alive_count_max: u32,
    pub login_grace_time: u32,
    pub allow_users: Vec<String>,
    pub root_from_cluster_network: bool,
    pub kex_algorithms: Vec<String>,
    pub ciphers: Vec<String>,
    pub macs: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub name: String,
    pub sudo: bool,
    pub ssh_keys: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Registry {
    pub url: String,
}

/// The node's server in Hetzner Robot (name, main IP or number) and the fingerprint of the
/// operator's SSH key stored in Robot (the rescue system is activated with it).
#[derive(Debug, Clone, Serialize)]
pub struct Robot {
    pub server: String,
    pub key_fingerprint: String,
}

/// A validated profile and the warnings (placeholders left to fill in) found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub profile: Profile,
    pub warnings: Vec<Diagnostic>,
}

impl Profile {
    /// Reads, parses and validates a profile file.
    pub fn load(path: &std::path::Path) -> Result<Loaded, SourceError> {
        Self::from_source(&SourceFile::read(path)?)
    }

    /// Parses and validates; every problem is reported with file:line:column and the field.
    pub fn from_source(src: &SourceFile) -> Result<Loaded, SourceError> {
        let raw: raw::RawProfile = src.deserialize()?;
        let mut loaded = validate::validate(src, raw)?;
        if let Some(span) = src.span_of("disks.serials") {
            let (line, _) = src.line_col(span.start);
            let text = src.text.lines().nth(line - 1).unwrap_or_default().to_string();
            loaded.profile.disks.serials_line = Some((src.path.display().to_string(), line, text));
        }
        Ok(loaded)
    }

    /// This node's entry in the cluster node list (validation guarantees it exists).
    pub fn this_cluster_node(&self) -> &ClusterNode {
        self.cluster.nodes.iter().find(|n| n.name == self.node.hostname).expect("validated")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::source::SourceFile;

    /// The seed profile with one text replaced, loaded: the profile or the errors' text.
    pub(crate) fn seed_with(from: &str, to: &str) -> Result<Profile, String> {
        let mut src = seed();
        assert!(src.text.contains(from), "{from}");
        src.text = src.text.replacen(from, to, 1);
        Profile::from_source(&src).map(|l| l.profile).map_err(|e| e.to_string())
    }

    fn seed() -> SourceFile {
        SourceFile::read(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/pve-node-01.toml")).unwrap()
    }

    /// `zfs.compatibility`: Proxmox VE 8's set when absent; `off` is allowed with a warning at
    /// its line (pools a newer creator makes may not import on the node).
    #[test]
    fn the_feature_set_defaults_to_proxmox_ve_8_and_off_is_a_warning() {
        let mut src = seed();
        src.text = src.text.replace("compatibility = \"openzfs-2.2-linux\"\n", "");
        let l = Profile::from_source(&src).unwrap();
        assert_eq!(l.profile.zfs.compatibility, DEFAULT_COMPATIBILITY);
        assert!(!l.warnings.iter().any(|w| w.field == "zfs.compatibility"));
        let mut src = seed();
        src.text = src.text.replace("compatibility = \"openzfs-2.2-linux\"", "compatibility = \"off\"");
        let l = Profile::from_source(&src).unwrap();
        let w = l.warnings.iter().find(|w| w.field == "zfs.compatibility").expect("a warning");
        assert!(w.message.contains("every feature of the OpenZFS that creates them"), "{w:?}");
        assert_eq!(src.text.lines().nth(w.line - 1).map(|l| l.trim()), Some("compatibility = \"off\""));
    }
}
