//! `keel disk replace`: after a drive of the mirror died and the provider swapped it, the new
//! drive gets the survivor's partition table (new GUIDs), takes the dead member's place in both
//! pools, and carries the ESP and the boot loader again. Pure: from the inventory, the pools'
//! status and the survivor's table this finds who is who, refuses what would endanger the
//! survivor, and lists the steps (`exec::replace` runs them through the journal).
//!
//! Naming: the survivor and the new drive by serial (their by-id paths come from the
//! inventory); the dead member by its vdev GUID, never by a device name.
//!
//! On the running node (booted degraded from the survivor) the pools are imported and the
//! files and the boot loader are the running system's. In a rescue system (its root is not
//! on ZFS) each pool is imported by its GUID from the survivor's partition under
//! [`TARGET_ROOT`], the node's root mounted there for the boot loader and the profile copy
//! (run inside it by chroot), and both pools exported again at the end.

pub mod status;

use serde::Deserialize;

use crate::exec::checks::type_guid;
use crate::hardware::{Disk, FirmwareMode, Inventory};
use crate::image::ROOT_DATASET;
use crate::plan::{partition_command, Group, Layout, PartitionSpec, Step, POOLS, TARGET_ROOT};
use crate::profile::{Bootloader, Profile};
use crate::render;
use crate::size::ByteSize;
use status::{disk_of, serial_in_by_id, Leaf, PoolStatus};

/// A drive by serial, with the by-id path every command uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drive {
    pub serial: String,
    pub model: String,
    pub size: ByteSize,
    pub kernel_name: String,
    pub by_id: String,
}

impl Drive {
    fn of(d: &Disk) -> Option<Drive> {
        let id = d.stable_id.as_ref()?;
        Some(Drive { serial: d.serial.clone(), model: d.model.clone(), size: d.size_bytes, kernel_name: d.name.clone(), by_id: format!("/dev/disk/by-id/{id}") })
    }
    pub fn part(&self, n: u32) -> String {
        format!("{}-part{n}", self.by_id)
    }
}

/// Where one pool stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Member {
    /// The dead member, to be replaced by the new drive's partition.
    Replace { old: Leaf },
    /// The pool has only the survivor (the dead member was detached): the new partition is
    /// attached to it.
    Attach,
    /// The new drive's partition is in the pool already (a run that got that far).
    Present { resilvering: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PoolPlan {
    pub pool: String,
    pub partition: u32,
    pub survivor: Leaf,
    pub member: Member,
}

/// Who is who: found from the pools and the inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Members {
    pub survivor: Drive,
    pub new: Drive,
    /// The serial of the drive that died, when its old path or the profile tells.
    pub old_serial: Option<String>,
    /// The dead member's position among the leaves (0: first), for the ESP's label.
    pub position: usize,
    pub pools: Vec<PoolPlan>,
    /// The new drive has partitions now.
    pub new_has_partitions: bool,
}

impl Members {
    /// Some pool holds the new drive already: the replace was started (by keel or by hand).
    pub fn started(&self) -> bool {
        self.pools.iter().any(|p| matches!(p.member, Member::Present { .. }))
    }
}

pub(crate) fn names(inv: &Inventory) -> String {
    inv.disks.iter().filter(|d| !d.serial.is_empty()).map(|d| format!("{} ({} {}, {})", d.serial, d.name, d.model, d.size_bytes)).collect::<Vec<_>>().join(", ")
}

/// The disk of the inventory a leaf's path is on (by its by-id names).
fn disk_of_leaf<'a>(inv: &'a Inventory, leaf: &Leaf) -> Option<&'a Disk> {
    let path = leaf.path.as_deref()?;
    let disk = disk_of(path).trim_start_matches("/dev/disk/by-id/");
    inv.disks.iter().find(|d| d.by_id.iter().any(|b| b == disk) || d.stable_id.as_deref() == Some(disk))
}

