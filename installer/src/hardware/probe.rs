//! Fills an [`Inventory`] by reading `/proc`, `/sys` and `/dev/disk/by-id` under a root directory.
//!
//! The root is `/` on a live system and a recorded tree in tests (`tests/fixtures/*`), so every
//! line here runs against fixtures. Only files are read; nothing is written or executed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::*;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("reading {path}: {err} (is {root} the root of a Linux system with /proc and /sys mounted?)")]
    Read { root: String, path: String, err: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

struct Tree<'a> {
    root: &'a Path,
}

impl Tree<'_> {
    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    fn required(&self, rel: &str) -> Result<String, ProbeError> {
        fs::read_to_string(self.path(rel)).map_err(|err| ProbeError::Read {
            root: self.root.display().to_string(),
            path: self.path(rel).display().to_string(),
            err,
        })
    }

    /// A sysfs attribute, trimmed (NVMe pads model and serial with spaces); empty if unreadable.
    fn attr(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).map(|s| s.trim().to_string()).unwrap_or_default()
    }

    /// The unit serial number of a SCSI/ATA disk: VPD page 0x80 (`device/vpd_pg80`, binary:
    /// a 4-byte header, then the serial in ASCII, space padded); empty if unreadable.
    fn vpd_serial(&self, rel: &str) -> String {
        let b = fs::read(self.path(rel)).unwrap_or_default();
        if b.len() < 4 || b[1] != 0x80 {
            return String::new();
        }
        let len = (usize::from(b[2]) << 8 | usize::from(b[3])).min(b.len() - 4);
        String::from_utf8_lossy(&b[4..4 + len]).trim_matches(|c: char| c.is_whitespace() || c == '\0').to_string()
    }

    fn attr_num<T: std::str::FromStr>(&self, rel: &str) -> Option<T> {
        self.attr(rel).parse().ok()
    }

    /// True if the entry exists, symlinks counted even when their target is absent.
    fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.path(rel)).is_ok()
    }

    /// Entry names of a directory, sorted; empty if it does not exist.
    fn list(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path(rel))
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort_by_key(|a| natural_key(a));
        names
    }

    /// Last component of a symlink's target (`device/driver -> .../igb` gives `igb`).
    fn link_name(&self, rel: &str) -> Option<String> {
        let target = fs::read_link(self.path(rel)).ok()?;
        target.file_name().map(|n| n.to_string_lossy().into_owned())
    }
}

/// Sort key that puts `nvme2n1` before `nvme10n1`.
fn natural_key(s: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            if !num.is_empty() {
                out.push((std::mem::take(&mut text), num.parse().unwrap_or(u64::MAX)));
                num.clear();
            }
            text.push(c);
        }
    }
    out.push((text, num.parse().unwrap_or(0)));
    out
}

/// Reads the inventory of the system whose root directory is `root`.
pub fn probe(root: &Path) -> Result<Inventory, ProbeError> {
    let t = Tree { root };
    let cpu = probe_cpu(&t)?;
    let memory = probe_memory(&t)?;
    let firmware = if t.exists("sys/firmware/efi") { FirmwareMode::Uefi } else { FirmwareMode::Bios };
    let dmi = probe_dmi(&t);
    let nvme_controllers = probe_nvme_controllers(&t);
    let mounts = parse_mounts(&t.required("proc/mounts")?);
    let swaps = parse_swaps(&t.attr("proc/swaps"));
    let cmdline = t.attr("proc/cmdline");
    let by_id = probe_by_id(&t);

    let mut disks = Vec::new();
    for name in t.list("sys/block") {
        if let Some(disk) = probe_disk(&t, &name, &nvme_controllers, &by_id) {
            disks.push(disk);
        }
    }

    // Who uses what: mounts, swap, holders, boot.
    let root_mount = mounts.iter().find(|m| m.mountpoint == "/");
    let mut boot_disks = BTreeSet::new();
    for disk in &mut disks {
        let names: Vec<String> =
            std::iter::once(disk.name.clone()).chain(disk.partitions.iter().map(|p| p.name.clone())).collect();
        for dev in &names {
            for m in mounts.iter().filter(|m| mount_device(m, &cmdline).as_deref() == Some(dev.as_str())) {
                disk.usage.push(Usage::Mounted {
                    device: dev.clone(),
                    mountpoint: m.mountpoint.clone(),
                    fstype: m.fstype.clone(),
                });
                let boot_mount = m.mountpoint == "/" || m.mountpoint == "/boot" || m.mountpoint == "/boot/efi";
                if boot_mount && boot_disks.insert(disk.name.clone()) {
                    disk.usage.push(Usage::BootedFrom { device: dev.clone() });
                }
            }
            if swaps.iter().any(|s| device_name(s).as_deref() == Some(dev.as_str())) {
                disk.usage.push(Usage::Swap { device: dev.clone() });
            }
            let holders_dir =
                if dev == &disk.name { format!("sys/block/{dev}/holders") } else { format!("sys/block/{}/{dev}/holders", disk.name) };
            for holder in t.list(&holders_dir) {
                disk.usage.push(Usage::Held { device: dev.clone(), holder });
            }
        }
    }

    let nics = probe_nics(&t);
    Ok(Inventory {
        schema: INVENTORY_SCHEMA,
        cpu,
        memory,
        firmware,
        dmi,
        nvme_controllers,
        disks,
        nics,
        boot: Boot {
            root_source: root_mount.map(|m| m.source.clone()),
            root_fstype: root_mount.map(|m| m.fstype.clone()),
            disks: boot_disks.into_iter().collect(),
            cmdline,
        },
    })
}

