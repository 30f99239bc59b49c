//! Inventory + Profile + Spec -> Plan: the exact, ordered steps an install runs, each named,
//! with its commands, the files it writes and the disks it touches (by serial). Pure and
//! deterministic: the same inputs give the same plan, byte for byte. Nothing is executed.

pub mod layout;
pub mod display;
mod steps;

/// The packages `os.packages` installs for a profile.
pub use steps::packages as steps_packages;
pub use steps::BEFORE_PACKAGES_SNAPSHOT;
/// The sgdisk command that writes a layout on a drive.
pub use steps::partition_command;

use serde::Serialize;

use crate::hardware::{Disk, DiskKind, Inventory};
use crate::profile::Profile;
use crate::render::{RenderedFile, UPLINK_IFNAME};
use crate::size::ByteSize;
use crate::spec::{Spec, SpecReport};

pub use display::shell_quote;
pub use layout::{Layout, PartitionSpec};

/// Identifies the JSON shape of a plan; bumped on incompatible changes.
pub const PLAN_SCHEMA: &str = "keel.plan/v1";

/// Where the target's root is assembled during an install (`zpool create -R`).
pub const TARGET_ROOT: &str = "/mnt/keel";

/// The pools of every plan and the partition each lives on (a mirror of that partition on
/// every target disk).
pub const POOLS: &[(&str, u32)] = &[("rpool", 2), ("datapool", 3)];

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub schema: &'static str,
    pub hostname: String,
    pub profile: ProfileRef,
    pub spec: Option<SpecReport>,
    pub target_root: &'static str,
    /// The disks this plan wipes, named by serial. Nothing else is written.
    pub targets: Vec<TargetDisk>,
    /// Disks outside the targets whose old ZFS labels the operator asked keel to clear
    /// (`--clear-zfs-labels SERIAL`): named by serial like targets, confirmed like them; only
    /// ZFS labels are cleared there (step `wipe.labels-...`), nothing else is written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cleared: Vec<TargetDisk>,
    /// Block devices present and left alone, with why.
    pub untouched: Vec<Untouched>,
    pub uplink: UplinkMatch,
    pub layout: Layout,
    /// The firmware the machine booted with: what the boot loader steps install for.
    pub firmware: crate::hardware::FirmwareMode,
    pub steps: Vec<Step>,
    pub warnings: Vec<String>,
    /// The root image the OS comes from (`keel install --image`); none: mmdebstrap from the network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRef>,
}