/// Finds the survivor, the new drive and each pool's dead member; refuses anything that
/// would put the survivor's data at risk or replace the wrong thing.
pub fn find(inv: &Inventory, profile: &Profile, pools: &[PoolStatus], new_serial: &str) -> Result<Members, String> {
    let new_disk = inv.disks.iter().find(|d| d.serial == new_serial).ok_or_else(|| {
        format!("no drive with serial {new_serial} in this machine; drives found: {}. Give the new drive's serial (`keel detect` lists them)", names(inv))
    })?;
    let new = Drive::of(new_disk).ok_or_else(|| format!("drive {new_serial} ({}) has no /dev/disk/by-id name: keel names drives by serial and will not write to it", new_disk.name))?;
    let mut survivor: Option<Drive> = None;
    let mut plans = Vec::new();
    let mut old_paths = Vec::new();
    let mut position = None;
    for &(pool, partition) in POOLS {
        let st = pools.iter().find(|p| p.name == pool).ok_or_else(|| {
            format!("pool {pool} is not imported. keel disk replace runs on the node itself (booted degraded from the surviving drive), where both pools are imported")
        })?;
        let on_new: Vec<&Leaf> = st.leaves.iter().filter(|l| disk_of_leaf(inv, l).is_some_and(|d| d.serial == new_serial)).collect();
        let others: Vec<&Leaf> = st.leaves.iter().filter(|l| !on_new.iter().any(|n| n.guid == l.guid)).collect();
        let online: Vec<&Leaf> = others.iter().copied().filter(|l| l.state == "ONLINE" && !l.replacing).collect();
        // a new drive that is the pool's only healthy member is the survivor, named by mistake
        if !on_new.is_empty() && online.is_empty() && on_new.iter().any(|l| l.state == "ONLINE" && !l.replacing) {
            return Err(format!(
                "{new_serial} is the surviving member of {pool} ({}, ONLINE): it holds the only good copy of the data. Name the drive that was put in for the dead one (`keel detect` shows the serials); nothing was written",
                on_new[0].path.as_deref().unwrap_or("")
            ));
        }
        if online.len() != 1 {
            return Err(match online.len() {
                0 => format!("{pool} has no ONLINE member besides {new_serial} ({}): there is no healthy survivor to copy from; nothing was written", describe(&st.leaves)),
                _ if on_new.is_empty() => format!(
                    "{pool} has {} ONLINE members ({}): no member is missing, nothing to replace. {new_serial} is not in it; nothing was written",
                    online.len(), describe(&st.leaves)
                ),
                _ => format!("{pool} has {} ONLINE members besides {new_serial}: not the two-drive mirror keel installs ({}); nothing was written", online.len(), describe(&st.leaves)),
            });
        }
        let surv_leaf = online[0].clone();
        let surv_disk = disk_of_leaf(inv, &surv_leaf).ok_or_else(|| format!("{pool}'s ONLINE member {} is on no drive keel can name by serial", surv_leaf.any_path().unwrap_or(&surv_leaf.guid)))?;
        let d = Drive::of(surv_disk).ok_or_else(|| format!("{pool}'s survivor {} has no by-id name", surv_disk.name))?;
        if !surv_leaf.path.as_deref().is_some_and(|p| p.ends_with(&format!("-part{partition}"))) {
            return Err(format!("{pool}'s ONLINE member is {}, not partition {partition} of a drive: not keel's layout", surv_leaf.path.as_deref().unwrap_or("")));
        }
        match &survivor {
            Some(s) if s.serial != d.serial => {
                return Err(format!("the healthy members are on two drives: rpool on {}, {pool} on {}; a replace needs one drive ONLINE in both pools; nothing was written", s.serial, d.serial));
            }
            _ => survivor = Some(d),
        }
        let dead: Vec<&Leaf> = others.iter().copied().filter(|l| l.guid != surv_leaf.guid).collect();
        let member = if let Some(n) = on_new.first() {
            Member::Present { resilvering: n.replacing || n.resilvering || st.resilvering() }
        } else {
            match dead.as_slice() {
                [] => Member::Attach,
                [old] => {
                    if let Some(p) = old.any_path() {
                        old_paths.push(p.to_string());
                    }
                    Member::Replace { old: (*old).clone() }
                }
                _ => return Err(format!("{pool} has {} members that are not ONLINE ({}): more than the one drive keel replaces; nothing was written", dead.len(), describe(&st.leaves))),
            }
        };
        if let Member::Replace { old } = &member {
            position.get_or_insert(old.index);
        }
        if let Some(n) = on_new.first() {
            position.get_or_insert(n.index);
        }
        plans.push(PoolPlan { pool: pool.to_string(), partition, survivor: surv_leaf, member });
    }
    let survivor = survivor.expect("two pools looked at");
    if survivor.serial == new_serial {
        return Err(format!("{new_serial} is the survivor; nothing was written"));
    }
    let pinned_old = profile.disks.serials.iter().find(|s| **s != survivor.serial && **s != new_serial).cloned();
    let old_serial = pinned_old.or_else(|| old_paths.iter().find_map(|p| serial_in_by_id(p)).map(String::from));
    let position = position.unwrap_or(if plans[0].survivor.index == 0 { 1 } else { 0 });
    Ok(Members { survivor, new, old_serial, position, pools: plans, new_has_partitions: !new_disk.partitions.is_empty() })
}

