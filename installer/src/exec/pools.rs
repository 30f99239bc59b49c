//! Which ZFS pool is the plan's. Every Proxmox VE install names its pools `rpool` (and often
//! `datapool`), so a name says nothing about whose pool it is: a pool counts as the plan's only
//! when its leaf vdevs are exactly the plan's by-id partitions, and, once keel created it, only
//! with the GUID the journal recorded. Searches for exported pools name the plan's partitions
//! one by one (`zpool import -d PART -d PART`), never a whole directory, and imports go by GUID.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use super::checks::s;
use super::host::{Host, HostError, Output};
use crate::plan::{Plan, POOLS, TARGET_ROOT};

const TIMEOUT: Duration = Duration::from_secs(120);

/// A pool as `zpool import` (exported) or `zpool list`/`status` (imported) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    pub guid: String,
    /// `ONLINE`, `DEGRADED`, ... (for exported pools the scan's state line).
    pub state: String,
    /// Leaf vdevs as the command names them: a path (`zpool status -P`) or a device name
    /// (`zpool import` prints `nvme-...-part2`, `sda1`, or a GUID for a missing device).
    pub members: Vec<String>,
    pub imported: bool,
}

impl Found {
    /// "rpool (GUID 123, exported) on nvme-X-part2, nvme-Y-part2"
    pub fn describe(&self) -> String {
        format!("{} (GUID {}, {}{}) on {}", self.name, self.guid, if self.imported { "imported" } else { "exported" },
            if self.state.is_empty() { String::new() } else { format!(", {}", self.state) }, self.members.join(", "))
    }
}

/// The partition number a planned pool lives on (2 for rpool, 3 for datapool).
pub fn partition_of(pool: &str) -> Option<u32> {
    POOLS.iter().find(|(p, _)| *p == pool).map(|(_, n)| *n)
}

/// The plan's by-id partitions of `pool`, one per target disk.
pub fn planned_members(plan: &Plan, pool: &str) -> Vec<String> {
    match partition_of(pool) {
        Some(n) => plan.targets.iter().map(|t| t.part(n)).collect(),
        None => Vec::new(),
    }
}

/// Vdev names that group leaves (mirror-0, replacing-1, logs, ...): never a device.
pub(crate) fn is_group(name: &str) -> bool {
    ["mirror", "raidz", "draid", "spare", "replacing"].iter().any(|g| name.starts_with(g))
        || ["logs", "cache", "spares", "special", "dedup"].contains(&name)
}

/// Parses the listing of `zpool import` (no pool named): every pool it could import.
pub fn parse_scan(text: &str) -> Vec<Found> {
    let mut out: Vec<Found> = Vec::new();
    let mut in_config = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("pool:") {
            out.push(Found { name: name.trim().to_string(), guid: String::new(), state: String::new(), members: Vec::new(), imported: false });
            in_config = false;
            continue;
        }
        let Some(cur) = out.last_mut() else { continue };
        if let Some(id) = t.strip_prefix("id:") {
            cur.guid = id.trim().to_string();
        } else if let Some(st) = t.strip_prefix("state:") {
            cur.state = st.trim().to_string();
        } else if t == "config:" {
            in_config = true;
        } else if in_config && !t.is_empty() {
            // a config line: NAME STATE ...; the first is the pool itself
            let Some(name) = t.split_whitespace().next() else { continue };
            if name == cur.name || is_group(name) {
                continue;
            }
            // "errors:" or a continuation of a wrapped message ends nothing; only leaves count
            if line.starts_with('\t') || line.starts_with("  ") {
                cur.members.push(name.to_string());
            }
        } else if in_config && t.is_empty() && !cur.members.is_empty() {
            in_config = false;
        }
    }
    out
}

/// The leaf vdevs of `zpool status -P POOL`: the paths it lists.
pub fn parse_status_members(text: &str) -> Vec<String> {
    text.lines().filter_map(|l| l.split_whitespace().next()).filter(|w| w.starts_with('/')).map(String::from).collect()
}

/// What a vdev name points at: a path or a device name resolved through the links the host
/// has (`/dev/disk/by-id/NAME`, then `/dev/NAME`), else the name itself.
pub fn canonical(host: &mut dyn Host, name: &str) -> String {
    let candidates: Vec<String> = if name.starts_with('/') { vec![name.to_string()] } else { vec![format!("/dev/disk/by-id/{name}"), format!("/dev/{name}")] };
    for c in &candidates {
        if let Ok(p) = host.resolve(Path::new(c)) {
            return p.display().to_string();
        }
    }
    candidates.into_iter().next().unwrap_or_default()
}

/// Whether `found`'s leaves are exactly `members` (compared by the devices they point at).
pub fn same_members(host: &mut dyn Host, found: &Found, members: &[String]) -> bool {
    let a: BTreeSet<String> = found.members.iter().map(|m| canonical(host, m)).collect();
    let b: BTreeSet<String> = members.iter().map(|m| canonical(host, m)).collect();
    !a.is_empty() && a == b
}