/// A root image and its manifest (read before planning, so the plan can name it).
#[derive(Debug, Clone, Serialize)]
pub struct ImageRef {
    /// URL or file path of the image.
    pub location: String,
    pub manifest: crate::image::Manifest,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileRef {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetDisk {
    /// "A", "B", ... in plan order.
    pub label: String,
    pub serial: String,
    pub model: String,
    pub size_bytes: ByteSize,
    /// Kernel name at planning time (informative only: can change at the next boot).
    pub kernel_name: String,
    /// `/dev/disk/by-id/...` path every command uses.
    pub by_id: String,
    /// Partitions on it now (all will be destroyed).
    pub existing_partitions: Vec<ExistingPartition>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExistingPartition {
    pub name: String,
    pub number: u32,
    pub size_bytes: ByteSize,
}

impl TargetDisk {
    pub fn part(&self, n: u32) -> String {
        format!("{}-part{n}", self.by_id)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Untouched {
    pub name: String,
    pub kind: DiskKind,
    pub size_bytes: ByteSize,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct UplinkMatch {
    pub mac: String,
    /// Name of the NIC with that MAC now (rescue system).
    pub current_name: String,
    /// Name it gets on the installed system (pinned by a `.link` file).
    pub installed_name: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[derive(serde::Deserialize)]
pub enum Group {
    Preflight,
    Wipe,
    Partition,
    Pools,
    Datasets,
    Os,
    Boot,
    Config,
    Verify,
    Finish,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Group::Preflight => "preflight",
            Group::Wipe => "wipe",
            Group::Partition => "partition",
            Group::Pools => "pools",
            Group::Datasets => "datasets",
            Group::Os => "os",
            Group::Boot => "boot",
            Group::Config => "config",
            Group::Verify => "verify",
            Group::Finish => "finish",
        }
    }

    /// Steps of these groups destroy data on the target disks.
    pub fn destructive(self) -> bool {
        matches!(self, Group::Wipe | Group::Partition | Group::Pools)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Stable identifier, recorded in the journal (`pools.rpool`).
    pub id: String,
    pub group: Group,
    pub title: String,
    /// How the executor tells the step is already done (idempotence), in words.
    pub done_when: String,
    /// Serials of the target disks the step writes to.
    pub disks: Vec<String>,
    /// Commands, in order, as argument vectors (no shell).
    pub commands: Vec<Vec<String>>,
    /// Files written under the target root.
    pub files: Vec<RenderedFile>,
    /// Files copied into the target root as they are (keys, the profile, keel itself).
    pub copies: Vec<FileCopy>,
    /// Files the step's commands fetch, and the SHA-512 each must have.
    pub checksums: Vec<Checksum>,
}

/// A file copied from the system keel runs on into the target (`to` is relative to the
/// target root). `from` = [`SELF_EXE`] is keel's own binary.
#[derive(Debug, Clone, Serialize)]
pub struct FileCopy {
    pub from: String,
    pub to: String,
    pub mode: u32,
}

/// A fetched file and the SHA-512 it must have.
#[derive(Debug, Clone, Serialize)]
pub struct Checksum {
    pub path: String,
    pub sha512: String,
    pub source: String,
}

/// Stands for keel's own executable in a [`FileCopy`].
pub const SELF_EXE: &str = "<keel>";

/// Stands for the first-boot unit's registry credentials in a [`FileCopy`] (written by the
/// agent at run time: registry URL, fingerprint pin, the node's enrollment).
pub const FIRST_BOOT_CREDENTIALS: &str = "<first-boot credentials>";

/// Where the installed node finds them.
pub const INSTALLED_CREDENTIALS: &str = "/etc/keel/first-boot.json";

/// Where the installed node keeps the profile it was installed from (`keel verify` reads it).
pub const INSTALLED_PROFILE: &str = "/etc/keel/profile.toml";

#[derive(Debug, Clone, thiserror::Error)]
pub enum PlanError {
    #[error("the hardware does not meet spec {}:\n{}", .0.spec, .0.table())]
    Spec(SpecReport),
    #[error("{0}")]
    Disks(String),
    #[error("{0}")]
    Uplink(String),
    #[error("the profile's disk layout does not fit: {0}")]
    Layout(String),
}

impl Plan {
    /// SHA-256 over what defines the install (target serials and paths, layout, step ids), not
    /// over how it was invoked nor over what the disks held before (the wipe commands list the
    /// partitions found, which differ once keel has partitioned): the journal uses it to
    /// recognise the same install on a re-run.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let targets: Vec<_> = self.targets.iter().chain(&self.cleared).map(|t| (&t.serial, &t.by_id)).collect();
        let steps: Vec<&str> = self.steps.iter().map(|s| s.id.as_str()).collect();
        let what = serde_json::to_vec(&(targets, &self.layout, steps)).expect("plans serialize");
        crate::profile::hex_digest(&Sha256::digest(&what))
    }

    pub fn serials(&self) -> Vec<String> {
        self.targets.iter().map(|t| t.serial.clone()).collect()
    }

    /// Every serial this plan writes to: the targets, then the disks whose ZFS labels it clears.
    pub fn written_serials(&self) -> Vec<String> {
        self.targets.iter().chain(&self.cleared).map(|t| t.serial.clone()).collect()
    }

    /// Adds, after the wipe of the targets, one step per disk in `serials` that clears the ZFS
    /// labels of its partitions (the whole disk when it has none): an old install's pools
    /// there would otherwise be found beside the new ones (the installed node's initramfs
    /// imports its root pool by name). Refused for a target, a disk not present or one in use.
    pub fn clear_zfs_labels(&mut self, inv: &Inventory, serials: &[String]) -> Result<(), PlanError> {
        for serial in serials {
            if self.targets.iter().any(|t| &t.serial == serial) {
                return Err(PlanError::Disks(format!("--clear-zfs-labels {serial}: that disk is a target already (it is wiped whole); name only other disks")));
            }
            let Some(d) = inv.disks.iter().find(|d| &d.serial == serial) else {
                return Err(PlanError::Disks(format!("--clear-zfs-labels {serial}: no disk with that serial is here (`keel detect` lists them)")));
            };
            if d.in_use() {
                return Err(PlanError::Disks(format!("--clear-zfs-labels {serial}: {} is in use ({}); keel does not write to it", d.name, d.usage_summary())));
            }
            let Some(id) = d.stable_id.clone().or_else(|| d.by_id.first().cloned()) else {
                return Err(PlanError::Disks(format!("--clear-zfs-labels {serial}: {} has no /dev/disk/by-id name to address it by", d.name)));
            };
            let disk = TargetDisk {
                label: format!("X{}", self.cleared.len() + 1),
                serial: serial.clone(),
                model: d.model.clone(),
                size_bytes: d.size_bytes,
                kernel_name: d.name.clone(),
                by_id: format!("/dev/disk/by-id/{id}"),
                existing_partitions: d.partitions.iter().map(|p| ExistingPartition { name: p.name.clone(), number: p.number, size_bytes: p.size_bytes }).collect(),
            };
            let step = steps::clear_labels(&disk);
            let at = self.steps.iter().rposition(|s| s.group == Group::Wipe).map(|i| i + 1).unwrap_or(0);
            self.steps.insert(at, step);
            for u in self.untouched.iter_mut().filter(|u| u.name == d.name) {
                u.why = "its ZFS labels are cleared (--clear-zfs-labels); nothing else is written to it".into();
            }
            self.cleared.push(disk);
        }
        Ok(())
    }
}

/// Builds the plan. `spec`, when given, is checked first and any FAIL stops planning.
pub fn build(inv: &Inventory, profile: &Profile, spec: Option<&Spec>) -> Result<Plan, PlanError> {
    build_with_image(inv, profile, spec, None)
}

/// [`build`], with the OS from a root image instead of mmdebstrap when `image` is given.
pub fn build_with_image(inv: &Inventory, profile: &Profile, spec: Option<&Spec>, image: Option<ImageRef>) -> Result<Plan, PlanError> {
    let report = spec.map(|s| s.check(inv));
    if let Some(r) = &report {
        if !r.passed() {
            return Err(PlanError::Spec(r.clone()));
        }
    }
    // Hetzner routes the main IP point-to-point: a subnet prefix copied from Robot is accepted
    // by ifupdown2 and renders no pointopoint, and traffic to the neighbours in that subnet then
    // goes to the wire instead of the gateway and is lost
    if let Some(s) = spec.filter(|s| s.uplink_point_to_point) {
        let u = &profile.network.uplink;
        if u.ipv4.prefix_len() != 32 {
            return Err(PlanError::Uplink(format!(
                "network.uplink.ipv4-address is {}: on this provider's servers (hardware spec {}) the main IP is routed point-to-point; write ipv4-address = \"{}/32\" (keel then renders the gateway {} as its pointopoint peer)",
                u.ipv4, s.name, u.ipv4.addr(), u.ipv4_gateway
            )));
        }
    }
    let mut warnings = Vec::new();
    let chosen = select_targets(inv, profile)?;

    // Identical layout on every drive: sized by the smallest.
    let lbs: Vec<u32> = chosen.iter().map(|d| d.logical_block_size).collect();
    if lbs.windows(2).any(|w| w[0] != w[1]) {
        return Err(PlanError::Disks(format!(
            "target disks have different logical block sizes ({}): they cannot carry identical partition tables; reformat one with `nvme format --lbaf` or pin other disks",
            chosen.iter().map(|d| format!("{} {}", d.serial, d.logical_block_size)).collect::<Vec<_>>().join(", ")
        )));
    }
    let smallest = chosen.iter().map(|d| d.size_bytes.0).min().unwrap_or(0);
    if chosen.iter().any(|d| d.size_bytes.0 != smallest) {
        warnings.push(format!(
            "target disks differ in size; both get the layout of the smaller ({})",
            ByteSize(smallest)
        ));
    }
    let layout = layout::compute(&layout::LayoutInput {
        disk_bytes: smallest,
        logical_block_size: lbs[0],
        esp: profile.disks.esp_size,
        rpool: profile.disks.rpool_size,
        datapool_min: profile.disks.datapool_min_size,
        bios_boot: profile.disks.bios_boot,
    })
    .map_err(|e| PlanError::Layout(e.0))?;

    let targets: Vec<TargetDisk> = chosen
        .iter()
        .enumerate()
        .map(|(i, d)| TargetDisk {
            label: ((b'A' + i as u8) as char).to_string(),
            serial: d.serial.clone(),
            model: d.model.clone(),
            size_bytes: d.size_bytes,
            kernel_name: d.name.clone(),
            by_id: format!("/dev/disk/by-id/{}", d.stable_id.clone().expect("selected disks have one")),
            existing_partitions: d
                .partitions
                .iter()
                .map(|p| ExistingPartition { name: p.name.clone(), number: p.number, size_bytes: p.size_bytes })
                .collect(),
        })
        .collect();

    let untouched = inv
        .disks
        .iter()
        .filter(|d| !chosen.iter().any(|c| c.name == d.name))
        .map(|d| Untouched {
            name: d.name.clone(),
            kind: d.kind,
            size_bytes: d.size_bytes,
            why: if d.in_use() {
                format!("in use: {}", d.usage_summary())
            } else if d.kind == DiskKind::Nvme {
                "not a target of this profile".into()
            } else {
                format!("not an NVMe drive ({:?})", d.kind).to_lowercase()
            },
        })
        .collect();

    let nic = inv.nics.iter().find(|n| n.mac.eq_ignore_ascii_case(&profile.network.uplink.mac)).ok_or_else(|| {
        PlanError::Uplink(format!(
            "no NIC has the uplink MAC {} from the profile (network.uplink.mac); found: {}. Put this server's MAC in the profile (Robot or `keel detect`)",
            profile.network.uplink.mac,
            if inv.nics.is_empty() { "no NICs".to_string() } else { inv.nics.iter().map(|n| format!("{} {}", n.name, n.mac)).collect::<Vec<_>>().join(", ") }
        ))
    })?;
    if nic.carrier == Some(false) {
        warnings.push(format!("uplink {} ({}) has no link", nic.name, nic.mac));
    }
    if let crate::profile::ClusterLink::Nic { mac } = &profile.network.cluster_bridge.link {
        if !inv.nics.iter().any(|n| n.mac.eq_ignore_ascii_case(mac)) {
            return Err(PlanError::Uplink(format!(
                "no NIC has the cluster NIC MAC {mac} (network.cluster-bridge.nic-mac); found: {}",
                inv.nics.iter().map(|n| format!("{} {}", n.name, n.mac)).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    if profile.os.bootloader == crate::profile::Bootloader::Grub && inv.firmware == crate::hardware::FirmwareMode::Bios && !profile.disks.bios_boot {
        return Err(PlanError::Layout("GRUB on a BIOS machine needs the BIOS boot partition: set disks.bios-boot = true".into()));
    }

    let steps = steps::all(profile, &targets, &layout, image.as_ref(), inv.firmware);
    Ok(Plan {
        schema: PLAN_SCHEMA,
        hostname: profile.node.hostname.clone(),
        profile: ProfileRef { path: profile.path.clone(), sha256: profile.sha256.clone() },
        spec: report,
        target_root: TARGET_ROOT,
        targets,
        cleared: Vec::new(),
        untouched,
        uplink: UplinkMatch { mac: nic.mac.clone(), current_name: nic.name.clone(), installed_name: UPLINK_IFNAME },
        layout,
        firmware: inv.firmware,
        steps,
        warnings,
        image,
    })
}

/// The target disks: the pinned serials in profile order, or every free NVMe drive when
/// exactly `disks.count` of them exist. Never a disk that is in use.
/// A pinned serial that is not in the machine: the disks found, and when exactly one NVMe
/// drive the profile does not pin is there (the drive the provider put in for a dead one), its
/// serial and the profile line to change.
fn pinned_missing(inv: &Inventory, profile: &Profile, serial: &str) -> String {
    let describe = |d: &Disk| format!("{} ({} {}, {})", d.name, d.model, d.serial, d.size_bytes);
    let mut msg = format!(
        "pinned disk serial {serial} (disks.serials) is not in this machine; disks found: {}",
        inv.disks.iter().filter(|d| !d.serial.is_empty()).map(describe).collect::<Vec<_>>().join(", ")
    );
    let missing = profile.disks.serials.iter().filter(|s| !inv.disks.iter().any(|d| &d.serial == *s)).count();
    let unpinned: Vec<&Disk> = inv.nvme_disks().filter(|d| !d.serial.is_empty() && !profile.disks.serials.contains(&d.serial)).collect();
    if let ([new], 1) = (unpinned.as_slice(), missing) {
        let quoted = format!("\"{serial}\"");
        match &profile.disks.serials_line {
            Some((file, line, text)) if text.contains(&quoted) => msg.push_str(&format!(
                ". The NVMe drive {} is here and not pinned: if it was put in for {serial}, change {file}:{line} from `{}` to `{}`",
                describe(new), text.trim(), text.replacen(&quoted, &format!("\"{}\"", new.serial), 1).trim()
            )),
            _ => msg.push_str(&format!(". The NVMe drive {} is here and not pinned: if it was put in for {serial}, pin {} in place of {serial} in disks.serials", describe(new), new.serial)),
        }
        msg.push_str(&format!(
            "; to keep the surviving drive's data instead of installing afresh, boot the node and run `keel disk replace --new {}` there",
            new.serial
        ));
    }
    msg
}

fn select_targets<'a>(inv: &'a Inventory, profile: &Profile) -> Result<Vec<&'a Disk>, PlanError> {
    let count = profile.disks.count as usize;
    let describe = |d: &Disk| format!("{} ({} {}, {})", d.name, d.model, d.serial, d.size_bytes);
    let chosen: Vec<&Disk> = if profile.disks.serials.is_empty() {
        let free: Vec<&Disk> = inv.nvme_disks().filter(|d| !d.in_use()).collect();
        if free.len() != count {
            let busy: Vec<String> = inv.nvme_disks().filter(|d| d.in_use()).map(|d| {
                format!("{} in use: {}", d.name, d.usage_summary())
            }).collect();
            return Err(PlanError::Disks(format!(
                "the profile wants {count} target disk(s) and {} free NVMe drive(s) were found [{}]{}; {}",
                free.len(),
                free.iter().map(|d| describe(d)).collect::<Vec<_>>().join(", "),
                if busy.is_empty() { String::new() } else { format!("; {}", busy.join("; ")) },
                if free.len() > count { "pin the targets with disks.serials" } else { "run keel from the rescue system and check that both drives are present" }
            )));
        }
        free
    } else {
        let mut v = Vec::new();
        for serial in &profile.disks.serials {
            let d = inv.disks.iter().find(|d| &d.serial == serial).ok_or_else(|| PlanError::Disks(pinned_missing(inv, profile, serial)))?;
            if d.in_use() {
                return Err(PlanError::Disks(format!(
                    "pinned disk {} is in use: {}; keel never writes to a disk the running system uses",
                    describe(d),
                    d.usage_summary()
                )));
            }
            v.push(d);
        }
        v
    };
    for d in &chosen {
        if d.serial.is_empty() || d.stable_id.is_none() {
            return Err(PlanError::Disks(format!(
                "disk {} has no serial or no /dev/disk/by-id name: keel names target disks by serial and will not touch it",
                d.name
            )));
        }
        if d.read_only {
            return Err(PlanError::Disks(format!("disk {} is read-only", describe(d))));
        }
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests;