fn probe_cpu(t: &Tree) -> Result<Cpu, ProbeError> {
    let text = t.required("proc/cpuinfo")?;
    let mut model = String::new();
    let mut threads = 0u32;
    let mut cores = BTreeSet::new();
    let (mut physical, mut core) = (String::new(), String::new());
    for block in text.split("\n\n").filter(|b| b.contains("processor")) {
        threads += 1;
        physical.clear();
        core.clear();
        for line in block.lines() {
            let Some((key, value)) = line.split_once(':') else { continue };
            match key.trim() {
                "model name" if model.is_empty() => model = value.trim().to_string(),
                "physical id" => physical = value.trim().to_string(),
                "core id" => core = value.trim().to_string(),
                _ => {}
            }
        }
        // Without topology lines (some VMs), every logical CPU counts as a core.
        let key = if core.is_empty() { format!("cpu{threads}") } else { format!("{physical}/{core}") };
        cores.insert(key);
    }
    if threads == 0 {
        return Err(ProbeError::Parse {
            path: t.path("proc/cpuinfo").display().to_string(),
            message: "no \"processor\" entries".into(),
        });
    }
    Ok(Cpu { model, cores: cores.len() as u32, threads })
}

fn probe_memory(t: &Tree) -> Result<Memory, ProbeError> {
    let text = t.required("proc/meminfo")?;
    let kib = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| ProbeError::Parse {
            path: t.path("proc/meminfo").display().to_string(),
            message: "no readable \"MemTotal:\" line".into(),
        })?;
    Ok(Memory { total_bytes: ByteSize(kib * 1024) })
}

fn probe_dmi(t: &Tree) -> Dmi {
    let a = |f: &str| t.attr(&format!("sys/class/dmi/id/{f}"));
    Dmi {
        sys_vendor: a("sys_vendor"),
        product_name: a("product_name"),
        product_serial: a("product_serial"),
        product_uuid: a("product_uuid"),
        board_vendor: a("board_vendor"),
        board_name: a("board_name"),
        bios_vendor: a("bios_vendor"),
        bios_version: a("bios_version"),
    }
}

fn probe_nvme_controllers(t: &Tree) -> Vec<NvmeController> {
    t.list("sys/class/nvme")
        .into_iter()
        .map(|name| {
            let base = format!("sys/class/nvme/{name}");
            let a = |f: &str| t.attr(&format!("{base}/{f}"));
            let address = a("address");
            // Namespaces are `nvmeXnY`; hidden multipath paths `nvmeXcZnY` are not disks.
            let instance = name.trim_start_matches("nvme");
            let namespaces = t
                .list("sys/block")
                .into_iter()
                .filter(|b| {
                    b.strip_prefix("nvme")
                        .and_then(|r| r.split_once('n'))
                        .is_some_and(|(ctrl, ns)| ctrl == instance && ns.chars().all(|c| c.is_ascii_digit()))
                })
                .collect();
            NvmeController {
                model: a("model"),
                serial: a("serial"),
                firmware_rev: a("firmware_rev"),
                transport: a("transport"),
                pci_address: if address.is_empty() { t.link_name(&format!("{base}/device")) } else { Some(address) },
                namespaces,
                name,
            }
        })
        .collect()
}

