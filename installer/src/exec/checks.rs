//! "Already done?" checks. A command that creates something durable (a pool, a dataset, a
//! file system) is recognised by what it creates, so a re-run detects it instead of redoing it;
//! the partition step is recognised by the whole table matching the plan.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::host::{Host, HostError};
use crate::plan::Layout;

const CHECK_TIMEOUT: Duration = Duration::from_secs(60);
/// `lsinitramfs` decompresses the whole initramfs (tens of MiB of zstd; slow under emulation).
const LIST_INITRAMFS_TIMEOUT: Duration = Duration::from_secs(300);

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
        ["zfs", "destroy", name] if name.contains('@') => {
            let out = host.run(&s(&["zfs", "list", "-H", "-t", "snapshot", "-o", "name", name]), CHECK_TIMEOUT)?;
            Ok(if out.success() { Done::No } else { Done::Yes(format!("snapshot {name} is gone")) })
        }
        ["mmdebstrap", args @ .., _suite, target, _mirror] => {
            let include = args.iter().find_map(|a| a.strip_prefix("--include=")).unwrap_or("");
            let pkgs: Vec<&str> = include.split(',').filter(|p| !p.is_empty()).collect();
            if pkgs.is_empty() || !host.exists(&Path::new(target).join("var/lib/dpkg/status")) {
                return Ok(Done::No);
            }
            let missing = not_installed(host, target, &pkgs)?;
            Ok(if missing.is_empty() { Done::Yes(format!("{} installed", pkgs.join(", "))) } else { Done::No })
        }
        ["mount", .., dir] => {
            let out = host.run(&s(&["mountpoint", "-q", dir]), CHECK_TIMEOUT)?;
            Ok(if out.success() { Done::Yes(format!("{dir} is mounted")) } else { Done::No })
        }
        ["zgenhostid", "-f", "-o", file, value] => {
            // /etc/hostid holds the id as a 4-byte little-endian number (glibc's sethostid)
            let want = u32::from_str_radix(value.trim_start_matches("0x"), 16).ok();
            let have = host.read_bytes(Path::new(file)).ok().filter(|b| b.len() == 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            Ok(if want.is_some() && have == want { Done::Yes(format!("{file} holds {value}")) } else { Done::No })
        }
        ["chroot", root, "update-initramfs", ..] => initramfs_current(host, root),
        ["chroot", root, "useradd", .., name] => {
            let out = host.run(&s(&["chroot", root, "id", "-u", name]), CHECK_TIMEOUT)?;
            Ok(if out.success() { Done::Yes(format!("user {name} exists")) } else { Done::No })
        }
        _ => Ok(Done::Unknown),
    }
}