fn describe(leaves: &[Leaf]) -> String {
    leaves.iter().map(|l| format!("{} {}", l.any_path().unwrap_or(&l.guid), l.state)).collect::<Vec<_>>().join(", ")
}

#[derive(Deserialize)]
struct Dump {
    partitiontable: Table,
}

#[derive(Deserialize)]
struct Table {
    label: String,
    #[serde(default)]
    sectorsize: Option<u32>,
    #[serde(default)]
    lastlba: Option<u64>,
    #[serde(default)]
    partitions: Vec<Part>,
}

#[derive(Deserialize)]
struct Part {
    node: String,
    start: u64,
    size: u64,
    #[serde(rename = "type")]
    type_guid: String,
    #[serde(default)]
    name: Option<String>,
}

/// The install's partitions, by number: (name, sgdisk type code, purpose).
fn known(number: u32) -> Option<(&'static str, &'static str, &'static str)> {
    match number {
        4 => Some(("bios-boot", "EF02", "BIOS boot (GRUB core image for legacy boot)")),
        1 => Some(("esp", "EF00", "EFI system partition (vfat), kept in sync on both drives")),
        2 => Some(("rpool", "BF01", "rpool: ZFS mirror, root file system and swap zvol")),
        3 => Some(("datapool", "BF01", "datapool: ZFS mirror for guests, backups and templates")),
        _ => None,
    }
}