/// `/dev/disk/by-id` grouped by the device the link points to.
fn probe_by_id(t: &Tree) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for link in t.list("dev/disk/by-id") {
        if let Some(dev) = t.link_name(&format!("dev/disk/by-id/{link}")) {
            map.entry(dev).or_default().push(link);
        }
    }
    map
}

fn disk_kind(name: &str) -> Option<DiskKind> {
    let kind = if name.starts_with("nvme") {
        // nvme0c0n1: hidden multipath path, not a disk to use.
        if name.contains('c') {
            return None;
        }
        DiskKind::Nvme
    } else if name.starts_with("vd") {
        DiskKind::Virtio
    } else if name.starts_with("sd") {
        DiskKind::Scsi
    } else if name.starts_with("sr") {
        DiskKind::Optical
    } else if name.starts_with("fd") {
        DiskKind::Floppy
    } else if name.starts_with("loop") {
        DiskKind::Loop
    } else if name.starts_with("ram") || name.starts_with("zram") {
        DiskKind::Ram
    } else {
        DiskKind::Other
    };
    Some(kind)
}

fn probe_disk(
    t: &Tree,
    name: &str,
    controllers: &[NvmeController],
    by_id: &BTreeMap<String, Vec<String>>,
) -> Option<Disk> {
    let kind = disk_kind(name)?;
    let base = format!("sys/block/{name}");
    let sectors: u64 = t.attr_num(&format!("{base}/size")).unwrap_or(0);
    // Unused loop and zram devices report size 0: nothing to show.
    if matches!(kind, DiskKind::Loop | DiskKind::Ram) && sectors == 0 {
        return None;
    }
    let controller = controllers.iter().find(|c| c.namespaces.iter().any(|n| n == name));
    let (model, serial, firmware_rev) = match controller {
        Some(c) => (c.model.clone(), c.serial.clone(), c.firmware_rev.clone()),
        None => (
            t.attr(&format!("{base}/device/model")),
            {
                let s = t.attr(&format!("{base}/serial"));
                let s = if s.is_empty() { t.attr(&format!("{base}/device/serial")) } else { s };
                if s.is_empty() { t.vpd_serial(&format!("{base}/device/vpd_pg80")) } else { s }
            },
            t.attr(&format!("{base}/device/rev")),
        ),
    };

    let mut partitions: Vec<Partition> = t
        .list(&base)
        .into_iter()
        .filter(|entry| entry.starts_with(name) && t.exists(&format!("{base}/{entry}/partition")))
        .map(|entry| Partition {
            number: t.attr_num(&format!("{base}/{entry}/partition")).unwrap_or(0),
            start_sector: t.attr_num(&format!("{base}/{entry}/start")).unwrap_or(0),
            size_bytes: ByteSize(t.attr_num::<u64>(&format!("{base}/{entry}/size")).unwrap_or(0) * 512),
            name: entry,
        })
        .collect();
    partitions.sort_by_key(|p| p.number);

    let mut ids: Vec<String> = by_id.get(name).cloned().unwrap_or_default();
    ids.sort();
    let stable_id = stable_by_id(kind, &model, &serial, &ids);

    Some(Disk {
        path: format!("/dev/{name}"),
        name: name.to_string(),
        kind,
        model,
        serial,
        firmware_rev,
        controller: controller.map(|c| c.name.clone()),
        size_bytes: ByteSize(sectors * 512),
        logical_block_size: t.attr_num(&format!("{base}/queue/logical_block_size")).unwrap_or(512),
        physical_block_size: t.attr_num(&format!("{base}/queue/physical_block_size")).unwrap_or(512),
        rotational: t.attr(&format!("{base}/queue/rotational")) == "1",
        removable: t.attr(&format!("{base}/removable")) == "1",
        read_only: t.attr(&format!("{base}/ro")) == "1",
        by_id: ids,
        stable_id,
        partitions,
        usage: Vec::new(),
    })
}

/// The one by-id name keel uses: for NVMe the `nvme-<model>_<serial>` link udev makes (what an
/// operator recognises), else the first link that is not a WWN/EUI alias.
fn stable_by_id(kind: DiskKind, model: &str, serial: &str, ids: &[String]) -> Option<String> {
    if kind == DiskKind::Nvme && !serial.is_empty() {
        let want = format!("nvme-{}_{}", model.split_whitespace().collect::<Vec<_>>().join("_"), serial);
        if let Some(id) = ids.iter().find(|i| **i == want) {
            return Some(id.clone());
        }
        if let Some(id) = ids.iter().find(|i| i.ends_with(&format!("_{serial}"))) {
            return Some(id.clone());
        }
    }
    ids.iter()
        .find(|i| !i.starts_with("wwn-") && !i.starts_with("nvme-eui.") && !i.starts_with("nvme-nvme."))
        .cloned()
}