/// Whether every initramfs under `root`/boot can import this node's ZFS root as it is: it
/// holds OpenZFS's initramfs script and module (`lsinitramfs`), and no other pool named rpool is
/// importable (the script's import by name would then fail and fall back to the cache file,
/// which must then be this node's: rebuilt).
fn initramfs_current(host: &mut dyn Host, root: &str) -> Result<Done, HostError> {
    let boot = format!("{root}/boot");
    let all = host.run(&s(&["find", &boot, "-maxdepth", "1", "-name", "initrd.img-*"]), CHECK_TIMEOUT)?;
    let mut initrds: Vec<String> = all.stdout.lines().filter(|l| !l.is_empty()).map(String::from).collect();
    initrds.sort();
    if !all.success() || initrds.is_empty() {
        return Ok(Done::No);
    }
    for initrd in &initrds {
        let list = host.run(&s(&["chroot", root, "lsinitramfs", initrd.trim_start_matches(root)]), LIST_INITRAMFS_TIMEOUT)?;
        let has_script = list.stdout.lines().any(|l| l.ends_with("scripts/zfs"));
        let has_module = list.stdout.lines().any(|l| l.rsplit('/').next().is_some_and(|f| f == "zfs.ko" || f.starts_with("zfs.ko.")));
        if !list.success() || !has_script || !has_module {
            return Ok(Done::No);
        }
    }
    let scan = host.run(&s(&["zpool", "import"]), CHECK_TIMEOUT)?;
    if scan.stdout.lines().any(|l| l.trim() == "pool: rpool") {
        return Ok(Done::No);
    }
    Ok(Done::Yes(format!("{} hold OpenZFS's initramfs script and module; no other rpool is importable", initrds.join(", "))))
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
pub fn type_guid(code: &str) -> &'static str {
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

    fn check(h: &mut crate::exec::host::FakeHost) -> Done {
        command_done(h, &s(&["chroot", "/mnt/keel", "update-initramfs", "-u", "-k", "all"])).unwrap()
    }

    /// The initramfs counts as able to boot this node when it holds OpenZFS's initramfs script
    /// and module (nothing of the node: host id and noresume are on the kernel command line, the
    /// pool is found by scanning), unless another pool named rpool would make the import by
    /// name fail (then the node's cache file must be inside: rebuilt).
    #[test]
    fn initramfs_is_current_when_it_can_import_the_root() {
        use crate::exec::host::{FakeHost, Output};
        let zfs_listing = "usr/sbin/zpool\nscripts/zfs\nusr/lib/modules/6.8.12-4-pve/zfs/zfs.ko\netc/hostid\n";
        let mut h = FakeHost::default();
        h.answer("find /mnt/keel/boot", Output::failed(1, "find: '/mnt/keel/boot': No such file or directory"));
        assert_eq!(check(&mut h), Done::No, "no initramfs at all");
        h.set("find /mnt/keel/boot", Output::ok("/mnt/keel/boot/initrd.img-6.8.12-4-pve\n"));
        h.answer("chroot /mnt/keel lsinitramfs /boot/initrd.img-6.8.12-4-pve", Output::ok("usr/sbin/zpool\netc/hostid\n"));
        assert_eq!(check(&mut h), Done::No, "built before zfs-initramfs: no script, no module");
        h.set("chroot /mnt/keel lsinitramfs /boot/initrd.img-6.8.12-4-pve", Output::ok(zfs_listing));
        h.answer("zpool import", Output::failed(1, "no pools available to import"));
        assert!(matches!(check(&mut h), Done::Yes(_)), "{:?}", check(&mut h));
        // another kernel's initramfs without ZFS
        h.set("find /mnt/keel/boot", Output::ok("/mnt/keel/boot/initrd.img-6.8.12-4-pve\n/mnt/keel/boot/initrd.img-6.8.12-1-pve\n"));
        h.answer("chroot /mnt/keel lsinitramfs /boot/initrd.img-6.8.12-1-pve", Output::ok("usr/sbin/zpool\nscripts/zfs\n"));
        assert_eq!(check(&mut h), Done::No, "one of two kernels cannot import the root");
        h.set("chroot /mnt/keel lsinitramfs /boot/initrd.img-6.8.12-1-pve", Output::ok(&zfs_listing.replace("zfs.ko", "zfs.ko.zst")));
        assert!(matches!(check(&mut h), Done::Yes(_)));
        // a foreign disk with an exported rpool: the import by name would be ambiguous
        h.set("zpool import", Output::ok("   pool: rpool\n     id: 42\n  state: ONLINE\n"));
        assert_eq!(check(&mut h), Done::No, "another importable rpool");
    }

    /// zgenhostid's step is done only when /etc/hostid holds the profile's id (little-endian).
    #[test]
    fn host_id_file_must_hold_the_profiles_id() {
        use crate::exec::host::FakeHost;
        let mut h = FakeHost::default();
        let argv = s(&["zgenhostid", "-f", "-o", "/mnt/keel/etc/hostid", "0x1a2b3c4d"]);
        assert_eq!(command_done(&mut h, &argv).unwrap(), Done::No);
        h.files.insert("/mnt/keel/etc/hostid".into(), vec![0x01, 0x02, 0x03, 0x04]);
        assert_eq!(command_done(&mut h, &argv).unwrap(), Done::No, "the image's or another id");
        h.files.insert("/mnt/keel/etc/hostid".into(), vec![0x4d, 0x3c, 0x2b, 0x1a]);
        assert!(matches!(command_done(&mut h, &argv).unwrap(), Done::Yes(_)));
    }
}