/// The survivor's partition table (`sfdisk --json DEV`) as a layout to write on the new drive:
/// it must be keel's (the partitions an install makes, by number, type and name).
pub fn survivor_layout(sfdisk_json: &str, dev: &str) -> Result<Layout, String> {
    let dump: Dump = serde_json::from_str(sfdisk_json).map_err(|e| format!("the survivor's partition table could not be read (sfdisk --json {dev}: {e})"))?;
    let t = dump.partitiontable;
    if t.label != "gpt" {
        return Err(format!("the survivor {dev} has a {} partition table, not GPT: not a drive keel installed", t.label));
    }
    let lbs = t.sectorsize.unwrap_or(512);
    let _ = t.lastlba;
    let mut parts: Vec<PartitionSpec> = Vec::new();
    for p in &t.partitions {
        let number = p.node.trim_start_matches(dev).trim_start_matches('p').parse::<u32>().map_err(|_| format!("partition {} of {dev}: no number", p.node))?;
        let (name, code, purpose) = known(number).ok_or_else(|| format!("the survivor {dev} has a partition {number}: keel's layout has 1-4 only"))?;
        if !p.type_guid.eq_ignore_ascii_case(type_guid(code)) || p.name.as_deref().is_some_and(|n| n != name) {
            return Err(format!(
                "partition {number} of the survivor {dev} is type {} named {:?}; keel's layout has type {} named {name}: not a table keel wrote",
                p.type_guid, p.name.as_deref().unwrap_or(""), type_guid(code)
            ));
        }
        parts.push(PartitionSpec { number, name, type_code: code, first_sector: p.start, last_sector: p.start + p.size - 1, size_bytes: ByteSize(p.size * lbs as u64), purpose });
    }
    for n in [1, 2, 3] {
        if !parts.iter().any(|p| p.number == n) {
            return Err(format!("the survivor {dev} has no partition {n}: not keel's layout"));
        }
    }
    parts.sort_by_key(|p| p.first_sector);
    Ok(Layout { logical_block_size: lbs, partitions: parts })
}

/// Bytes a drive needs for the layout: up to its last partition, and the backup GPT after it.
pub fn bytes_needed(layout: &Layout) -> u64 {
    let lbs = layout.logical_block_size as u64;
    let last = layout.partitions.iter().map(|p| p.last_sector).max().unwrap_or(0);
    (last + 1 + 1 + 16 * 1024 / lbs) * lbs
}

/// The line of the profile that pins the dead drive's serial, and the same line with the new
/// serial: (1-based line number, line, line after).
pub fn profile_line(text: &str, old: &str, new: &str) -> Option<(usize, String, String)> {
    let quoted = format!("\"{old}\"");
    let mut in_disks = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_disks = t == "[disks]";
            continue;
        }
        if in_disks && t.starts_with("serials") && line.contains(&quoted) {
            return Some((i + 1, line.to_string(), line.replacen(&quoted, &format!("\"{new}\""), 1)));
        }
    }
    None
}

/// The profile's text with that one line changed.
pub fn profile_edited(text: &str, old: &str, new: &str) -> Option<String> {
    let (n, _, after) = profile_line(text, old, new)?;
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i + 1 == n {
            out.push_str(&after);
            if line.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(line);
        }
    }
    Some(out)
}

/// In a rescue system: a pool as found exported on the survivor's partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RescuePool {
    pub pool: String,
    pub guid: String,
    /// The survivor's by-id partition it is imported from (`zpool import -d`).
    pub survivor_part: String,
}

/// Imports a pool found in the rescue system for the replace: by GUID, from the survivor's
/// partition only, under the target root, nothing mounted.
pub fn import_command(p: &RescuePool, readonly: bool) -> Vec<String> {
    let mut c = cmd(&["zpool", "import"]);
    if readonly {
        c.extend(cmd(&["-o", "readonly=on"]));
    }
    c.extend(cmd(&["-N", "-f", "-R", TARGET_ROOT, "-d", &p.survivor_part, &p.guid]));
    c
}

pub struct ReplacePlan {
    pub hostname: String,
    /// Empty on the running node; in a rescue system, the pools it imports.
    pub rescue: Vec<RescuePool>,
    pub members: Members,
    pub layout: Layout,
    pub steps: Vec<Step>,
    /// The profile line to change (pinned serials), when the profile pins the dead drive.
    pub profile_change: Option<(usize, String, String)>,
}

/// Where the replace journal lives (one per new drive).
pub fn journal_name(new_serial: &str) -> String {
    format!("disk-replace-{}.jsonl", new_serial.replace('/', "_"))
}