fn probe_nics(t: &Tree) -> Vec<Nic> {
    t.list("sys/class/net")
        .into_iter()
        .filter(|name| t.exists(&format!("sys/class/net/{name}/device")))
        .map(|name| {
            let base = format!("sys/class/net/{name}");
            let carrier = match t.attr(&format!("{base}/carrier")).as_str() {
                "1" => Some(true),
                "0" => Some(false),
                _ => None,
            };
            Nic {
                mac: t.attr(&format!("{base}/address")),
                driver: t.link_name(&format!("{base}/device/driver")),
                pci_address: t.link_name(&format!("{base}/device")).filter(|p| p.contains(':')),
                // The kernel reports -1 or an error when the link is down.
                speed_mbps: t.attr_num::<i64>(&format!("{base}/speed")).filter(|s| *s > 0).map(|s| s as u32),
                carrier,
                operstate: t.attr(&format!("{base}/operstate")),
                mtu: t.attr_num(&format!("{base}/mtu")).unwrap_or(0),
                name,
            }
        })
        .collect()
}

struct Mount {
    source: String,
    mountpoint: String,
    fstype: String,
}

fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(Mount {
                source: f.next()?.to_string(),
                mountpoint: unescape_octal(f.next()?),
                fstype: f.next()?.to_string(),
            })
        })
        .collect()
}

/// /proc/mounts escapes space, tab, newline and backslash as `\040` and so on.
fn unescape_octal(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.clone().take(3).collect();
            if code.len() == 3 {
                if let Ok(v) = u8::from_str_radix(&code, 8) {
                    out.push(v as char);
                    for _ in 0..3 {
                        chars.next();
                    }
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

fn parse_swaps(text: &str) -> Vec<String> {
    text.lines().skip(1).filter_map(|l| l.split_whitespace().next().map(str::to_string)).collect()
}

/// The block device behind a mount; `/dev/root` is resolved through `root=` on the command line.
fn mount_device(m: &Mount, cmdline: &str) -> Option<String> {
    if m.source == "/dev/root" {
        let root = cmdline.split_whitespace().find_map(|w| w.strip_prefix("root="))?;
        return device_name(root);
    }
    device_name(&m.source)
}

/// `/dev/nvme0n1p2` gives `nvme0n1p2`; sources that are not block devices give `None`.
fn device_name(source: &str) -> Option<String> {
    let rest = source.strip_prefix("/dev/")?;
    if rest.contains('/') {
        return None;
    }
    Some(rest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sata_disk_serial_comes_from_vpd_page_80() {
        let dir = std::env::temp_dir().join(format!("keel-vpd-{}", std::process::id()));
        fs::create_dir_all(dir.join("d")).unwrap();
        let mut page = vec![0u8, 0x80, 0, 20];
        page.extend_from_slice(b"LABOLD0003          ");
        fs::write(dir.join("d/vpd_pg80"), &page).unwrap();
        fs::write(dir.join("d/bad"), [0u8, 0x83, 0, 2, b'x', b'y']).unwrap();
        let t = Tree { root: &dir };
        assert_eq!(t.vpd_serial("d/vpd_pg80"), "LABOLD0003");
        assert_eq!(t.vpd_serial("d/bad"), "", "another VPD page is not a serial");
        assert_eq!(t.vpd_serial("d/missing"), "");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["nvme10n1", "nvme2n1", "nvme1n1"];
        v.sort_by_key(|a| natural_key(a));
        assert_eq!(v, ["nvme1n1", "nvme2n1", "nvme10n1"]);
    }

    #[test]
    fn mount_escapes() {
        let m = parse_mounts("/dev/sda1 /mnt/my\\040disk ext4 rw 0 0\n");
        assert_eq!(m[0].mountpoint, "/mnt/my disk");
    }

    #[test]
    fn hidden_multipath_paths_are_not_disks() {
        assert_eq!(disk_kind("nvme0c0n1"), None);
        assert_eq!(disk_kind("nvme0n1"), Some(DiskKind::Nvme));
    }

    #[test]
    fn missing_proc_is_a_clear_error() {
        let err = probe(Path::new("/nonexistent-keel-root")).unwrap_err().to_string();
        assert!(err.contains("/nonexistent-keel-root/proc/cpuinfo"), "{err}");
    }
}