/// The imported pool called `name`, if any: its GUID and leaf paths.
pub fn imported(host: &mut dyn Host, name: &str) -> Result<Option<Found>, HostError> {
    let list = host.run(&s(&["zpool", "list", "-H", "-p", "-o", "name,guid,health", name]), TIMEOUT)?;
    if !list.success() {
        return Ok(None);
    }
    let f: Vec<&str> = list.stdout.lines().next().unwrap_or("").split('\t').collect();
    let status = host.run(&s(&["zpool", "status", "-P", name]), TIMEOUT)?;
    Ok(Some(Found {
        name: name.to_string(),
        guid: f.get(1).map(|g| g.trim().to_string()).unwrap_or_default(),
        state: f.get(2).map(|g| g.trim().to_string()).unwrap_or_default(),
        members: parse_status_members(&status.stdout),
        imported: true,
    }))
}

/// Every imported pool (names from `zpool list`).
pub fn all_imported(host: &mut dyn Host) -> Result<Vec<Found>, HostError> {
    let list = host.run(&s(&["zpool", "list", "-H", "-o", "name"]), TIMEOUT)?;
    let mut out = Vec::new();
    if list.success() {
        for name in list.stdout.lines().map(str::trim).filter(|n| !n.is_empty()) {
            if let Some(f) = imported(host, name)? {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// `-d PART` for each of the plan's partitions of `pool` that exists now.
fn search_args(host: &mut dyn Host, plan: &Plan, pool: &str) -> Vec<String> {
    let mut a = Vec::new();
    for m in planned_members(plan, pool) {
        if host.exists(Path::new(&m)) {
            a.extend(["-d".to_string(), m]);
        }
    }
    a
}

/// Exported pools found on the plan's partitions of `pool` (and only there).
pub fn scan_plan(host: &mut dyn Host, plan: &Plan, pool: &str) -> Result<Vec<Found>, HostError> {
    let d = search_args(host, plan, pool);
    if d.is_empty() {
        return Ok(Vec::new());
    }
    let mut argv = s(&["zpool", "import"]);
    argv.extend(d);
    let out = host.run(&argv, TIMEOUT)?;
    Ok(if out.success() { parse_scan(&out.stdout) } else { Vec::new() })
}

/// Imports the pool with `guid`, searching only the plan's partitions of `pool`, not mounted
/// (`-N`), under the target root. `force` for a pool the journal says is ours (after a reboot
/// of the rescue system it carries the old host id); `readonly` for a look that writes nothing.
pub fn import_by_guid(host: &mut dyn Host, plan: &Plan, pool: &str, guid: &str, force: bool, readonly: bool) -> Result<(Vec<String>, Output), HostError> {
    let mut argv = s(&["zpool", "import"]);
    if force {
        argv.push("-f".into());
    }
    if readonly {
        argv.extend(["-o".to_string(), "readonly=on".to_string()]);
    }
    argv.extend(search_args(host, plan, pool));
    argv.extend(s(&["-N", "-R", TARGET_ROOT, guid]));
    let out = host.run(&argv, TIMEOUT)?;
    Ok((argv, out))
}

/// Where the plan's pool called `pool` stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Imported, on exactly the plan's partitions (with the journal's GUID when it has one).
    Imported(Found),
    /// Exported, on exactly the plan's partitions (with the journal's GUID when it has one).
    Exported(Found),
    /// A pool with this name is imported but it is not the plan's: nothing may be done to it.
    ForeignImported(Found),
    /// On the plan's partitions there is a pool with this name, but it is not the one the
    /// journal recorded (other GUID) or not on exactly the plan's partitions.
    Other(Found),
    Absent,
}

/// Finds the plan's pool `pool`: imported ones first (only one pool of a name can be imported),
/// then exported ones on the plan's partitions. `guid` is what the journal recorded, if anything.
pub fn standing(host: &mut dyn Host, plan: &Plan, pool: &str, guid: Option<&str>) -> Result<Standing, HostError> {
    let members = planned_members(plan, pool);
    if let Some(f) = imported(host, pool)? {
        let ours = same_members(host, &f, &members) && guid.is_none_or(|g| g == f.guid);
        return Ok(if ours { Standing::Imported(f) } else if same_members(host, &f, &members) { Standing::Other(f) } else { Standing::ForeignImported(f) });
    }
    let found: Vec<Found> = scan_plan(host, plan, pool)?.into_iter().filter(|f| f.name == pool).collect();
    let mut other = None;
    for f in found {
        if same_members(host, &f, &members) && guid.is_none_or(|g| g == f.guid) {
            return Ok(Standing::Exported(f));
        }
        other.get_or_insert(f);
    }
    Ok(other.map(Standing::Other).unwrap_or(Standing::Absent))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCAN: &str = "   pool: rpool
     id: 5379128873412331043
  state: ONLINE
status: The pool was last accessed by another system.
 action: The pool can be imported using its name or numeric identifier and
\tthe '-f' flag.
   see: https://openzfs.github.io/openzfs-docs/msg/ZFS-8000-EY
 config:

\trpool                                    ONLINE
\t  mirror-0                               ONLINE
\t    nvme-QEMU_NVMe_Ctrl_LABNVME0001-part2  ONLINE
\t    nvme-QEMU_NVMe_Ctrl_LABNVME0002-part2  ONLINE

   pool: datapool
     id: 77
  state: DEGRADED
 action: The pool can be imported despite missing or damaged devices.
 config:

\tdatapool                 DEGRADED
\t  mirror-0               DEGRADED
\t    ata-OLD-part3        ONLINE
\t    1234567890123        UNAVAIL
\tlogs
\t  sdb1                   ONLINE
";

    #[test]
    fn the_scan_listing_gives_names_guids_and_leaves() {
        let f = parse_scan(SCAN);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].name.as_str(), f[0].guid.as_str(), f[0].state.as_str()), ("rpool", "5379128873412331043", "ONLINE"));
        assert_eq!(f[0].members, ["nvme-QEMU_NVMe_Ctrl_LABNVME0001-part2", "nvme-QEMU_NVMe_Ctrl_LABNVME0002-part2"]);
        assert_eq!(f[1].members, ["ata-OLD-part3", "1234567890123", "sdb1"], "a missing device and a log device are members too");
    }

    #[test]
    fn status_members_are_the_paths() {
        let st = "  pool: rpool\n state: ONLINE\nconfig:\n\n\tNAME STATE\n\trpool ONLINE\n\t  mirror-0 ONLINE\n\t    /dev/disk/by-id/a-part2 ONLINE 0 0 0\n\t    /dev/nvme1n1p2 ONLINE 0 0 0\n\nerrors: No known data errors\n";
        assert_eq!(parse_status_members(st), ["/dev/disk/by-id/a-part2", "/dev/nvme1n1p2"]);
    }
}

