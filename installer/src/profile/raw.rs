//! The profile exactly as written in TOML: kebab-case, unknown fields refused. Values that need
//! checking (addresses, sizes, MACs) stay strings here; `validate` turns them into the model.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawProfile {
    pub version: u32,
    #[serde(default)]
    pub hardware_spec: Option<String>,
    pub node: RawNode,
    pub disks: RawDisks,
    /// Already the model's shape (strings checked in place by `validate`).
    pub zfs: super::Zfs,
    pub os: super::Os,
    pub network: RawNetwork,
    pub cluster: RawCluster,
    /// Already the model's shape: every field is checked in place by `validate`.
    pub ssh: super::Ssh,
    #[serde(default)]
    pub users: Vec<RawUser>,
    #[serde(default)]
    pub root_ssh_keys: Vec<String>,
    #[serde(default)]
    pub registry: Option<RawRegistry>,
    #[serde(default)]
    pub robot: Option<RawRobot>,
    #[serde(default)]
    pub firewall: Option<super::host::RawFirewall>,
    #[serde(default)]
    pub fail2ban: Option<super::host::RawFail2ban>,
    #[serde(default)]
    pub metrics: Option<super::host::RawMetrics>,
    #[serde(default)]
    pub services: super::host::RawServices,
    #[serde(default)]
    pub storage: Option<super::storage::RawStorage>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawNode {
    pub hostname: String,
    pub domain: String,
    pub timezone: String,
    pub hosts_address: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawDisks {
    pub count: u32,
    #[serde(default)]
    pub serials: Vec<String>,
    pub esp_size: String,
    pub rpool_size: String,
    pub swap_size: String,
    pub datapool_min_size: String,
    pub bios_boot: bool,
}


#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PveRepository {
    NoSubscription,
    Enterprise,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bootloader {
    /// `proxmox-boot-tool` on every ESP (what the Proxmox installer does for ZFS roots).
    ProxmoxBootTool,
    /// Plain GRUB installed on every drive (Debian-on-ZFS nodes, the lab).
    Grub,
}


#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawNetwork {
    pub uplink: RawUplink,
    pub guest_bridge: RawGuestBridge,
    pub cluster_bridge: RawClusterBridge,
    pub nameservers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawUplink {
    pub mac: String,
    pub ipv4_address: String,
    pub ipv4_gateway: String,
    #[serde(default)]
    pub ipv6_address: Option<String>,
    #[serde(default)]
    pub ipv6_gateway: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawGuestBridge {
    pub name: String,
    pub address: String,
    pub masquerade: bool,
    #[serde(default)]
    pub vlans: Vec<RawVlan>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawVlan {
    pub id: u32,
    pub name: String,
    pub address: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawClusterBridge {
    pub name: String,
    pub address: String,
    /// Hetzner vSwitch VLAN id on the uplink (4000-4091).
    #[serde(default)]
    pub vswitch_vlan: Option<u32>,
    /// Or a second NIC by MAC, where the hardware has one.
    #[serde(default)]
    pub nic_mac: Option<String>,
    pub mtu: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawCluster {
    pub name: String,
    pub transport: String,
    pub secauth: bool,
    pub crypto_cipher: String,
    pub crypto_hash: String,
    pub two_node: bool,
    pub nodes: Vec<RawClusterNode>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawClusterNode {
    pub name: String,
    pub id: u32,
    pub ring0_address: String,
}


#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawUser {
    pub name: String,
    #[serde(default)]
    pub sudo: bool,
    pub ssh_keys: Vec<String>,
}

/// Hetzner Robot: which server this node is, for `keel rebuild`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawRobot {
    pub server: String,
    pub key_fingerprint: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawRegistry {
    pub url: String,
}