fn cmd(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn step(id: &str, group: Group, title: String, done_when: &str, disks: Vec<String>) -> Step {
    Step { id: id.into(), group, title, done_when: done_when.into(), disks, commands: Vec::new(), files: Vec::new(), copies: Vec::new(), checksums: Vec::new() }
}

/// The steps of the replace: on the running node (`rescue` empty: root `/`), or in a rescue
/// system that imports `rescue` (root [`TARGET_ROOT`]). `profile_text` is the profile's text
/// (on the node its copy, `/etc/keel/profile.toml`).
pub fn plan(m: Members, layout: Layout, p: &Profile, profile_text: &str, firmware: FirmwareMode, wipe_existing: bool, rescue: Vec<RescuePool>) -> Result<ReplacePlan, String> {
    let need = bytes_needed(&layout);
    if m.new.size.0 < need {
        return Err(format!(
            "the new drive {} holds {}, the survivor's partitions need {}: it is too small for the mirror; ask for a drive at least as large as {} ({}); nothing was written",
            m.new.serial, m.new.size, ByteSize(need), m.survivor.serial, m.survivor.size
        ));
    }
    let new = m.new.clone();
    let label = (b'A' + m.position.min(25) as u8) as char;
    let mut steps = Vec::new();
    let in_rescue = !rescue.is_empty();
    // the node's files: its own root, or its root mounted in the rescue system
    let root = if in_rescue { TARGET_ROOT } else { "" };
    if in_rescue {
        let mut s = step("replace.import", Group::Pools, format!(
            "import {} by GUID from the survivor's partitions under {TARGET_ROOT}, nothing mounted (this is a rescue system)",
            rescue.iter().map(|r| format!("{} ({})", r.pool, r.guid)).collect::<Vec<_>>().join(" and ")
        ), "each pool is imported with its GUID, writable", vec![m.survivor.serial.clone()]);
        s.commands = rescue.iter().map(|r| import_command(r, false)).collect();
        steps.push(s);
    }
    if wipe_existing && !m.started() {
        let mut s = step("replace.wipe", Group::Wipe, format!("clear ZFS labels, signatures and the partition table of the new drive {} (--wipe-existing)", new.serial),
            "never checked: runs until the journal records it", vec![new.serial.clone()]);
        for part in 1..=4 {
            s.commands.push(cmd(&["wipefs", "--all", "--force", &new.part(part)]));
        }
        s.commands.push(cmd(&["wipefs", "--all", "--force", &new.by_id]));
        s.commands.push(cmd(&["sgdisk", "--zap-all", &new.by_id]));
        steps.push(s);
    }
    // Once the new drive is in a pool, its table and ESP are in use: those steps only check,
    // they never write again (whatever a check finds)
    let in_pools = m.started();
    let note = if in_pools { " (the drive is in the pools already: checked, never written again)" } else { "" };
    let mut s = step("replace.partition", Group::Partition, format!("partition the new drive {} like the survivor {} (same sectors, types and names; new GUIDs){note}", new.serial, m.survivor.serial),
        "its table equals the survivor's (sfdisk --json)", vec![new.serial.clone()]);
    if !in_pools {
        s.commands.push(partition_command(&layout, &new.by_id));
    }
    steps.push(s);
    let mut s = step("replace.settle", Group::Partition, "kernel re-reads the table; the new drive's by-id partition links appear".into(), "every -partN link exists", vec![new.serial.clone()]);
    s.commands = vec![cmd(&["partprobe", &new.by_id]), cmd(&["udevadm", "settle", "--timeout=30"])];
    steps.push(s);
    let mut s = step("replace.format-esp", Group::Partition, format!("format the new drive's EFI system partition (vfat, ESP-{label}){note}"), "blkid reports TYPE=vfat", vec![new.serial.clone()]);
    if !in_pools {
        s.commands = vec![cmd(&["mkfs.vfat", "-F", "32", "-n", &format!("ESP-{label}"), &new.part(1)])];
    }
    steps.push(s);
    for pp in &m.pools {
        let target = new.part(pp.partition);
        let (title, commands) = match &pp.member {
            Member::Replace { old } => (
                format!("{}: replace the dead member {} (GUID {}) by {target}", pp.pool, old.any_path().unwrap_or("?"), old.guid),
                vec![cmd(&["zpool", "replace", &pp.pool, &old.guid, &target])],
            ),
            Member::Attach => (
                format!("{}: attach {target} to the survivor's {} (a mirror again)", pp.pool, pp.survivor.path.as_deref().unwrap_or("")),
                vec![cmd(&["zpool", "attach", &pp.pool, &pp.survivor.guid, &target])],
            ),
            Member::Present { .. } => (format!("{}: {target} is a member already", pp.pool), vec![]),
        };
        let mut s = step(&format!("replace.{}", pp.pool), Group::Pools, title, "the new partition is a member of the pool (resilvering or done)", vec![new.serial.clone()]);
        s.commands = commands;
        steps.push(s);
    }
    steps.push(step("replace.resilver", Group::Pools, "wait for the resilver of both pools (progress shown); the new members ONLINE".into(),
        "no resilver runs and every member of both pools is ONLINE", vec![new.serial.clone()]));
    // the boot loader as the install put it there
    if in_rescue {
        let mut s = step("replace.mount", Group::Os, format!("mount the node's root ({ROOT_DATASET}) at {TARGET_ROOT} and bind /dev, /proc, /sys and /run into it"),
            "the root and /dev are mounted there (made again when gone: nothing on a disk)", vec![]);
        s.commands.push(cmd(&["zfs", "mount", ROOT_DATASET]));
        for fs in ["dev", "proc", "sys", "run"] {
            s.commands.push(cmd(&["mount", "--make-private", "--rbind", &format!("/{fs}"), &format!("{TARGET_ROOT}/{fs}")]));
        }
        steps.push(s);
    }
    let mut disks: Vec<(usize, String)> = vec![(m.pools[0].survivor.index, m.survivor.by_id.clone()), (m.position, new.by_id.clone())];
    disks.sort();
    let by_ids: Vec<String> = disks.into_iter().map(|(_, d)| d).collect();
    let mut s = step("replace.boot", Group::Boot, match p.os.bootloader {
        Bootloader::ProxmoxBootTool => format!("proxmox-boot-tool on the new drive's ESP; the dead drive's ESP leaves its list"),
        Bootloader::Grub => format!("GRUB on the new drive, kernels on its ESP (keel-boot-sync, as the install)"),
    }, "never checked: runs until the journal records it (it can run again)", vec![new.serial.clone()]);
    s.files = render::boot::files(p, &by_ids).into_iter().filter(|f| f.path == render::boot::BOOT_DISKS).map(|mut f| {
        f.path = format!("{root}{}", f.path);
        f
    }).collect();
    // inside the node's root in a rescue system
    let within = |c: Vec<String>| if in_rescue && c[0] != "udevadm" { [cmd(&["chroot", TARGET_ROOT]), c].concat() } else { c };
    match p.os.bootloader {
        Bootloader::ProxmoxBootTool => {
            s.commands.push(within(cmd(&["proxmox-boot-tool", "format", &new.part(1), "--force"])));
            s.commands.push(within(cmd(&["udevadm", "settle", "--timeout=30"])));
            s.commands.push(within(cmd(&["proxmox-boot-tool", "init", &new.part(1)])));
            s.commands.push(within(cmd(&["proxmox-boot-tool", "clean"])));
            if firmware == FirmwareMode::Uefi {
                s.commands.push(within(cmd(&[render::boot::NETBOOT_FIRST])));
            }
        }
        Bootloader::Grub => s.commands.push(within(cmd(&[render::boot::SYNC_SCRIPT, "install"]))),
    }
    steps.push(s);
    let profile_change = m.old_serial.as_deref().filter(|o| p.disks.serials.iter().any(|s| s == o)).and_then(|o| profile_line(profile_text, o, &new.serial));
    if let (Some(old), Some(_)) = (m.old_serial.as_deref(), &profile_change) {
        let mut s = step("replace.profile", Group::Config, format!("the node's copy of its profile pins {} in place of {old}", new.serial), "the file matches its digest", vec![]);
        let text = profile_edited(profile_text, old, &new.serial).expect("the line was found");
        s.files = vec![render::file(&format!("{root}{}", crate::plan::INSTALLED_PROFILE), 0o600, text)];
        steps.push(s);
    }
    if in_rescue {
        let mut s = step("replace.export", Group::Finish, format!("unmount {TARGET_ROOT} and export both pools: the node imports them at its next boot"),
            "neither pool is imported", vec![m.survivor.serial.clone(), new.serial.clone()]);
        s.commands.push(cmd(&["sync"]));
        s.commands.push(cmd(&["umount", "--recursive", TARGET_ROOT]));
        for r in rescue.iter().rev() {
            s.commands.push(cmd(&["zpool", "export", &r.pool]));
        }
        steps.push(s);
    }
    Ok(ReplacePlan { hostname: p.node.hostname.clone(), rescue, members: m, layout, steps, profile_change })
}

impl ReplacePlan {
    /// SHA-256 over what defines the replace (the drives and the layout; not the steps, which
    /// change once the new drive is in the pools): a journal of another replace is never
    /// continued.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let what = serde_json::to_vec(&(&self.members.survivor.serial, &self.members.new.serial, &self.members.new.by_id, &self.layout)).expect("serializes");
        crate::profile::hex_digest(&Sha256::digest(&what))
    }

    /// What is about to happen, for the operator to read before saying yes.
    pub fn describe(&self) -> String {
        let m = &self.members;
        let mut out = format!(
            "keel disk replace on {}:\n  survivor  {} {} ({}, {}) ONLINE in {}\n  new       {} {} ({}, {}){}\n",
            self.hostname,
            m.survivor.serial, m.survivor.kernel_name, m.survivor.model, m.survivor.size,
            m.pools.iter().map(|p| p.pool.as_str()).collect::<Vec<_>>().join(" and "),
            m.new.serial, m.new.kernel_name, m.new.model, m.new.size,
            if m.new_has_partitions && !m.started() { ": HAS PARTITIONS (everything on it is destroyed)" } else { "" },
        );
        for p in &m.pools {
            match &p.member {
                Member::Replace { old } => out.push_str(&format!("  {:<9} dead member GUID {} {} (was {}) -> {}\n", p.pool, old.guid, old.state, old.any_path().unwrap_or("?"), m.new.part(p.partition))),
                Member::Attach => out.push_str(&format!("  {:<9} only the survivor's member: {} is attached to it\n", p.pool, m.new.part(p.partition))),
                Member::Present { resilvering } => out.push_str(&format!("  {:<9} {} is a member already{}\n", p.pool, m.new.part(p.partition), if *resilvering { " (resilvering)" } else { "" })),
            }
        }
        if let Some(old) = &m.old_serial {
            out.push_str(&format!("  the drive that died: {old}\n"));
        }
        if !self.rescue.is_empty() {
            out.push_str(&format!("  this is a rescue system: {} imported from the survivor's partitions under {TARGET_ROOT}, the node's root mounted there, both exported at the end\n",
                self.rescue.iter().map(|r| format!("{} (GUID {}, {})", r.pool, r.guid, r.survivor_part)).collect::<Vec<_>>().join(" and ")));
        }
        out.push_str("steps:\n");
        for (i, s) in self.steps.iter().enumerate() {
            out.push_str(&format!("  [{}/{}] {}: {}\n", i + 1, self.steps.len(), s.id, s.title));
            for c in &s.commands {
                out.push_str(&format!("        $ {}\n", c.iter().map(|a| crate::plan::shell_quote(a)).collect::<Vec<_>>().join(" ")));
            }
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
