//! "Already done?" checks. A command that creates something durable (a pool, a dataset, a
//! file system) is recognised by what it creates, so a re-run detects it instead of redoing it;
//! the partition step is recognised by the whole table matching the plan.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::host::{Host, HostError};
use crate::plan::{Layout, INITRAMFS_INPUTS};

const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// An argument vector from string literals.
pub(super) fn s(a: &[&str]) -> Vec<String> {
    a.iter().map(|x| x.to_string()).collect()
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// The command's effect is present.
    Yes(String),
    /// Absent: the command must run.
    No,
    /// This command has no check; it is safe to run again (or its step has a step-level check).
    Unknown,
}

/// The file system type blkid sees on a device ("" when none).
pub fn fs_type(host: &mut dyn Host, dev: &str) -> Result<String, HostError> {
    let out = host.run(&s(&["blkid", "-p", "-o", "value", "-s", "TYPE", dev]), CHECK_TIMEOUT)?;
    Ok(out.stdout.trim().to_string())
}

/// The pool a planned `zpool create` makes: the name follows `-R <root>`.
pub fn created_pool(argv: &[String]) -> Option<&str> {
    if argv.get(..2)? != ["zpool", "create"] {
        return None;
    }
    let r = argv.iter().position(|x| x == "-R")?;
    argv.get(r + 2).map(String::as_str)
}

/// Checks one planned command. `zpool create` is not checked here: which pool is the plan's
/// needs the plan and the journal (`pools::standing`, run by the engine).
pub fn command_done(host: &mut dyn Host, argv: &[String]) -> Result<Done, HostError> {
    let a: Vec<&str> = argv.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["zfs", "create", .., name] => {
            let out = host.run(&s(&["zfs", "list", "-H", "-o", "name", name]), CHECK_TIMEOUT)?;
            Ok(if out.success() { Done::Yes(format!("dataset {name} exists")) } else { Done::No })
        }
        ["zfs", "snapshot", name] => {
            let out = host.run(&s(&["zfs", "list", "-H", "-t", "snapshot", "-o", "name", name]), CHECK_TIMEOUT)?;
            Ok(if out.success() { Done::Yes(format!("snapshot {name} exists")) } else { Done::No })
        }
        ["zpool", "create", ..] => Ok(Done::No),
        ["mkfs.vfat", .., dev] => Ok(if fs_type(host, dev)? == "vfat" { Done::Yes(format!("{dev} holds vfat")) } else { Done::No }),
        ["mkswap", .., dev] => Ok(if fs_type(host, dev)? == "swap" { Done::Yes(format!("{dev} holds swap")) } else { Done::No }),
        ["zfs", "mount", ds] => {
            let out = host.run(&s(&["zfs", "get", "-H", "-o", "value", "mounted", ds]), CHECK_TIMEOUT)?;
            Ok(if out.success() && out.stdout.trim() == "yes" { Done::Yes(format!("{ds} is mounted")) } else { Done::No })
        }
        ["debootstrap", .., target, _mirror] => {
            let has_os = host.exists(&Path::new(target).join("etc/debian_version"));
            let unfinished = host.exists(&Path::new(target).join("debootstrap"));
            Ok(if has_os && !unfinished { Done::Yes(format!("{target} holds a finished debootstrap")) } else { Done::No })
        }
        ["mount", .., dir] => {
            let out = host.run(&s(&["mountpoint", "-q", dir]), CHECK_TIMEOUT)?;
            Ok(if out.success() { Done::Yes(format!("{dir} is mounted")) } else { Done::No })
        }
        ["chroot", root, "env", rest @ ..] if rest.windows(2).any(|w| w == ["apt-get", "install"]) => {
            let at = rest.iter().position(|a| *a == "install").expect("checked");
            let pkgs: Vec<&str> = rest[at + 1..].iter().copied().filter(|a| !a.starts_with('-') && !a.starts_with("Dpkg::")).collect();
            let missing = not_installed(host, root, &pkgs)?;
            Ok(if missing.is_empty() { Done::Yes(format!("{} installed", pkgs.join(", "))) } else { Done::No })
        }
        ["zgenhostid", "-o", file] => {
            Ok(if host.exists(Path::new(file)) { Done::Yes(format!("{file} exists")) } else { Done::No })
        }
        ["chroot", root, "update-initramfs", ..] => initramfs_current(host, root),
        ["chroot", root, "useradd", .., name] => {
            let out = host.run(&s(&["chroot", root, "id", "-u", name]), CHECK_TIMEOUT)?;
            Ok(if out.success() { Done::Yes(format!("user {name} exists")) } else { Done::No })
        }
        _ => Ok(Done::Unknown),
    }
}

