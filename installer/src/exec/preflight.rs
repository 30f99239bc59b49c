//! Everything checked before a disk is touched: root, tools, ZFS, and that every target is the
//! disk the plan names (by serial), free, and what it holds now.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use super::checks::{fs_type, s};
use super::pools;
use super::host::{command_line, Host, HostError};
use crate::hardware::Inventory;
use crate::plan::{Group, Plan, Step};

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("keel install must run as root (the Hetzner rescue system logs you in as root)")]
    NotRoot,
    #[error("missing tools: {}. Install them (Debian packages: {}) and run keel again", .missing.join(", "), .packages.join(" "))]
    MissingTools { missing: Vec<String>, packages: Vec<String> },
    #[error("ZFS is not available here: {why}. keel needs OpenZFS to create the pools and brings its own: keel-live (`keel install --live DIR`, the folder scripts/live/build.sh makes: keel switches to it by kexec), or boot keel-live by PXE from the registry. A rescue system with OpenZFS built in works too (on Debian 12 with its own kernel: `apt-get install zfs-dkms zfsutils-linux` from contrib, then `modprobe zfs`)")]
    NoZfs { why: String },
    #[error("this system's OpenZFS ({here}) cannot make pools limited to the feature set {set} that the profile's zfs.compatibility names ({why}): it is older than the installed node's OpenZFS, or the name is wrong. Run keel from a system with an OpenZFS at least as new as that set, or name the node's set in zfs.compatibility")]
    UnknownFeatureSet { set: String, here: String, why: String },
    #[error("disk {label} (serial {serial}) is not here: {by_id} does not exist. Is the drive present? `keel detect` lists the drives")]
    TargetMissing { label: String, serial: String, by_id: String },
    #[error("serial mismatch for disk {label}: {by_id} points to {dev}, whose serial is \"{found}\"; the plan says \"{serial}\". keel writes only to the disks the plan names")]
    SerialMismatch { label: String, by_id: String, dev: String, found: String, serial: String },
    #[error("disk {label} ({dev}, serial {serial}) is in use: {usage}. keel never writes to a disk the running system uses: run it from the rescue system, unmount, swapoff or stop what holds it")]
    InUse { label: String, dev: String, serial: String, usage: String },
    #[error("ZFS pool {pool} is imported and lives on the target disks ({devices}). Export it (`zpool export {pool}`) or destroy it, then run keel again")]
    PoolImported { pool: String, devices: String },
    #[error("a pool named {pool} is imported from a disk outside the plan: {what}. keel never imports, writes or exports a pool that is not the plan's, and cannot create its own {pool} beside it: check what it is, export it (`zpool export {pool}`) and run keel again")]
    ForeignPoolImported { pool: String, what: String },
    #[error("disks outside the plan carry pools named like this install's own:\n  {pools}\nThe installed node's initramfs imports its root pool by name, so its first boot could take the old pool for its own. Do one of: remove that disk; clear its ZFS labels with --clear-zfs-labels {serials} (this destroys those pools; it is confirmed like the targets: type the host name, or add the serial to --confirm-serials); or, accepting that risk, pass --accept-foreign-pools")]
    ForeignPools { pools: String, serials: String },
    #[error("the target disks hold data: {found}. They will be destroyed: pass --wipe-existing to confirm that this is intended")]
    ExistingData { found: String },
    #[error("{tool} is too old: {why}")]
    OldTool { tool: String, why: String },
    #[error("{0}")]
    Image(String),
    #[error("preflight: {0}")]
    Host(#[from] HostError),
}

/// What preflight learned: the devices behind the plan's by-id paths, and what is on them.
#[derive(Debug, Clone, Default)]
pub struct Preflight {
    /// by-id path -> resolved device (`/dev/nvme0n1`).
    pub devices: BTreeMap<String, String>,
    /// Per target serial: what blkid finds on the disk and its partitions (`nvme0n1p3: zfs_member`).
    pub contents: BTreeMap<String, Vec<String>>,
    /// Per target serial: the partition table type (`gpt`, `dos`), if any.
    pub tables: BTreeMap<String, String>,
    /// Tool versions (first line of each version command).
    pub versions: Vec<String>,
    /// Whether pool steps will run (so ZFS was required).
    pub needs_zfs: bool,
    /// Pools (imported or importable) with no member on a target disk: left alone.
    pub foreign: Vec<ForeignPool>,
}