/// The features a `compatibility` value allows, read from this system's OpenZFS set files
/// (`/etc/zfs/compatibility.d` before `/usr/share/zfs/compatibility.d`, as OpenZFS reads them).
/// `None` for `off`; an error names each set file this OpenZFS does not have.
pub fn feature_set(host: &mut dyn Host, value: &str) -> Result<Option<BTreeSet<String>>, String> {
    feature_set_in(host, value, Path::new("/"))
}

/// [`feature_set`] from the set files of the system mounted at `root`.
pub fn feature_set_in(host: &mut dyn Host, value: &str, root: &Path) -> Result<Option<BTreeSet<String>>, String> {
    let files = crate::zfs_features::set_files(value);
    if files.is_empty() {
        return Ok(None);
    }
    let mut sets = Vec::new();
    let mut missing = Vec::new();
    for f in files {
        let text = crate::zfs_features::COMPAT_DIRS.iter().find_map(|d| host.read_file(&root.join(d.trim_start_matches('/')).join(f)).ok());
        match text {
            Some(t) => sets.push(crate::zfs_features::parse_set(&t)),
            None => missing.push(f.to_string()),
        }
    }
    if !missing.is_empty() {
        return Err(format!("no feature set {} in {}", missing.join(", "), crate::zfs_features::COMPAT_DIRS.join(" or ")));
    }
    Ok(Some(crate::zfs_features::intersect(sets)))
}

/// Why this system's ZFS cannot be used without running anything: `zpool`/`zfs` missing or not
/// programs at all (Hetzner's rescue has shell scripts by those names that offer to build
/// OpenZFS and ask a question: keel never runs them), or no module loaded. `None`: usable.
/// With `load`, a missing module is loaded (`modprobe zfs`) before it counts as missing.
pub fn zfs_unusable(host: &mut dyn Host, load: bool) -> Result<Option<String>, HostError> {
    for tool in ["zpool", "zfs"] {
        let Some(path) = host.program_path(tool) else {
            return Ok(Some(format!("the {tool} command is missing")));
        };
        let head = host.read_head(&path, 128).unwrap_or_default();
        if !head.starts_with(b"\x7fELF") {
            let first = String::from_utf8_lossy(&head).lines().next().unwrap_or("").trim().to_string();
            let what = if first.starts_with("#!") { format!("a script ({first})") } else { "not a program".to_string() };
            return Ok(Some(format!("{} is {what}, not OpenZFS's {tool}: a rescue system's stand-in that offers to build ZFS (keel does not run it)", path.display())));
        }
    }
    if host.exists(Path::new(super::engine::ZFS_VERSION_FILE)) || host.exists(Path::new("/sys/module/zfs")) {
        return Ok(None);
    }
    if !load {
        return Ok(Some("the zfs kernel module is not loaded".into()));
    }
    let out = host.run(&s(&["modprobe", "zfs"]), TIMEOUT)?;
    if out.success() {
        Ok(None)
    } else {
        Ok(Some(format!("`modprobe zfs` failed: {}", out.stderr_tail(3))))
    }
}

/// Whether ZFS can be asked about pools right now (programs, module loaded), never running
/// a stand-in script to find out.
pub fn zfs_ready(host: &mut dyn Host) -> bool {
    matches!(zfs_unusable(host, false), Ok(None))
}