/// Whether every initramfs under `root`/boot is newer than everything of the node it holds
/// (host id, pool cache file, NIC .link files): then rebuilding it would change nothing.
fn initramfs_current(host: &mut dyn Host, root: &str) -> Result<Done, HostError> {
    let boot = format!("{root}/boot");
    let links = host.run(&s(&["find", &format!("{root}/etc/systemd/network"), "-maxdepth", "1", "-name", "*.link"]), CHECK_TIMEOUT)?;
    let mut inputs: Vec<String> = INITRAMFS_INPUTS.iter().map(|f| format!("{root}{f}")).collect();
    inputs.extend(links.stdout.lines().filter(|l| !l.is_empty()).map(String::from));
    let all = host.run(&s(&["find", &boot, "-maxdepth", "1", "-name", "initrd.img-*"]), CHECK_TIMEOUT)?;
    let mut newer = s(&["find", &boot, "-maxdepth", "1", "-name", "initrd.img-*"]);
    for i in &inputs {
        newer.extend(["-newer".to_string(), i.clone()]);
    }
    // find fails when an input is missing: then the initramfs cannot hold it either
    let fresh = host.run(&newer, CHECK_TIMEOUT)?;
    let sorted = |t: &str| {
        let mut v: Vec<String> = t.lines().filter(|l| !l.is_empty()).map(String::from).collect();
        v.sort();
        v
    };
    let ok = all.success() && fresh.success();
    let (all, fresh) = (sorted(&all.stdout), sorted(&fresh.stdout));
    Ok(if ok && !all.is_empty() && fresh == all {
        Done::Yes(format!("{} newer than {}", all.join(", "), inputs.join(", ")))
    } else {
        Done::No
    })
}

/// Which of `pkgs` dpkg inside `root` does not report as installed.
pub fn not_installed(host: &mut dyn Host, root: &str, pkgs: &[&str]) -> Result<Vec<String>, HostError> {
    let installed = installed(host, root, pkgs)?;
    Ok(pkgs.iter().filter(|p| !installed.iter().any(|(name, _)| name == *p)).map(|p| p.to_string()).collect())
}

/// The packages (names or dpkg patterns) dpkg inside `root` reports installed, with versions.
pub fn installed(host: &mut dyn Host, root: &str, pkgs: &[&str]) -> Result<Vec<(String, String)>, HostError> {
    let mut argv = s(&["chroot", root, "dpkg-query", "--show", "--showformat=${Package} ${Version} ${db:Status-Status}\\n"]);
    argv.extend(pkgs.iter().map(|p| p.to_string()));
    let out = host.run(&argv, CHECK_TIMEOUT)?;
    Ok(out
        .stdout
        .lines()
        .filter_map(|l| l.strip_suffix(" installed"))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, version)| (name.to_string(), version.to_string()))
        .collect())
}

/// GPT type GUIDs of the sgdisk codes keel uses.
fn type_guid(code: &str) -> &'static str {
    match code {
        "EF00" => "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
        "EF02" => "21686148-6449-6E6F-744E-656564454649",
        "BF01" => "6A898CC3-1DD2-11B2-99A6-080020736631",
        _ => "",
    }
}

#[derive(Deserialize)]
struct SfdiskDump {
    partitiontable: SfdiskTable,
}

#[derive(Deserialize)]
struct SfdiskTable {
    label: String,
    #[serde(default)]
    partitions: Vec<SfdiskPartition>,
}

#[derive(Deserialize)]
struct SfdiskPartition {
    node: String,
    start: u64,
    size: u64,
    #[serde(rename = "type")]
    type_guid: String,
}