/// A pool outside the targets, and the disks it is on.
#[derive(Debug, Clone)]
pub struct ForeignPool {
    pub found: pools::Found,
    /// `sda (serial LABOLD0003)` for each disk a member is on.
    pub disks: Vec<String>,
    pub serials: Vec<String>,
    /// All its disks are named by --clear-zfs-labels.
    pub cleared: bool,
}

/// Debian package of each tool keel runs.
pub(crate) fn package_of(tool: &str) -> &'static str {
    match tool {
        "sgdisk" => "gdisk",
        "partprobe" => "parted",
        "mkfs.vfat" => "dosfstools",
        "udevadm" => "udev",
        "zpool" | "zfs" | "zgenhostid" => "zfsutils-linux",
        "find" => "findutils",
        "sfdisk" => "fdisk",
        "mmdebstrap" => "mmdebstrap",
        "curl" => "curl",
        "chroot" | "cp" | "mkdir" | "rm" | "ln" | "sync" => "coreutils",
        _ => "util-linux",
    }
}

/// Runs every check. `steps` are the steps this run will execute; `wiped` is true when the
/// journal says the wipe already happened (then what is on the disks is keel's own work).
/// `accept_foreign` lets exported pools named like the plan's stay on disks outside it
/// (`--accept-foreign-pools`).
pub fn run(host: &mut dyn Host, plan: &Plan, live: &Inventory, steps: &[&Step], wiped: bool, wipe_existing: bool, accept_foreign: bool) -> Result<Preflight, PreflightError> {
    if !host.is_root() {
        return Err(PreflightError::NotRoot);
    }
    let mut report = Preflight { needs_zfs: steps.iter().any(|s| matches!(s.group, Group::Pools | Group::Datasets) || s.id == "os.image"), ..Default::default() };

    // Tools: every program the steps run, plus what the checks use.
    let mut tools: BTreeSet<String> = ["blkid", "sfdisk"].iter().map(|s| s.to_string()).collect();
    for s in steps.iter().filter(|s| s.group != Group::Preflight) {
        for c in &s.commands {
            tools.insert(c[0].clone());
        }
    }
    if report.needs_zfs {
        tools.extend(["zpool".to_string(), "zfs".to_string()]);
    }
    if tools.contains("mount") {
        tools.insert("mountpoint".into());
    }
    if tools.contains("chroot") {
        tools.insert("find".into()); // the initramfs check
    }
    // ZFS first, without running its commands: a rescue system's `zpool` may be a script that
    // asks whether to build OpenZFS (the version commands below would run it)
    if report.needs_zfs {
        if let Some(why) = pools::zfs_unusable(host, true)? {
            return Err(PreflightError::NoZfs { why });
        }
    }
    let missing: Vec<String> = tools.iter().filter(|t| !host.has_program(t)).cloned().collect();
    if !missing.is_empty() {
        let packages: BTreeSet<&str> = missing.iter().map(|t| package_of(t)).collect();
        return Err(PreflightError::MissingTools { missing, packages: packages.into_iter().map(String::from).collect() });
    }
    let timeout = Duration::from_secs(30);
    for s in steps.iter().filter(|s| s.id == "preflight.tools") {
        for c in s.commands.iter().filter(|c| c[0] != "zpool" || report.needs_zfs) {
            let out = host.run(c, timeout)?;
            let text = if out.stdout.trim().is_empty() { &out.stderr } else { &out.stdout };
            report.versions.push(format!("{}: {}", command_line(c), text.lines().next().unwrap_or("").trim()));
        }
    }
    // `udevadm wait` (the swap zvol's device node) came with systemd-udev 251
    if steps.iter().any(|s| s.commands.iter().any(|c| c.len() > 1 && c[0] == "udevadm" && c[1] == "wait")) {
        let out = host.run(&s(&["udevadm", "wait", "--help"]), timeout)?;
        if !out.success() {
            return Err(PreflightError::OldTool {
                tool: "udevadm".into(),
                why: format!("`udevadm wait` failed ({}); keel needs udev 251 or newer (Debian 12 has 252): run keel from a Debian 12 based rescue system", out.stderr_tail(1)),
            });
        }
    }
    // pools this system creates get only the features of the set the profile names (the
    // installed node's OpenZFS): this OpenZFS must know that set, else it is older than the node's
    let compatibility = steps.iter().filter(|s| s.group == Group::Pools).flat_map(|s| s.commands.iter().flatten()).find_map(|a| a.strip_prefix("compatibility=")).map(String::from);
    if let Some(set) = &compatibility {
        if let Err(why) = pools::feature_set(host, set) {
            let here = host.read_file(Path::new(super::engine::ZFS_VERSION_FILE)).unwrap_or_default();
            return Err(PreflightError::UnknownFeatureSet { set: set.clone(), here: here.trim().to_string(), why });
        }
    }
    // an image written by a newer ZFS than this module may not be receivable
    if let (Some(img), true) = (&plan.image, report.needs_zfs) {
        let here = host.read_file(Path::new(super::engine::ZFS_VERSION_FILE))?;
        crate::image::check_zfs(&img.manifest, &here).map_err(|e| PreflightError::Image(e.to_string()))?;
        // and its stream needs no feature the new pool will not have
        if let Some(set) = &compatibility {
            let want = pools::feature_set(host, set).ok().flatten();
            let has = pools::feature_set(host, &img.manifest.compatibility).ok().flatten();
            crate::image::check_compatibility(&img.manifest, set, want.as_ref(), has.as_ref()).map_err(|e| PreflightError::Image(e.to_string()))?;
        }
    }

    // Targets: present, the right serial, free.
    for t in &plan.targets {
        let dev = match host.resolve(Path::new(&t.by_id)) {
            Ok(d) => d,
            Err(_) => return Err(PreflightError::TargetMissing { label: t.label.clone(), serial: t.serial.clone(), by_id: t.by_id.clone() }),
        };
        let name = dev.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let dev_path = dev.display().to_string();
        let disk = live.disk(&name);
        let found = disk.map(|d| d.serial.clone()).unwrap_or_default();
        if found != t.serial {
            return Err(PreflightError::SerialMismatch { label: t.label.clone(), by_id: t.by_id.clone(), dev: dev_path, found, serial: t.serial.clone() });
        }
        let disk = disk.expect("serial matched");
        if disk.in_use() {
            return Err(PreflightError::InUse {
                label: t.label.clone(),
                dev: dev_path,
                serial: t.serial.clone(),
                usage: disk.usage_summary(),
            });
        }
        // What is on it now: the disk itself and every partition.
        let mut contents = Vec::new();
        let mut devs = vec![dev_path.clone()];
        devs.extend(disk.partitions.iter().map(|p| format!("/dev/{}", p.name)));
        for d in &devs {
            let ty = fs_type(host, d)?;
            if !ty.is_empty() {
                contents.push(format!("{}: {ty}", d.trim_start_matches("/dev/")));
            }
        }
        let table = host.run(&["blkid".into(), "-p".into(), "-o".into(), "value".into(), "-s".into(), "PTTYPE".into(), dev_path.clone()], timeout)?;
        report.tables.insert(t.serial.clone(), table.stdout.trim().to_string());
        report.contents.insert(t.serial.clone(), contents);
        report.devices.insert(t.by_id.clone(), dev_path);
    }

    foreign_pools(host, plan, live, &mut report, accept_foreign)?;

    if !wiped {
        // A pool imported from the targets would be destroyed under its users' feet.
        if pools::zfs_ready(host) {
            let out = host.run(&["zpool".into(), "status".into(), "-P".into()], timeout)?;
            let mut pool = String::new();
            let mut on_targets: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for line in out.stdout.lines() {
                let l = line.trim();
                if let Some(p) = l.strip_prefix("pool:") {
                    pool = p.trim().to_string();
                } else if let Some(path) = l.split_whitespace().next().filter(|p| p.starts_with("/dev/")) {
                    let real = host.resolve(Path::new(path)).map(|p| p.display().to_string()).unwrap_or_else(|_| path.to_string());
                    if report.devices.values().any(|d| real.starts_with(d.as_str())) {
                        on_targets.entry(pool.clone()).or_default().push(real);
                    }
                }
            }
            if let Some((pool, devices)) = on_targets.into_iter().next() {
                return Err(PreflightError::PoolImported { pool, devices: devices.join(", ") });
            }
        }
        let found: Vec<String> = report.contents.values().flatten().cloned().collect();
        if !found.is_empty() && !wipe_existing {
            return Err(PreflightError::ExistingData { found: found.join(", ") });
        }
    }
    Ok(report)
}

