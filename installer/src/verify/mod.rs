//! `keel verify`: checks an installed node (root `/`) or a mounted target (`/mnt/keel`) against
//! its profile: pools healthy and mirrored, the seed's properties, the datasets, a boot loader
//! and identical boot files on every drive, every rendered file unchanged, and on a running
//! node the bridges, VLANs, corosync quorum and the day-one services (`day_one`). Every check is a row: ok, WARN or FAIL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::exec::host::Host;
use crate::profile::{Bootloader, Profile};
use crate::render;

mod day_one;

const T: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The installed system's root: `/` on the node, the target root during an install.
    pub root: PathBuf,
    /// A drive is missing on purpose (booted from one drive): a DEGRADED mirror is a WARN.
    pub allow_degraded: bool,
    /// Fewer cluster members than the profile lists is a FAIL (else a WARN).
    pub expect_quorum: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { root: PathBuf::from("/"), allow_degraded: false, expect_quorum: false }
    }
}

struct Checks<'a> {
    host: &'a mut dyn Host,
    rows: Vec<Check>,
}

impl Checks<'_> {
    fn add(&mut self, name: impl Into<String>, status: Status, detail: impl Into<String>) {
        self.rows.push(Check { name: name.into(), status, detail: detail.into() });
    }

    fn equal(&mut self, name: impl Into<String>, want: &str, found: &str) {
        if want == found {
            self.add(name, Status::Ok, found.to_string());
        } else {
            self.add(name, Status::Fail, format!("expected {want}, found {}", if found.is_empty() { "nothing" } else { found }));
        }
    }

    /// stdout of a command, or None (with the reason) when it failed.
    fn out(&mut self, argv: &[&str]) -> Result<String, String> {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        match self.host.run(&argv, T) {
            Ok(o) if o.success() => Ok(o.stdout),
            Ok(o) => Err(format!("`{}` exited {}: {}", argv.join(" "), o.code, o.stderr_tail(1))),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    crate::profile::hex_digest(&Sha256::digest(bytes))
}

fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Runs every check. Never fails itself: what cannot be checked is a FAIL row saying why.
pub fn run(host: &mut dyn Host, p: &Profile, opts: &Options) -> Vec<Check> {
    let mut c = Checks { host, rows: Vec::new() };
    let disks = pools(&mut c, p, opts);
    datasets(&mut c, p);
    files(&mut c, p, &opts.root, &disks);
    boot(&mut c, p, &opts.root, &disks);
    parsers(&mut c, &opts.root);
    host_id(&mut c, p, &opts.root);
    day_one::run(&mut c, p, &opts.root, opts.root == Path::new("/"), opts.expect_quorum);
    if opts.root == Path::new("/") {
        swap(&mut c);
        network(&mut c, p);
        quorum(&mut c, p, opts.expect_quorum);
    }
    c.rows
}

/// A command run in the installed system: through chroot for a mounted target.
fn in_root(root: &Path, argv: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = if root == Path::new("/") { vec![] } else { vec!["chroot".into(), root.display().to_string()] };
    v.extend(argv.iter().map(|a| a.to_string()));
    v
}

/// The installed system's own programs read what keel wrote: a file the node could not use
/// (an sshd that would not start on a node reached only over SSH, a dangling /etc/localtime)
/// stops the install here instead of the node.
fn parsers(c: &mut Checks, root: &Path) {
    if !c.host.exists(&under(root, "/usr/sbin/sshd")) {
        c.add("sshd -t", Status::Fail, format!("{} is missing: openssh-server is not installed", under(root, "/usr/sbin/sshd").display()));
    } else {
        // sshd -t wants its privilege separation folder, which systemd makes at boot
        // (RuntimeDirectory=sshd); in the target, /run is the rescue system's (bound by os.chroot)
        if root != Path::new("/") {
            let _ = c.host.run(&in_root(root, &["mkdir", "-p", "/run/sshd"]), T);
        }
        let argv = in_root(root, &["/usr/sbin/sshd", "-t"]);
        match c.host.run(&argv, T) {
            Ok(o) if o.success() => c.add("sshd -t", Status::Ok, "the installed sshd accepts its configuration"),
            Ok(o) => c.add("sshd -t", Status::Fail, format!("the installed sshd would not start: `{}` exited {}: {}", argv.join(" "), o.code, o.stderr_tail(3))),
            Err(e) => c.add("sshd -t", Status::Fail, e.to_string()),
        }
    }
    match c.host.run(&in_root(root, &["readlink", "-e", "/etc/localtime"]), T) {
        Ok(o) if o.success() => c.add("time zone", Status::Ok, format!("/etc/localtime -> {}", o.stdout.trim())),
        Ok(_) => c.add("time zone", Status::Fail, "/etc/localtime is missing or dangling (a zone the target's tzdata lacks)"),
        Err(e) => c.add("time zone", Status::Fail, e.to_string()),
    }
}

/// The node's OpenZFS host id: /etc/hostid holds the profile's (little-endian, as glibc writes
/// it); on the running node, the spl module runs with it (from the kernel command line).
fn host_id(c: &mut Checks, p: &Profile, root: &Path) {
    let want = format!("0x{:08x}", render::host_id(p));
    let file = c.host.read_bytes(&under(root, "/etc/hostid")).ok().filter(|b| b.len() == 4).map(|b| format!("0x{:08x}", u32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    c.equal("host id (/etc/hostid)", &want, file.as_deref().unwrap_or(""));
    if root == Path::new("/") {
        let param = c.host.read_file(Path::new("/sys/module/spl/parameters/spl_hostid")).ok().and_then(|t| t.trim().parse::<u64>().ok()).map(|v| format!("0x{v:08x}"));
        c.equal("host id in use (spl_hostid)", &want, param.as_deref().unwrap_or(""));
    }
}

/// On the node: the swap zvol is in use, with keel's swappiness.
fn swap(c: &mut Checks) {
    let dev = c.host.resolve(Path::new(render::SWAP_DEVICE)).map(|d| d.display().to_string());
    let swaps = c.host.read_file(Path::new("/proc/swaps")).unwrap_or_default();
    match dev {
        Ok(d) if swaps.lines().skip(1).any(|l| l.split_whitespace().next() == Some(d.as_str())) => {
            c.add("swap", Status::Ok, format!("{} ({d}) active", render::SWAP_DEVICE));
        }
        Ok(d) => c.add("swap", Status::Fail, format!("{} ({d}) is not active (/proc/swaps lists: {})", render::SWAP_DEVICE, swaps.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect::<Vec<_>>().join(", "))),
        Err(_) => c.add("swap", Status::Fail, format!("{} does not exist", render::SWAP_DEVICE)),
    }
    let v = c.host.read_file(Path::new("/proc/sys/vm/swappiness")).unwrap_or_default();
    c.equal("vm.swappiness", &render::SWAPPINESS.to_string(), v.trim());
}

/// Pool health, mirror members, properties. Returns the drives (by-id) rpool's members are on.
fn pools(c: &mut Checks, p: &Profile, opts: &Options) -> Vec<String> {
    let mut disks = Vec::new();
    for (pool, part) in [("rpool", "-part2"), ("datapool", "-part3")] {
        match c.out(&["zpool", "list", "-H", "-o", "health", pool]) {
            Ok(h) => {
                let h = h.trim();
                let status = match h {
                    "ONLINE" => Status::Ok,
                    "DEGRADED" if opts.allow_degraded => Status::Warn,
                    _ => Status::Fail,
                };
                c.add(format!("{pool} health"), status, h);
            }
            Err(e) => {
                c.add(format!("{pool} health"), Status::Fail, format!("not imported: {e}"));
                continue;
            }
        }
        let status = c.out(&["zpool", "status", "-P", pool]).unwrap_or_default();
        let members: Vec<&str> = status.split_whitespace().filter(|w| w.starts_with("/dev/")).collect();
        let online = status.lines().filter(|l| l.trim_start().starts_with("/dev/") && l.contains("ONLINE")).count();
        let want = p.disks.count as usize;
        let mirrored = want < 2 || status.contains("mirror-0");
        let detail = format!("{} of {want} members online: {}", online, members.join(" "));
        let st = if mirrored && online == want {
            Status::Ok
        } else if mirrored && members.len() == want && opts.allow_degraded {
            Status::Warn
        } else {
            Status::Fail
        };
        c.add(format!("{pool} mirror"), st, detail);
        if pool == "rpool" {
            disks = members.iter().filter_map(|m| m.strip_suffix(part)).map(String::from).collect();
        }
        let ashift = c.out(&["zpool", "get", "-H", "-o", "value", "ashift", pool]).unwrap_or_default();
        c.equal(format!("{pool} ashift"), &p.zfs.ashift.to_string(), ashift.trim());
        features(c, p, opts, pool);
        let here = c.host.read_file(Path::new(crate::exec::engine::ZFS_VERSION_FILE)).unwrap_or_default();
        for (prop, want) in p.zfs.fs_properties() {
            if prop == "mountpoint" {
                continue;
            }
            let v = c.out(&["zfs", "get", "-H", "-o", "value", prop, pool]).unwrap_or_default();
            if v.trim() != want && crate::zfs_features::same_property(prop, &want, v.trim(), &here) {
                c.add(format!("{pool} {prop}"), Status::Ok, format!("{want} (OpenZFS {} shows it as {})", here.trim(), v.trim()));
            } else {
                c.equal(format!("{pool} {prop}"), &want, v.trim());
            }
        }
    }
    let bootfs = c.out(&["zpool", "get", "-H", "-o", "value", "bootfs", "rpool"]).unwrap_or_default();
    c.equal("rpool bootfs", "rpool/ROOT/pve-1", bootfs.trim());
    // the pools are the profile's disks' (when it pins them), not another rpool's
    if !p.disks.serials.is_empty() {
        let strays: Vec<&String> = disks.iter().filter(|d| !p.disks.serials.iter().any(|s| d.ends_with(&format!("_{s}")) || d.ends_with(&format!("-{s}")))).collect();
        if strays.is_empty() && !disks.is_empty() {
            c.add("rpool disks", Status::Ok, format!("the profile's serials {}", p.disks.serials.join(", ")));
        } else {
            c.add("rpool disks", Status::Fail, format!("rpool is on {}, the profile pins {}", disks.join(" "), p.disks.serials.join(", ")));
        }
    }
    foreign_pools(c, opts);
    disks
}

/// The pool is limited to the profile's feature set and enables nothing outside it (else an
/// older OpenZFS, the node's own, may refuse to import it). The set's file is read from the
/// system running verify, else from the installed root.
fn features(c: &mut Checks, p: &Profile, opts: &Options, pool: &str) {
    let want = &p.zfs.compatibility;
    let prop = c.out(&["zpool", "get", "-H", "-o", "value", "compatibility", pool]).unwrap_or_default();
    c.equal(format!("{pool} compatibility"), want, prop.trim());
    let set = match crate::exec::pools::feature_set(c.host, want) {
        Err(_) if opts.root != Path::new("/") => crate::exec::pools::feature_set_in(c.host, want, &opts.root),
        r => r,
    };
    let set = match set {
        Ok(Some(set)) => set,
        Ok(None) => return c.add(format!("{pool} features"), Status::Warn, "zfs.compatibility is off: every feature of the creating OpenZFS may be enabled"),
        Err(why) => return c.add(format!("{pool} features"), Status::Fail, format!("cannot check them against {want}: {why}")),
    };
    let on = match c.out(&["zpool", "get", "-H", "-o", "property,value", "all", pool]) {
        Ok(text) => crate::zfs_features::enabled_features(&text),
        Err(why) => return c.add(format!("{pool} features"), Status::Fail, why),
    };
    let extra = crate::zfs_features::outside(&on, &set);
    if extra.is_empty() {
        c.add(format!("{pool} features"), Status::Ok, format!("{} enabled, all in {want}", on.len()));
    } else {
        c.add(format!("{pool} features"), Status::Fail, format!("enabled outside {want}: {} (an OpenZFS of that set cannot import this pool)", extra.join(", ")));
    }
}

/// Another importable pool named like the node's own: the initramfs imports the root pool by
/// name (`zpool import rpool`), so a second rpool makes a boot ambiguous. A FAIL on the node;
/// during the install a WARN (preflight refused it already, or the operator accepted it).
fn foreign_pools(c: &mut Checks, opts: &Options) {
    let scan = c.out(&["zpool", "import"]).unwrap_or_default();
    let others: Vec<String> = crate::exec::pools::parse_scan(&scan)
        .into_iter()
        .filter(|f| crate::plan::POOLS.iter().any(|(p, _)| *p == f.name))
        .map(|f| f.describe())
        .collect();
    if others.is_empty() {
        c.add("other pools named rpool/datapool", Status::Ok, "none importable");
    } else {
        let st = if opts.root == Path::new("/") { Status::Fail } else { Status::Warn };
        c.add("other pools named rpool/datapool", st, format!("importable: {}; remove that disk or clear its labels (`zpool labelclear -f DEVICE`, or keel install --clear-zfs-labels SERIAL)", others.join("; ")));
    }
}

fn datasets(c: &mut Checks, p: &Profile) {
    let list = c.out(&["zfs", "list", "-H", "-o", "name", "-t", "filesystem,volume"]).unwrap_or_default();
    let have: Vec<&str> = list.lines().collect();
    let mut want = vec!["rpool/ROOT/pve-1".to_string(), "rpool/swap".to_string()];
    want.extend(p.zfs.datapool_datasets.iter().map(|d| format!("datapool/{d}")));
    let missing: Vec<&String> = want.iter().filter(|w| !have.contains(&w.as_str())).collect();
    if missing.is_empty() {
        c.add("datasets", Status::Ok, want.join(", "));
    } else {
        c.add("datasets", Status::Fail, format!("missing: {}", missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")));
    }
}

/// Files Proxmox VE takes over on a running node: `pvecm updatecerts` (run by pveproxy at
/// every start) turns root's authorized_keys into a link to the cluster-wide
/// /etc/pve/priv/authorized_keys and adds the cluster's keys. Checked for keel's lines.
const TAKEN_OVER: &[&str] = &["/root/.ssh/authorized_keys"];

/// Every file keel rendered for this node, byte for byte (those Proxmox VE takes over: every
/// line keel wrote is still there).
fn files(c: &mut Checks, p: &Profile, root: &Path, disks: &[String]) {
    let mut all = render::node_files(p);
    all.extend(render::boot::files(p, disks));
    let mut differ = Vec::new();
    for f in &all {
        let path = under(root, &f.path);
        let contained = |b: &[u8]| {
            let have = String::from_utf8_lossy(b);
            f.content.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).all(|l| have.lines().any(|h| h.trim() == l.trim()))
        };
        match c.host.read_bytes(&path) {
            Ok(b) if sha256(&b) == f.sha256 => {}
            Ok(b) if TAKEN_OVER.contains(&f.path.as_str()) && contained(&b) => {}
            Ok(_) if TAKEN_OVER.contains(&f.path.as_str()) => differ.push(format!("{} lacks lines keel wrote", f.path)),
            Ok(_) => differ.push(format!("{} differs", f.path)),
            Err(_) => differ.push(format!("{} is missing", f.path)),
        }
    }
    if differ.is_empty() {
        c.add("rendered files", Status::Ok, format!("{} files as the profile renders them", all.len()));
    } else {
        c.add("rendered files", Status::Fail, differ.join("; "));
    }
}

/// `proxmox-boot-tool status` against what the node should have. Its output, as
/// proxmox-kernel-helper's `status` and `_status_detail` print it: "System currently booted with
/// uefi" (or "legacy bios"), then for each ESP listed in /etc/kernel/proxmox-boot-uuids
/// "UUID is configured with: uefi (versions: A, B)" and/or "grub (versions: ...)"; an ESP it
/// skips gets "WARN: ..." on stderr and no line, and the exit code stays 0. Every drive's ESP
/// (name, UUID) must have its line, in the firmware's mode, with `kernel`; no warning at all.
fn boot_tool_status(stdout: &str, stderr: &str, esps: &[(String, String)], kernel: &str, uefi: bool) -> Vec<(String, Status, String)> {
    let mut rows = Vec::new();
    let mode = if uefi { "uefi" } else { "legacy bios" };
    match stdout.lines().find_map(|l| l.trim().strip_prefix("System currently booted with ")) {
        Some(m) if m.trim() == mode => rows.push(("boot mode".to_string(), Status::Ok, format!("{mode}, as /sys/firmware/efi says"))),
        Some(m) => rows.push(("boot mode".to_string(), Status::Fail, format!("proxmox-boot-tool says {}, /sys/firmware/efi says {mode}", m.trim()))),
        None => rows.push(("boot mode".to_string(), Status::Fail, "proxmox-boot-tool status printed no boot mode".to_string())),
    }
    let configured: Vec<(&str, &str)> = stdout.lines().filter_map(|l| l.trim().split_once(" is configured with: ")).collect();
    // "uefi (versions: A, B), grub (versions: C)": the versions of one loader
    let versions = |with: &str, loader: &str| -> Option<Vec<String>> {
        let rest = with.split(&format!("{loader} (versions: ")).nth(1)?;
        Some(rest.split(')').next().unwrap_or("").split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect())
    };
    let loader = if uefi { "uefi" } else { "grub" };
    for (name, uuid) in esps {
        let row = match configured.iter().find(|(u, _)| u.eq_ignore_ascii_case(uuid)) {
            None => (Status::Fail, format!("ESP {uuid} is not configured (not in /etc/kernel/proxmox-boot-uuids, or skipped)")),
            Some((_, with)) => match versions(with, loader) {
                None => (Status::Fail, format!("ESP {uuid} is configured with {with}, not {loader} as the firmware boots")),
                Some(v) if kernel.is_empty() || v.iter().any(|k| k == kernel) => (Status::Ok, format!("ESP {uuid}: {with}")),
                Some(v) => (Status::Fail, format!("ESP {uuid} has {loader} kernels {} but not the newest, {kernel} (run `proxmox-boot-tool refresh`)", v.join(", "))),
            },
        };
        rows.push((name.clone(), row.0, row.1));
    }
    let warnings: Vec<&str> = stdout.lines().chain(stderr.lines()).map(str::trim).filter(|l| l.starts_with("WARN") || l.starts_with("E:")).collect();
    if warnings.is_empty() {
        rows.push(("proxmox-boot-tool warnings".to_string(), Status::Ok, "none".to_string()));
    } else {
        rows.push(("proxmox-boot-tool warnings".to_string(), Status::Fail, warnings.join("; ")));
    }
    rows
}

/// The newest kernel in the installed system's /boot.
fn newest_kernel(c: &mut Checks, root: &Path) -> Option<String> {
    let boot = under(root, "/boot");
    let out = c.out(&["ls", &boot.display().to_string()]).ok()?;
    let mut k: Vec<String> = out.lines().filter_map(|l| l.strip_prefix("vmlinuz-")).map(String::from).collect();
    k.sort_by(|a, b| version_cmp(a, b));
    k.pop()
}

/// Compares version strings by their numeric runs ("6.8.12-4" > "6.8.9-1").
fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let nums = |s: &str| s.split(|ch: char| !ch.is_ascii_digit()).filter(|x| !x.is_empty()).map(|x| x.parse::<u64>().unwrap_or(0)).collect::<Vec<_>>();
    nums(a).cmp(&nums(b)).then_with(|| a.cmp(b))
}

/// The drives that are there, each with its row name ("boot DRIVE"); a missing one gets its
/// row now (a warning while another drive is left: a degraded mirror still boots).
fn present_drives<'d>(c: &mut Checks, disks: &'d [String]) -> Vec<(String, &'d str)> {
    let mut present = Vec::new();
    for disk in disks {
        let name = format!("boot {}", disk.rsplit('/').next().unwrap_or(disk));
        if c.host.exists(Path::new(disk)) {
            present.push((name, disk.as_str()));
        } else {
            c.add(name, if disks.len() > 1 { Status::Warn } else { Status::Fail }, "drive not present");
        }
    }
    present
}

/// A boot loader on every drive, and the same boot files on every ESP.
fn boot(c: &mut Checks, p: &Profile, root: &Path, disks: &[String]) {
    if disks.is_empty() {
        c.add("boot drives", Status::Fail, "no rpool member found to check");
        return;
    }
    if p.os.bootloader == Bootloader::ProxmoxBootTool {
        let kernel = newest_kernel(c, root).unwrap_or_default();
        let uefi = c.host.exists(Path::new("/sys/firmware/efi"));
        let mut esps = Vec::new();
        for (name, disk) in present_drives(c, disks) {
            let esp = format!("{disk}-part1");
            match c.out(&["blkid", "-s", "UUID", "-o", "value", &esp]) {
                Ok(uuid) if !uuid.trim().is_empty() => esps.push((name, uuid.trim().to_string())),
                Ok(_) => c.add(name, Status::Fail, format!("ESP {esp} has no file system UUID")),
                Err(e) => c.add(name, Status::Fail, format!("ESP {esp}: {e}")),
            }
        }
        let argv = in_root(root, &["proxmox-boot-tool", "status"]);
        match c.host.run(&argv, T) {
            Ok(o) if o.success() => {
                for (name, status, detail) in boot_tool_status(&o.stdout, &o.stderr, &esps, &kernel, uefi) {
                    c.add(name, status, detail);
                }
            }
            Ok(o) => c.add("proxmox-boot-tool", Status::Fail, format!("`{}` exited {}: {}", argv.join(" "), o.code, o.stderr_tail(2))),
            Err(e) => c.add("proxmox-boot-tool", Status::Fail, e.to_string()),
        }
        return;
    }
    let Some(kernel) = newest_kernel(c, root) else {
        c.add("kernel", Status::Fail, format!("no vmlinuz-* in {}", under(root, "/boot").display()));
        return;
    };
    let want: Vec<(String, String)> = [format!("vmlinuz-{kernel}"), format!("initrd.img-{kernel}")]
        .into_iter()
        .map(|f| {
            let sum = c.host.read_bytes(&under(root, &format!("/boot/{f}"))).map(|b| sha256(&b)).unwrap_or_default();
            (f, sum)
        })
        .collect();
    let bios = c.host.exists(&under(root, "/usr/lib/grub/i386-pc"));
    let efi = c.host.exists(&under(root, "/usr/lib/grub/x86_64-efi"));
    let mnt = "/run/keel-verify-esp";
    let mut cfgs = Vec::new();
    for (name, disk) in present_drives(c, disks) {
        let mut problems = Vec::new();
        if bios {
            let mbr = c.host.read_head(Path::new(disk), 512).unwrap_or_default();
            if !mbr.windows(4).any(|w| w == b"GRUB") {
                problems.push("no GRUB boot code in the MBR".to_string());
            }
        }
        let esp = format!("{disk}-part1");
        let _ = c.out(&["mkdir", "-p", mnt]);
        if let Err(e) = c.out(&["mount", "-o", "ro", "-t", "vfat", &esp, mnt]) {
            c.add(name, Status::Fail, format!("ESP {esp} cannot be mounted: {e}"));
            continue;
        }
        for (f, sum) in &want {
            match c.host.read_bytes(&Path::new(mnt).join(f)) {
                Ok(b) if &sha256(&b) == sum => {}
                Ok(_) => problems.push(format!("{f} differs from /boot")),
                Err(_) => problems.push(format!("{f} missing")),
            }
        }
        match c.host.read_file(&Path::new(mnt).join("grub/grub.cfg")) {
            Ok(cfg) => {
                if !cfg.contains(&format!("/vmlinuz-{kernel} {}", render::kernel_cmdline(p))) {
                    problems.push("grub.cfg does not boot the newest kernel with the ZFS root".into());
                }
                cfgs.push(cfg);
            }
            Err(_) => problems.push("grub/grub.cfg missing".into()),
        }
        if efi && !c.host.exists(&Path::new(mnt).join("EFI/BOOT/BOOTX64.EFI")) {
            problems.push("EFI/BOOT/BOOTX64.EFI missing".into());
        }
        let _ = c.out(&["umount", mnt]);
        if problems.is_empty() {
            let loaders = [(bios, "BIOS"), (efi, "UEFI")].iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect::<Vec<_>>().join("+");
            c.add(name, Status::Ok, format!("GRUB ({loaders}), kernel {kernel} and its initramfs on the ESP"));
        } else {
            c.add(name, Status::Fail, problems.join("; "));
        }
    }
    if cfgs.len() > 1 {
        let same = cfgs.windows(2).all(|w| w[0] == w[1]);
        c.add("ESPs in sync", if same { Status::Ok } else { Status::Fail }, if same { "grub.cfg identical on every drive" } else { "grub.cfg differs between drives: run keel-boot-sync refresh" });
    }
}

fn network(c: &mut Checks, p: &Profile) {
    let g = &p.network.guest_bridge;
    // administratively up (IFF_UP); a bridge without ports reports operstate "down" regardless
    let flags = c.host.read_file(Path::new(&format!("/sys/class/net/{}/flags", g.name))).map(|s| s.trim().to_string());
    match flags.as_deref().map(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).unwrap_or(0)) {
        Ok(f) if f & 1 == 1 => c.add(format!("{} up", g.name), Status::Ok, format!("flags {}", flags.unwrap_or_default())),
        Ok(_) => c.add(format!("{} up", g.name), Status::Fail, format!("administratively down (flags {})", flags.unwrap_or_default())),
        Err(_) => c.add(format!("{} up", g.name), Status::Fail, "no such interface"),
    }
    let filtering = c.host.read_file(Path::new(&format!("/sys/class/net/{}/bridge/vlan_filtering", g.name))).unwrap_or_default();
    c.equal(format!("{} VLAN-aware", g.name), "1", filtering.trim());
    let vlans = c.out(&["bridge", "vlan", "show", "dev", &g.name]).unwrap_or_default();
    for v in &g.vlans {
        let on_bridge = vlans.split_whitespace().any(|w| w == v.id.to_string());
        let iface = c.host.exists(Path::new(&format!("/sys/class/net/{}.{}", g.name, v.id)));
        c.add(
            format!("VLAN {} ({})", v.id, v.name),
            if on_bridge && iface { Status::Ok } else { Status::Fail },
            format!("on {}: {}; {}.{}: {}", g.name, if on_bridge { "yes" } else { "no" }, g.name, v.id, if iface { "present" } else { "missing" }),
        );
    }
    let cb = &p.network.cluster_bridge;
    let mtu = c.host.read_file(Path::new(&format!("/sys/class/net/{}/mtu", cb.name))).unwrap_or_default();
    c.equal(format!("{} MTU", cb.name), &cb.mtu.to_string(), mtu.trim());
}

fn quorum(c: &mut Checks, p: &Profile, expect: bool) {
    let out = match c.out(&["corosync-quorumtool", "-s"]) {
        Ok(o) => o,
        // corosync-quorumtool exits 2 when not quorate but still prints the status
        Err(e) => {
            c.add("corosync quorum", if expect { Status::Fail } else { Status::Warn }, e);
            return;
        }
    };
    let field = |name: &str| out.lines().find(|l| l.trim_start().starts_with(name)).and_then(|l| l.split(':').nth(1)).map(|v| v.trim().to_string()).unwrap_or_default();
    let (quorate, nodes) = (field("Quorate"), field("Nodes"));
    let want = p.cluster.nodes.len().to_string();
    let ok = quorate == "Yes" && nodes == want;
    c.add("corosync quorum", if ok { Status::Ok } else if expect { Status::Fail } else { Status::Warn }, format!("quorate: {quorate}, nodes: {nodes} of {want}"));
    // the cluster pvecm formed: this node in its nodelist with the profile's id, and the
    // profile's quorum and crypto settings in place (the first boot adds them)
    let st = if expect { Status::Fail } else { Status::Warn };
    match c.host.read_file(Path::new("/etc/pve/corosync.conf")) {
        Err(_) => c.add("cluster membership", st, "/etc/pve/corosync.conf is missing: no cluster formed yet (keel-first-boot runs pvecm)"),
        Ok(conf) => {
            let me = p.this_cluster_node();
            let nodes = render::corosync::nodelist(&conf);
            match nodes.iter().find(|n| n.name == me.name) {
                Some(n) if n.nodeid == me.id => c.add("cluster membership", Status::Ok, format!("{} is node {} of {} in /etc/pve/corosync.conf", me.name, n.nodeid, nodes.len())),
                Some(n) => c.add("cluster membership", Status::Fail, format!("{} has node id {} in /etc/pve/corosync.conf, the profile says {}", me.name, n.nodeid, me.id)),
                None => c.add("cluster membership", st, format!("{} is not in /etc/pve/corosync.conf's nodelist ({})", me.name, nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", "))),
            }
            match render::corosync::apply_profile(&conf, p) {
                Ok(None) => c.add("cluster settings", Status::Ok, "two_node and crypto as the profile says"),
                Ok(Some(_)) => c.add("cluster settings", st, "the profile's two_node/crypto settings are not in /etc/pve/corosync.conf yet"),
                Err(e) => c.add("cluster settings", Status::Fail, e),
            }
        }
    }
}