/// Compares a disk's partition table (`sfdisk --json`) with the layout. `Ok(None)` when it
/// matches exactly; otherwise what differs.
pub fn table_differs(host: &mut dyn Host, dev: &str, layout: &Layout) -> Result<Option<String>, HostError> {
    let out = host.run(&s(&["sfdisk", "--json", dev]), CHECK_TIMEOUT)?;
    if !out.success() {
        return Ok(Some("no partition table".into()));
    }
    let dump: SfdiskDump = match serde_json::from_str(&out.stdout) {
        Ok(d) => d,
        Err(e) => return Ok(Some(format!("unreadable sfdisk output: {e}"))),
    };
    if dump.partitiontable.label != "gpt" {
        return Ok(Some(format!("{} label, not gpt", dump.partitiontable.label)));
    }
    let found = &dump.partitiontable.partitions;
    if found.len() != layout.partitions.len() {
        return Ok(Some(format!("{} partitions, the plan has {}", found.len(), layout.partitions.len())));
    }
    for want in &layout.partitions {
        let number = |node: &str| node.trim_start_matches(dev).trim_start_matches('p').parse::<u32>().ok();
        let Some(p) = found.iter().find(|p| number(&p.node) == Some(want.number)) else {
            return Ok(Some(format!("partition {} is missing", want.number)));
        };
        let size = want.last_sector - want.first_sector + 1;
        if p.start != want.first_sector || p.size != size || !p.type_guid.eq_ignore_ascii_case(type_guid(want.type_code)) {
            return Ok(Some(format!(
                "partition {}: start {} size {} type {} (plan: start {} size {} type {})",
                want.number, p.start, p.size, p.type_guid, want.first_sector, size, type_guid(want.type_code)
            )));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::host::SystemHost;
    use std::process::Command;

    fn touch(path: &Path, when: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        assert!(Command::new("touch").arg("-d").arg(when).arg(path).status().unwrap().success());
    }

    fn check(root: &Path) -> Done {
        let argv = s(&["chroot", root.to_str().unwrap(), "update-initramfs", "-u", "-k", "all"]);
        command_done(&mut SystemHost, &argv).unwrap()
    }

    /// The real find on real files: the initramfs counts as built only when it is newer than
    /// the host id, the pool cache file and every .link file.
    #[test]
    fn initramfs_is_current_only_when_newer_than_every_input() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (hostid, cache, link) = (root.join("etc/hostid"), root.join("etc/zfs/zpool.cache"), root.join("etc/systemd/network/10-keel-nic0.link"));
        let resume = root.join("etc/initramfs-tools/conf.d/resume");
        let initrd = root.join("boot/initrd.img-6.8.12-4-pve");
        for f in [&hostid, &cache, &link, &resume] {
            touch(f, "2026-01-01 10:00");
        }
        assert_eq!(check(root), Done::No, "no initramfs at all");
        touch(&initrd, "2025-12-31 10:00");
        assert_eq!(check(root), Done::No, "initramfs older than the inputs");
        touch(&initrd, "2026-01-02 10:00");
        assert!(matches!(check(root), Done::Yes(_)), "{:?}", check(root));
        touch(&resume, "2026-01-03 10:00");
        assert_eq!(check(root), Done::No, "RESUME changed after the initramfs");
        touch(&initrd, "2026-01-03 11:00");
        assert!(matches!(check(root), Done::Yes(_)));
        touch(&link, "2026-01-03 12:00");
        assert_eq!(check(root), Done::No, "a .link file changed after the initramfs");
        touch(&initrd, "2026-01-04 10:00");
        touch(&root.join("boot/initrd.img-6.8.12-1-pve"), "2025-01-01 10:00");
        assert_eq!(check(root), Done::No, "one of two kernels has a stale initramfs");
        std::fs::remove_file(root.join("boot/initrd.img-6.8.12-1-pve")).unwrap();
        assert!(matches!(check(root), Done::Yes(_)));
        std::fs::remove_file(&hostid).unwrap();
        assert_eq!(check(root), Done::No, "no host id: the initramfs cannot hold it");
    }
}