/// Every pool on disks outside the targets (imported ones from `zpool list`, exported ones from
/// a read-only `zpool import` scan): listed in the report. One that carries a name this plan
/// gives its own pools is refused: imported, always (keel cannot create its own beside it);
/// exported, unless its disks are cleared by the plan or the operator accepts the risk.
fn foreign_pools(host: &mut dyn Host, plan: &Plan, live: &Inventory, report: &mut Preflight, accept: bool) -> Result<(), PreflightError> {
    if !pools::zfs_ready(host) {
        return Ok(());
    }
    let mut all = pools::all_imported(host)?;
    let scan = host.run(&s(&["zpool", "import"]), Duration::from_secs(120))?;
    if scan.success() {
        all.extend(pools::parse_scan(&scan.stdout));
    }
    let target_devs: Vec<String> = report.devices.values().cloned().collect();
    let on = |dev: &str, disk: &str| dev == disk || dev.strip_prefix(disk).is_some_and(|rest| rest.trim_start_matches('p').chars().all(|c| c.is_ascii_digit()) && !rest.is_empty());
    let mut blocking = Vec::new();
    let mut serials = BTreeSet::new();
    for f in all {
        let devs: Vec<String> = f.members.iter().map(|m| pools::canonical(host, m)).collect();
        if devs.iter().any(|d| target_devs.iter().any(|t| on(d, t))) {
            continue; // on the targets: the wipe's business (and the checks below)
        }
        let mut disks = Vec::new();
        let mut these = Vec::new();
        for d in &devs {
            if let Some(disk) = live.disks.iter().find(|k| on(d, &format!("/dev/{}", k.name))) {
                let label = format!("{} (serial {})", disk.name, disk.serial);
                if !disks.contains(&label) {
                    disks.push(label);
                    these.push(disk.serial.clone());
                }
            }
        }
        let cleared = !these.is_empty() && these.iter().all(|s| plan.cleared.iter().any(|c| &c.serial == s));
        let planned_name = crate::plan::POOLS.iter().any(|(p, _)| *p == f.name);
        if f.imported && (planned_name || cleared) {
            return Err(PreflightError::ForeignPoolImported { pool: f.name.clone(), what: f.describe() });
        }
        if planned_name && !cleared && !accept {
            blocking.push(format!("{} holds pool {}", if disks.is_empty() { "a disk".to_string() } else { disks.join(", ") }, f.describe()));
            serials.extend(these.iter().cloned());
        }
        report.foreign.push(ForeignPool { found: f, disks, serials: these, cleared });
    }
    if !blocking.is_empty() {
        return Err(PreflightError::ForeignPools { pools: blocking.join("\n  "), serials: serials.into_iter().collect::<Vec<_>>().join(" --clear-zfs-labels ") });
    }
    Ok(())
}