/// The checks as a table, then a closing line.
pub fn table(rows: &[Check]) -> String {
    let body: Vec<[String; 3]> = rows.iter().map(|r| [r.name.clone(), r.status.word().to_string(), r.detail.clone()]).collect();
    let mut out = crate::table::render(&["CHECK", "STATUS", "DETAIL"], &body);
    let fails = rows.iter().filter(|r| r.status == Status::Fail).count();
    let warns = rows.iter().filter(|r| r.status == Status::Warn).count();
    out.push_str(&format!("{} checks: {} ok, {warns} warning(s), {fails} failed\n", rows.len(), rows.len() - fails - warns));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::host::{FakeHost, Output};

    fn lab() -> Profile {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/lab-node-01.toml");
        Profile::load(&p).unwrap().profile
    }

    #[test]
    fn another_importable_rpool_fails_verify_on_the_node() {
        let p = crate::profile::Profile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/pve-node-01.toml")).unwrap().profile;
        let mut h = FakeHost::default();
        h.answer("zpool import", Output::ok("   pool: rpool\n     id: 999\n  state: ONLINE\n config:\n\n\trpool ONLINE\n\t  sda2 ONLINE\n\n"));
        let rows = run(&mut h, &p, &Options::default());
        let r = rows.iter().find(|r| r.name == "other pools named rpool/datapool").unwrap();
        assert_eq!(r.status, Status::Fail);
        assert!(r.detail.contains("rpool (GUID 999, exported, ONLINE) on sda2"), "{}", r.detail);
        let rows = run(&mut h, &p, &Options { root: "/mnt/keel".into(), ..Default::default() });
        assert_eq!(rows.iter().find(|r| r.name == "other pools named rpool/datapool").unwrap().status, Status::Warn);
    }

    /// Pools made by a newer OpenZFS: a feature outside the profile's set (the node's OpenZFS)
    /// fails verify, and so does a pool made without the limit.
    #[test]
    fn features_outside_the_profiles_set_fail() {
        let p = lab(); // openzfs-2.1-linux
        let mut h = FakeHost::default();
        h.files.insert("/usr/share/zfs/compatibility.d/openzfs-2.1-linux".into(), b"async_destroy\nlz4_compress\n".to_vec());
        h.answer("zpool get -H -o value compatibility", Output::ok("openzfs-2.1-linux\n"));
        h.answer("zpool get -H -o property,value all", Output::ok("feature@async_destroy\tactive\nfeature@lz4_compress\tenabled\nfeature@head_errlog\tdisabled\n"));
        let rows = run(&mut h, &p, &Options::default());
        let r = row(&rows, "rpool features");
        assert_eq!((r.status, r.detail.as_str()), (Status::Ok, "2 enabled, all in openzfs-2.1-linux"));
        assert_eq!(row(&rows, "rpool compatibility").status, Status::Ok);

        h.set("zpool get -H -o property,value all", Output::ok("feature@async_destroy\tactive\nfeature@head_errlog\tactive\nfeature@vdev_zaps_v2\tenabled\n"));
        h.set("zpool get -H -o value compatibility", Output::ok("off\n"));
        let rows = run(&mut h, &p, &Options::default());
        let r = row(&rows, "datapool features");
        assert_eq!(r.status, Status::Fail);
        assert!(r.detail.contains("enabled outside openzfs-2.1-linux: head_errlog, vdev_zaps_v2"), "{r:?}");
        let r = row(&rows, "rpool compatibility");
        assert_eq!((r.status, r.detail.as_str()), (Status::Fail, "expected openzfs-2.1-linux, found off"));

        // the set's file is not on the system running verify, but in the installed root
        h.files.clear();
        h.files.insert("/mnt/keel/usr/share/zfs/compatibility.d/openzfs-2.1-linux".into(), b"async_destroy head_errlog vdev_zaps_v2\n".to_vec());
        let rows = run(&mut h, &p, &Options { root: "/mnt/keel".into(), ..Default::default() });
        assert_eq!(row(&rows, "rpool features").status, Status::Ok);
        h.files.clear();
        let rows = run(&mut h, &p, &Options { root: "/mnt/keel".into(), ..Default::default() });
        let r = row(&rows, "rpool features");
        assert_eq!(r.status, Status::Fail);
        assert!(r.detail.contains("cannot check them against openzfs-2.1-linux: no feature set openzfs-2.1-linux"), "{r:?}");
    }

    /// OpenZFS 2.3 shows xattr=sa as "on": verify takes it for sa there, and nowhere else.
    #[test]
    fn xattr_on_is_sa_only_under_openzfs_2_3() {
        let p = lab();
        let mut h = FakeHost::default();
        h.answer("zfs get -H -o value xattr", Output::ok("on\n"));
        h.files.insert(crate::exec::engine::ZFS_VERSION_FILE.into(), b"2.3.2-2~bpo12+2\n".to_vec());
        let rows = run(&mut h, &p, &Options::default());
        let r = row(&rows, "rpool xattr");
        assert_eq!((r.status, r.detail.as_str()), (Status::Ok, "sa (OpenZFS 2.3.2-2~bpo12+2 shows it as on)"));
        h.files.insert(crate::exec::engine::ZFS_VERSION_FILE.into(), b"2.1.11-1\n".to_vec());
        let rows = run(&mut h, &p, &Options::default());
        assert_eq!(row(&rows, "rpool xattr").status, Status::Fail);
    }

    /// A node booted from drive 1 alone: zpool status names the missing member by its old path.
    fn one_drive_host(health: &str) -> FakeHost {
        let mut h = FakeHost::default();
        let a = "/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME0001";
        let b = "/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME0002";
        h.answer("zpool list -H -o health", Output::ok(&format!("{health}\n")));
        for (pool, n) in [("rpool", 2), ("datapool", 3)] {
            h.answer(&format!("zpool status -P {pool}"), Output::ok(&format!(
                "  pool: {pool}\n state: {health}\nconfig:\n\t{pool} {health}\n\t  mirror-0 {health}\n\t    {a}-part{n} ONLINE 0 0 0\n\t    1234567890 UNAVAIL 0 0 0  was {b}-part{n}\n"
            )));
        }
        h.links.insert(a.into(), "/dev/nvme0n1".into());
        h.answer("ls /mnt/keel/boot", Output::ok("config-6.1.0-50-amd64\ninitrd.img-6.1.0-50-amd64\nvmlinuz-6.1.0-50-amd64\n"));
        h
    }

    fn row<'a>(rows: &'a [Check], name: &str) -> &'a Check {
        rows.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no row {name}: {rows:?}"))
    }

    #[test]
    fn a_missing_drive_is_a_warning_only_when_allowed() {
        let p = lab();
        let rows = run(&mut one_drive_host("DEGRADED"), &p, &Options { root: "/mnt/keel".into(), ..Default::default() });
        assert_eq!(row(&rows, "rpool health").status, Status::Fail);
        assert_eq!(row(&rows, "rpool mirror").status, Status::Fail);
        let opts = Options { root: "/mnt/keel".into(), allow_degraded: true, ..Default::default() };
        let rows = run(&mut one_drive_host("DEGRADED"), &p, &opts);
        assert_eq!(row(&rows, "rpool health").status, Status::Warn);
        let m = row(&rows, "rpool mirror");
        assert_eq!(m.status, Status::Warn, "{m:?}");
        assert!(m.detail.starts_with("1 of 2 members online"), "{m:?}");
        assert_eq!(row(&rows, "boot nvme-QEMU_NVMe_Ctrl_LABNVME0002").status, Status::Warn);
        // whatever else is wrong still fails: here nothing was installed at all
        assert_eq!(row(&rows, "rendered files").status, Status::Fail);
        assert_eq!(row(&rows, "rpool compression").status, Status::Fail);
        // drive 1 is there but its ESP holds nothing (the fake mounts nothing)
        let b1 = row(&rows, "boot nvme-QEMU_NVMe_Ctrl_LABNVME0001");
        assert_eq!(b1.status, Status::Fail, "{b1:?}");
        assert!(b1.detail.contains("vmlinuz-6.1.0-50-amd64 missing") && b1.detail.contains("grub/grub.cfg missing"), "{b1:?}");
    }

    /// A target whose sshd refuses keel's configuration (or whose /etc/localtime dangles) fails
    /// verify, so the install stops before the node would; the node's swap must be on.
    #[test]
    fn the_targets_own_parsers_and_the_nodes_swap_are_checked() {
        let p = lab();
        let target = Options { root: "/mnt/keel".into(), ..Default::default() };
        let mut h = one_drive_host("ONLINE");
        let rows = run(&mut h, &p, &target);
        assert!(row(&rows, "sshd -t").detail.contains("openssh-server is not installed"));
        h.files.insert("/mnt/keel/usr/sbin/sshd".into(), Vec::new());
        h.answer("chroot /mnt/keel /usr/sbin/sshd -t", Output::failed(255, "/etc/ssh/sshd_config.d/50-keel-hardening.conf line 14: Bad SSH2 cipher spec 'aes256-gmc@openssh.com'."));
        h.answer("chroot /mnt/keel readlink -e /etc/localtime", Output::failed(1, ""));
        let rows = run(&mut h, &p, &target);
        let sshd = row(&rows, "sshd -t");
        assert_eq!(sshd.status, Status::Fail);
        assert!(sshd.detail.contains("Bad SSH2 cipher spec"), "{sshd:?}");
        assert_eq!(row(&rows, "time zone").status, Status::Fail);
        assert!(h.commands().contains(&"chroot /mnt/keel mkdir -p /run/sshd".to_string()));
        h.set("chroot /mnt/keel /usr/sbin/sshd -t", Output::ok(""));
        h.set("chroot /mnt/keel readlink -e /etc/localtime", Output::ok("/usr/share/zoneinfo/Europe/Berlin\n"));
        let rows = run(&mut h, &p, &target);
        assert_eq!(row(&rows, "sshd -t").status, Status::Ok);
        assert_eq!(row(&rows, "time zone").status, Status::Ok);
        assert!(!rows.iter().any(|r| r.name == "swap"), "swap is checked on the node only");

        // on the node: the zvol must be in /proc/swaps, swappiness keel's
        let node = Options::default();
        h.files.insert("/usr/sbin/sshd".into(), Vec::new());
        h.files.insert("/proc/swaps".into(), b"Filename\tType\tSize\tUsed\tPriority\n".to_vec());
        h.files.insert("/proc/sys/vm/swappiness".into(), b"60\n".to_vec());
        let rows = run(&mut h, &p, &node);
        assert!(row(&rows, "swap").detail.contains("does not exist"), "{rows:?}");
        h.links.insert("/dev/zvol/rpool/swap".into(), "/dev/zd0".into());
        let rows = run(&mut h, &p, &node);
        assert_eq!(row(&rows, "swap").status, Status::Fail);
        assert!(row(&rows, "swap").detail.contains("is not active"));
        assert_eq!(row(&rows, "vm.swappiness").detail, "expected 10, found 60");
        h.files.insert("/proc/swaps".into(), b"Filename\tType\tSize\tUsed\tPriority\n/dev/zd0 partition 524284 0 -2\n".to_vec());
        h.files.insert("/proc/sys/vm/swappiness".into(), b"10\n".to_vec());
        let rows = run(&mut h, &p, &node);
        assert_eq!(row(&rows, "swap").status, Status::Ok);
        assert_eq!(row(&rows, "vm.swappiness").status, Status::Ok);
        assert!(h.commands().iter().filter(|c| c.contains("mkdir -p /run/sshd")).all(|c| c.starts_with("chroot")), "the node's /run is not touched");
    }

    /// proxmox-boot-tool status, as its script prints it, read line by line: every drive's ESP
    /// in the firmware's mode with the newest kernel; an ESP skipped with a warning (exit 0) or
    /// configured for the other mode or an older kernel fails.
    #[test]
    fn proxmox_boot_tool_status_is_read_per_esp() {
        let esps = vec![("boot A".to_string(), "1A2B-3C4D".to_string()), ("boot B".to_string(), "5E6F-7A8B".to_string())];
        let k = "6.8.12-4-pve";
        let good = "Re-executing '/usr/sbin/proxmox-boot-tool' in new private mount namespace..\nSystem currently booted with uefi\n1A2B-3C4D is configured with: uefi (versions: 6.8.12-4-pve, 6.8.8-2-pve)\n5E6F-7A8B is configured with: uefi (versions: 6.8.12-4-pve), grub (versions: 6.8.12-4-pve)\n";
        let rows = boot_tool_status(good, "", &esps, k, true);
        assert!(rows.iter().all(|r| r.1 == Status::Ok), "{rows:?}");
        assert_eq!(rows.len(), 4);
        // legacy BIOS reads the grub part
        let bios = good.replace("booted with uefi", "booted with legacy bios").replace("uefi (versions: 6.8.12-4-pve, 6.8.8-2-pve)", "grub (versions: 6.8.12-4-pve)");
        assert!(boot_tool_status(&bios, "", &esps, k, false).iter().all(|r| r.1 == Status::Ok));
        // the mode the tool reports must be the firmware's, and a uefi-only ESP does not boot a BIOS
        let rows = boot_tool_status(good, "", &esps, k, false);
        let bad: Vec<&str> = rows.iter().filter(|r| r.1 == Status::Fail).map(|r| r.0.as_str()).collect();
        assert_eq!(bad, ["boot mode", "boot A"], "{rows:?}");
        // one ESP skipped: a warning on stderr, no line for it, exit 0
        let skipped = good.lines().filter(|l| !l.starts_with("5E6F")).collect::<Vec<_>>().join("\n");
        let rows = boot_tool_status(&skipped, "WARN: /dev/disk/by-uuid/5E6F-7A8B does not exist - clean '/etc/kernel/proxmox-boot-uuids'! - skipping\n", &esps, k, true);
        let bad: Vec<&str> = rows.iter().filter(|r| r.1 == Status::Fail).map(|r| r.0.as_str()).collect();
        assert_eq!(bad, ["boot B", "proxmox-boot-tool warnings"], "{rows:?}");
        // an older kernel only
        let rows = boot_tool_status(good, "", &esps, "6.8.14-1-pve", true);
        assert!(rows.iter().find(|r| r.0 == "boot A").unwrap().2.contains("not the newest, 6.8.14-1-pve"), "{rows:?}");
    }

    #[test]
    fn versions_sort_by_number() {
        let mut v = vec!["6.8.9-1-pve", "6.8.12-4-pve", "6.5.13-6-pve"];
        v.sort_by(|a, b| version_cmp(a, b));
        assert_eq!(v, ["6.5.13-6-pve", "6.8.9-1-pve", "6.8.12-4-pve"]);
    }
}
