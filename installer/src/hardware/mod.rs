//! The hardware inventory: what keel found on a machine (or in a recorded tree).
//!
//! Types here are the stable `keel detect --json` format (`docs/json.md`); the probe that fills
//! them from a root directory lives in [`probe`].

pub mod probe;

use serde::Serialize;

use crate::size::ByteSize;

pub use probe::{probe, ProbeError};

/// Identifies the JSON shape of an inventory; bumped on incompatible changes.
pub const INVENTORY_SCHEMA: &str = "keel.inventory/v1";

#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    pub schema: &'static str,
    pub cpu: Cpu,
    pub memory: Memory,
    pub firmware: FirmwareMode,
    pub dmi: Dmi,
    /// NVMe controllers (`/sys/class/nvme`), with the namespaces (block devices) they expose.
    pub nvme_controllers: Vec<NvmeController>,
    /// Every block device that can hold data (NVMe namespaces and the rest), by kernel name.
    pub disks: Vec<Disk>,
    /// Physical network interfaces (those backed by a device; `lo`, bridges and veths are left out).
    pub nics: Vec<Nic>,
    pub boot: Boot,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    pub model: String,
    /// Physical cores (distinct package/core id pairs).
    pub cores: u32,
    /// Hardware threads (logical CPUs).
    pub threads: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// `MemTotal` from `/proc/meminfo`: what the kernel can use, a little below the installed RAM.
    pub total_bytes: ByteSize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FirmwareMode {
    Uefi,
    Bios,
}

impl std::fmt::Display for FirmwareMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FirmwareMode::Uefi => "uefi",
            FirmwareMode::Bios => "bios",
        })
    }
}

/// SMBIOS strings from `/sys/class/dmi/id`; empty when the firmware leaves them blank.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Dmi {
    pub sys_vendor: String,
    pub product_name: String,
    pub product_serial: String,
    pub product_uuid: String,
    pub board_vendor: String,
    pub board_name: String,
    pub bios_vendor: String,
    pub bios_version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NvmeController {
    /// `nvme0`
    pub name: String,
    pub model: String,
    pub serial: String,
    pub firmware_rev: String,
    pub transport: String,
    pub pci_address: Option<String>,
    /// Namespace block devices, e.g. `nvme0n1`.
    pub namespaces: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskKind {
    Nvme,
    Virtio,
    Scsi,
    Optical,
    Floppy,
    Loop,
    Ram,
    Other,
}

#[derive(Debug, Clone, Serialize)]
pub struct Disk {
    /// Kernel name, e.g. `nvme0n1`. Can change between boots: never use it to name a target.
    pub name: String,
    pub path: String,
    pub kind: DiskKind,
    pub model: String,
    pub serial: String,
    pub firmware_rev: String,
    /// NVMe controller this namespace belongs to.
    pub controller: Option<String>,
    pub size_bytes: ByteSize,
    pub logical_block_size: u32,
    pub physical_block_size: u32,
    pub rotational: bool,
    pub removable: bool,
    pub read_only: bool,
    /// Every `/dev/disk/by-id` name of the whole disk, sorted.
    pub by_id: Vec<String>,
    /// The by-id name keel uses for this disk (`nvme-<model>_<serial>` for NVMe), if any.
    pub stable_id: Option<String>,
    pub partitions: Vec<Partition>,
    /// Everything that currently uses the disk or one of its partitions.
    pub usage: Vec<Usage>,
}

impl Disk {
    pub fn in_use(&self) -> bool {
        !self.usage.is_empty()
    }

    /// Everything that uses the disk, for messages ("nvme0n1p2 mounted at / (ext4); ...").
    pub fn usage_summary(&self) -> String {
        self.usage.iter().map(|u| u.to_string()).collect::<Vec<_>>().join("; ")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    pub name: String,
    pub number: u32,
    /// Start in 512-byte sectors.
    pub start_sector: u64,
    pub size_bytes: ByteSize,
}

/// Why a disk is busy. Any usage makes a disk ineligible as a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Usage {
    Mounted { device: String, mountpoint: String, fstype: String },
    Swap { device: String },
    /// Held by another block device (md, dm, LVM), from `/sys/block/*/holders`.
    Held { device: String, holder: String },
    /// The running system booted from it (root file system or `/boot` lives on it).
    BootedFrom { device: String },
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Usage::Mounted { device, mountpoint, fstype } => write!(f, "{device} mounted at {mountpoint} ({fstype})"),
            Usage::Swap { device } => write!(f, "{device} is active swap"),
            Usage::Held { device, holder } => write!(f, "{device} is held by {holder}"),
            Usage::BootedFrom { device } => write!(f, "the running system booted from {device}"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Nic {
    pub name: String,
    pub mac: String,
    pub driver: Option<String>,
    pub pci_address: Option<String>,
    /// Link speed in Mbit/s; absent when the link is down or the driver does not say.
    pub speed_mbps: Option<u32>,
    /// Link detected; absent when the kernel cannot tell (interface down).
    pub carrier: Option<bool>,
    pub operstate: String,
    pub mtu: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Boot {
    /// Source of the `/` mount (`/dev/nvme0n1p2`, `rpool/ROOT/pve-1`, `tmpfs`, ...).
    pub root_source: Option<String>,
    pub root_fstype: Option<String>,
    /// Disks the running system booted from (hold `/` or `/boot`), by kernel name. Empty in a
    /// rescue or live system that runs from RAM or the network.
    pub disks: Vec<String>,
    pub cmdline: String,
}

impl Inventory {
    pub fn disk(&self, name: &str) -> Option<&Disk> {
        self.disks.iter().find(|d| d.name == name)
    }

    /// NVMe namespaces, in kernel-name order.
    pub fn nvme_disks(&self) -> impl Iterator<Item = &Disk> {
        self.disks.iter().filter(|d| d.kind == DiskKind::Nvme)
    }
}
