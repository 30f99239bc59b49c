//! The engine and preflight against the recording fake host, on the AX41 fixture and the seed
//! profile: exact commands and order, resume, crash recovery, refusals and error texts.

use std::path::{Path, PathBuf};

use super::engine::{execute as engine_execute, Options, Outcome};
use super::host::{Call, FakeHost, Output};
use super::journal::{Journal, Record};
use super::preflight;
use crate::hardware::{probe, Inventory};
use crate::plan::{self, Plan};
use crate::profile::Profile;

fn ws(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// What the fake "download" of the Proxmox key yields; the test plans pin its SHA-512.
const TEST_KEY: &[u8] = b"test release key";
/// Stands for keel's binary in the fake.
const TEST_EXE: &str = "/usr/local/bin/keel";

/// What `lsinitramfs` lists of an initramfs that can import the ZFS root.
const ZFS_INITRAMFS: &str = "scripts/zfs\nusr/sbin/zpool\nusr/lib/modules/6.8.12-4-pve/zfs/zfs.ko\n";

fn profile() -> Profile {
    Profile::load(&ws("profiles/pve-node-01.toml")).unwrap().profile
}

fn setup(fixture: &str) -> (Inventory, Plan) {
    let inv = probe(&ws(&format!("tests/fixtures/{fixture}"))).unwrap();
    let mut plan = plan::build(&inv, &profile(), None).unwrap();
    for s in &mut plan.steps {
        for c in &mut s.checksums {
            use sha2::{Digest, Sha512};
            c.sha512 = crate::profile::hex_digest(&Sha512::digest(TEST_KEY));
        }
    }
    (inv, plan)
}

fn opts() -> Options {
    Options { self_exe: TEST_EXE.into(), ..Default::default() }
}

fn until(step: &str) -> Options {
    Options { until: Some(step.into()), ..opts() }
}

/// The engine on the seed profile (the one `setup` plans with).
fn execute(h: &mut FakeHost, plan: &Plan, j: &mut Journal, o: &Options, progress: &mut dyn FnMut(&super::journal::Entry)) -> Result<Outcome, super::engine::ExecError> {
    engine_execute(h, plan, &profile(), j, o, progress)
}

/// A fake rescue system: root, every tool, by-id links to the fixture's devices, empty disks.
fn host_for(plan: &Plan) -> FakeHost {
    let mut h = FakeHost { root: true, ..Default::default() };
    for p in ["sgdisk", "wipefs", "zpool", "zfs", "mkfs.vfat", "mkswap", "partprobe", "udevadm", "blkid", "sfdisk", "umount", "chroot", "cp", "curl", "mmdebstrap", "mkdir", "mount", "mountpoint", "rm", "sync", "zgenhostid", "find"] {
        h.programs.push(p.into());
    }
    for t in &plan.targets {
        let dev = format!("/dev/{}", t.kernel_name);
        h.links.insert(t.by_id.clone().into(), dev.clone().into());
        for p in &plan.layout.partitions {
            h.links.insert(t.part(p.number).into(), format!("{dev}p{}", p.number).into());
        }
    }
    h.files.insert("/sys/module/zfs".into(), Vec::new());
    // the feature sets of an OpenZFS 2.2 (shortened: what the tests look at)
    h.files.insert("/usr/share/zfs/compatibility.d/openzfs-2.1-linux".into(), b"# OpenZFS 2.1 on Linux\nasync_destroy\nlz4_compress\n".to_vec());
    h.files.insert("/usr/share/zfs/compatibility.d/openzfs-2.2-linux".into(), b"# OpenZFS 2.2\nasync_destroy\nblock_cloning\nlz4_compress\n".to_vec());
    h.answer("sfdisk --json", Output::failed(1, "sfdisk: cannot open: no partition table"));
    h.answer("zfs list", Output::failed(1, "dataset does not exist"));
    h.answer("zfs get", Output::ok("no\n"));
    h.answer("zpool list", Output::failed(1, "no such pool"));
    h.answer("zpool import", Output::failed(1, "no such pool available for import"));
    h.answer("zpool status", Output::ok("no pools available\n"));
    // the pools keel made: limited to the profile's set, two of its features on
    h.answer("zpool get -H -o value compatibility", Output::ok("openzfs-2.2-linux\n"));
    h.answer("zpool get -H -o property,value all", Output::ok("size\t1000\nfeature@async_destroy\tenabled\nfeature@block_cloning\tactive\nfeature@zilsaxattr\tdisabled\n"));
    // each pool: absent until `zpool create` made it, then imported (with its GUID)
    for (pool, guid) in [("rpool", "1111"), ("datapool", "2222")] {
        let list = format!("zpool list -H -p -o name,guid,health {pool}");
        h.answer(&list, Output::failed(1, &format!("cannot open '{pool}': no such pool")));
        h.triggers.push((format!("-R /mnt/keel {pool} "), list, Output::ok(&format!("{pool}\t{guid}\tONLINE\n"))));
    }
    // what the OS steps leave and the checks of `verify.target` see
    if let Some(key) = plan.steps.iter().flat_map(|s| &s.checksums).next() {
        h.effects.push(("curl ".into(), key.path.clone().into(), TEST_KEY.to_vec()));
    }
    h.effects.push(("mmdebstrap ".into(), "/mnt/keel/etc/debian_version".into(), b"12.8\n".to_vec()));
    h.effects.push(("mmdebstrap ".into(), "/mnt/keel/var/lib/dpkg/status".into(), b"Package: dpkg\n".to_vec()));
    // the snapshot the package step starts from: there once taken, gone once destroyed
    let before = format!("{}@{}", crate::image::ROOT_DATASET, crate::plan::BEFORE_PACKAGES_SNAPSHOT);
    let listed = format!("zfs list -H -t snapshot -o name {before}");
    h.triggers.push((format!("zfs snapshot {before}"), listed.clone(), Output::ok(&format!("{before}\n"))));
    h.triggers.push((format!("zfs destroy {before}"), listed, Output::failed(1, "could not find any snapshots to destroy")));
    h.effects.push(("zgenhostid -f -o /mnt/keel/etc/hostid".into(), "/mnt/keel/etc/hostid".into(), crate::render::host_id(&profile()).to_le_bytes().to_vec()));
    h.files.insert(TEST_EXE.into(), b"keel binary".to_vec());
    h.files.insert(ws("profiles/pve-node-01.toml"), std::fs::read(ws("profiles/pve-node-01.toml")).unwrap());
    // the target's sshd (openssh-server) for verify's `sshd -t`
    h.effects.push(("mmdebstrap ".into(), "/mnt/keel/usr/sbin/sshd".into(), b"sshd".to_vec()));
    for unit in crate::render::RPCBIND_UNITS {
        h.link_effects.push(("chroot /mnt/keel systemctl mask ".into(), format!("/mnt/keel/etc/systemd/system/{unit}").into(), "/dev/null".into()));
    }
    h.answer("mountpoint -q", Output::failed(32, ""));
    h.answer("chroot /mnt/keel dpkg-query", Output::failed(1, "no packages found"));
    h.answer("chroot /mnt/keel id -u", Output::failed(1, "no such user"));
    h.answer("zpool list -H -o health", Output::ok("ONLINE\n"));
    let members = |n: u32| plan.targets.iter().map(|t| format!("\t    {} ONLINE 0 0 0\n", t.part(n))).collect::<String>();
    h.answer("zpool status -P rpool", Output::ok(&format!("  pool: rpool\nconfig:\n\trpool ONLINE\n\t  mirror-0 ONLINE\n{}", members(2))));
    h.answer("zpool status -P datapool", Output::ok(&format!("  pool: datapool\nconfig:\n\tdatapool ONLINE\n\t  mirror-0 ONLINE\n{}", members(3))));
    h.answer("zpool get -H -o value ashift", Output::ok("12\n"));
    h.answer("zpool get -H -o value bootfs", Output::ok("rpool/ROOT/pve-1\n"));
    for (prop, value) in profile().zfs.fs_properties() {
        h.answer(&format!("zfs get -H -o value {prop}"), Output::ok(&format!("{value}\n")));
    }
    // the target as keel-boot-sync leaves it, for verify's boot checks (GRUB, the seed's loader):
    // the kernel in /boot and on the ESP (the fake mounts every ESP on the same folder)
    let kernel = "6.8.12-4-pve";
    h.answer("ls /mnt/keel/boot", Output::ok(&format!("vmlinuz-{kernel}\ninitrd.img-{kernel}\n")));
    for f in [format!("vmlinuz-{kernel}"), format!("initrd.img-{kernel}")] {
        h.files.insert(format!("/mnt/keel/boot/{f}").into(), f.as_bytes().to_vec());
        h.files.insert(format!("/run/keel-verify-esp/{f}").into(), f.as_bytes().to_vec());
    }
    let cmdline = crate::render::kernel_cmdline(&profile());
    h.files.insert("/run/keel-verify-esp/grub/grub.cfg".into(), format!("linux /vmlinuz-{kernel} {cmdline}\n").into_bytes());
    for t in &plan.targets {
        h.files.insert(t.by_id.clone().into(), Vec::new());
    }
    h.answer("zfs list -H -o name -t", Output::ok("rpool/ROOT/pve-1\nrpool/swap\ndatapool/ct\ndatapool/vm\ndatapool/backups\ndatapool/templates\n"));
    h
}

/// `sfdisk --json` of a disk partitioned exactly as planned.
fn sfdisk_json(plan: &Plan, dev: &str) -> String {
    let guid = |c: &str| match c {
        "EF00" => "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
        "EF02" => "21686148-6449-6E6F-744E-656564454649",
        _ => "6A898CC3-1DD2-11B2-99A6-080020736631",
    };
    let parts: Vec<String> = plan
        .layout
        .partitions
        .iter()
        .map(|p| format!(r#"{{"node":"{dev}p{}","start":{},"size":{},"type":"{}"}}"#, p.number, p.first_sector, p.last_sector - p.first_sector + 1, guid(p.type_code)))
        .collect();
    format!(r#"{{"partitiontable":{{"label":"gpt","device":"{dev}","partitions":[{}]}}}}"#, parts.join(","))
}

/// The disks now carry the planned tables and vfat ESPs (what the partition steps leave).
fn partitioned(h: &mut FakeHost, plan: &Plan) {
    for t in &plan.targets {
        let dev = format!("/dev/{}", t.kernel_name);
        h.answer(&format!("sfdisk --json {dev}"), Output::ok(&sfdisk_json(plan, &dev)));
        h.answer(&format!("blkid -p -o value -s TYPE {}", t.part(1)), Output::ok("vfat\n"));
    }
}

/// The rescue system as a reboot leaves it after the disk phase: the plan's partitions, pools
/// and datasets there, the swap zvol formatted.
fn after_reboot(h: &mut FakeHost, plan: &Plan) {
    partitioned(h, plan);
    h.set("zpool list -H -o name", Output::ok("pool\n"));
    h.set("zfs list -H -o name", Output::ok("dataset\n"));
    h.answer("blkid -p -o value -s TYPE /dev/zvol/rpool/swap", Output::ok("swap\n"));
}

fn journal(h: &mut FakeHost, plan: &Plan) -> Journal {
    Journal::open(h, Path::new("/var/lib/keel/install-pve-node-01.jsonl"), plan, false).unwrap()
}

fn planned_commands(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .filter(|s| s.group != plan::Group::Preflight)
        .flat_map(|s| s.commands.iter().map(|c| super::host::command_line(c)))
        .collect()
}

#[test]
fn fresh_install_runs_exactly_the_planned_commands_in_order() {
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    let mut j = journal(&mut h, &plan);
    let mut events = Vec::new();
    let out = execute(&mut h, &plan, &mut j, &opts(), &mut |e| events.push(e.record.clone())).unwrap();
    assert_eq!(out, Outcome::Finished);
    // Only the checks (read-only queries) may run besides the planned commands.
    let checks = ["sfdisk --json", "zfs list", "zfs get -H -o", "zpool list", "zpool import -d", "blkid", "mountpoint -q",
        "chroot /mnt/keel dpkg-query", "chroot /mnt/keel id -u", "zpool status -P", "zpool get -H -o value", "zpool get -H -o property,value all", "chroot /mnt/keel proxmox-boot-tool status", "find /mnt/keel/boot", "find /mnt/keel/etc/systemd",
        "chroot /mnt/keel mkdir -p /run/sshd", "chroot /mnt/keel /usr/sbin/sshd -t", "chroot /mnt/keel readlink -e /etc/localtime",
        "ls /mnt/keel/boot", "mkdir -p /run/keel-verify-esp", "mount -o ro -t vfat", "umount /run/keel-verify-esp"];
    // (`zpool import` alone only lists what could be imported: verify's look for other rpools)
    let ran: Vec<String> = h.commands().into_iter().filter(|c| !checks.iter().any(|k| c.starts_with(k)) && c != "zpool import").collect();
    assert_eq!(ran, planned_commands(&plan));
    // Nothing that writes names a device except through the plan's by-id paths (the
    // read-only checks look at the resolved devices).
    let allowed: Vec<String> = plan.targets.iter().map(|t| t.by_id.clone()).collect();
    for c in &ran {
        for arg in c.split(' ').filter(|a| a.starts_with("/dev/")) {
            assert!(arg.starts_with("/dev/zvol/") || allowed.iter().any(|b| arg.starts_with(b.as_str())), "{c}");
        }
    }
    let Some(Record::Finished { seconds, planned_seconds, other_seconds }) = events.last() else { panic!("not finished: {:?}", events.last()) };
    assert!(*planned_seconds >= 0.0 && *other_seconds >= 0.0 && planned_seconds + other_seconds <= *seconds, "{seconds} {planned_seconds} {other_seconds}");
    // Mirrored into the target once the root was mounted, closed before export.
    assert!(h.calls.contains(&Call::Write("/mnt/keel/var/lib/keel/install.jsonl".into())));
    assert!(j.finished());
}

/// The report step notes the target's SSH host keys and the pool state, and copies the
/// first-boot credentials when the install has a registry.
#[test]
fn the_report_step_records_host_keys_and_pools_and_hands_over_the_credentials() {
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    let ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIKcYzqY/1ZJNwedqKmChCephDC3p/mfMrHcaHJmgH60 root@pve-node-01\n";
    h.files.insert("/mnt/keel/etc/ssh/ssh_host_ed25519_key.pub".into(), ed.as_bytes().to_vec());
    h.answer("zpool list -H -o name,health,size,allocated,free", Output::ok("rpool\tONLINE\t49.5G\t1.2G\t48.3G\ndatapool\tONLINE\t400G\t1M\t400G\n"));
    h.files.insert("/var/lib/keel/registry.json".into(), b"{\"registry\":\"http://r\"}".to_vec());
    let mut j = journal(&mut h, &plan);
    let o = Options { first_boot_credentials: Some("/var/lib/keel/registry.json".into()), ..opts() };
    execute(&mut h, &plan, &mut j, &o, &mut |_| {}).unwrap();
    let keys: Vec<&str> = super::journal::notes(&j.entries, super::engine::HOST_KEY_NOTE).collect();
    assert_eq!(keys, ["ssh-ed25519 SHA256:XNRWIicPW0dPIb3dFfNwaHbdOAP97r4cck7GtCI3OaI"]);
    let pools: Vec<&str> = super::journal::notes(&j.entries, super::engine::POOL_NOTE).collect();
    assert_eq!(pools, ["rpool ONLINE size 49.5G allocated 1.2G free 48.3G", "datapool ONLINE size 400G allocated 1M free 400G"]);
    assert_eq!(h.files.get(Path::new("/mnt/keel/etc/keel/first-boot.json")).map(|b| b.as_slice()), Some(&b"{\"registry\":\"http://r\"}"[..]));

    // without a registry: no credentials file, a note says why; a failed pool query is noted, not fatal
    let mut h = host_for(&plan);
    let mut j = journal(&mut h, &plan);
    execute(&mut h, &plan, &mut j, &opts(), &mut |_| {}).unwrap();
    assert!(!h.files.contains_key(Path::new("/mnt/keel/etc/keel/first-boot.json")));
    let notes: Vec<String> = j.entries.iter().filter_map(|e| match &e.record { Record::Note { message } if message.starts_with("finish.report") => Some(message.clone()), _ => None }).collect();
    assert!(notes.iter().any(|n| n.contains("no registry for this install")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("no SSH host keys")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("the report has no pool state")), "{notes:?}");
}

#[test]
fn rerun_after_finish_does_nothing() {
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    let mut j = journal(&mut h, &plan);
    execute(&mut h, &plan, &mut j, &opts(), &mut |_| {}).unwrap();
    let before = h.commands().len();
    let mut j2 = journal(&mut h, &plan);
    assert_eq!(execute(&mut h, &plan, &mut j2, &opts(), &mut |_| {}).unwrap(), Outcome::AlreadyFinished);
    assert_eq!(h.commands().len(), before);
}

#[test]
fn resume_verifies_done_steps_and_continues_from_the_first_unfinished() {
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    let mut j = journal(&mut h, &plan);
    assert_eq!(execute(&mut h, &plan, &mut j, &until("partition.format-esp"), &mut |_| {}).unwrap(), Outcome::Paused { after: "partition.format-esp".into() });
    partitioned(&mut h, &plan);
    h.calls.clear();
    let mut j = journal(&mut h, &plan);
    let mut events = Vec::new();
    execute(&mut h, &plan, &mut j, &opts(), &mut |e| events.push(e.record.clone())).unwrap();
    let ran = h.commands();
    assert!(!ran.iter().any(|c| c.starts_with("wipefs") || c.starts_with("sgdisk") || c.starts_with("mkfs.vfat")), "{ran:?}");
    assert!(ran.iter().any(|c| c.starts_with("zpool create")));
    let verified: Vec<&str> = events.iter().filter_map(|r| if let Record::Verified { step } = r { Some(step.as_str()) } else { None }).collect();
    assert_eq!(verified, ["wipe.disk-a", "wipe.disk-b", "partition.disk-a", "partition.disk-b", "partition.settle", "partition.format-esp"]);
}

#[test]
fn a_step_done_but_not_journaled_is_detected_not_redone() {
    // A run that died after creating the swap zvol but before the journal said so.
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    let mut j = journal(&mut h, &plan);
    execute(&mut h, &plan, &mut j, &until("datasets.root"), &mut |_| {}).unwrap();
    partitioned(&mut h, &plan);
    h.set("zpool list", Output::ok("pool\n"));
    h.set("zfs list", Output::ok("dataset\n"));
    h.set("zfs get", Output::ok("yes\n"));
    h.answer("blkid -p -o value -s TYPE /dev/zvol/rpool/swap", Output::ok("swap\n"));
    h.calls.clear();
    let mut j = journal(&mut h, &plan);
    execute(&mut h, &plan, &mut j, &opts(), &mut |_| {}).unwrap();
    let ran = h.commands();
    assert!(!ran.iter().any(|c| c.starts_with("zfs create") || c.starts_with("mkswap") || c.starts_with("zpool create")), "{ran:?}");
    assert!(j.entries.iter().any(|e| matches!(&e.record, Record::Note { message } if message.contains("skipped `mkswap") && message.contains("holds swap"))));
}

#[test]
fn a_failed_command_names_step_command_code_and_stderr() {
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    h.answer("zpool create", Output::failed(1, "noise\ncannot create 'rpool': one or more vdevs refer to the same device"));
    let mut j = journal(&mut h, &plan);
    let err = execute(&mut h, &plan, &mut j, &opts(), &mut |_| {}).unwrap_err().to_string();
    assert!(err.starts_with("step pools.rpool failed: `zpool create -f -o ashift=12"), "{err}");
    assert!(err.contains("exited with code 1") && err.contains("one or more vdevs refer to the same device"), "{err}");
    assert!(matches!(&j.entries.last().unwrap().record, Record::Failed { step, .. } if step == "pools.rpool"));
    assert!(!j.done().contains("pools.rpool"));
}

#[test]
fn a_hanging_command_is_a_clear_error() {
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    h.hang("udevadm settle");
    let mut j = journal(&mut h, &plan);
    let err = execute(&mut h, &plan, &mut j, &opts(), &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("partition.settle") && err.contains("did not finish within"), "{err}");
}

#[test]
fn journal_says_done_but_the_disk_changed() {
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    let mut j = journal(&mut h, &plan);
    execute(&mut h, &plan, &mut j, &until("partition.disk-b"), &mut |_| {}).unwrap();
    // someone repartitioned disk A meanwhile (sfdisk still reports no table for it)
    let mut j = journal(&mut h, &plan);
    let err = execute(&mut h, &plan, &mut j, &opts(), &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("step partition.disk-a is recorded done") && err.contains("--restart"), "{err}");
}

#[test]
fn journal_of_another_install_is_refused() {
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    journal(&mut h, &plan);
    let mut other = plan.clone();
    other.targets[1].serial = "OTHER".into();
    let err = Journal::open(&mut h, Path::new("/var/lib/keel/install-pve-node-01.jsonl"), &other, false).err().unwrap().to_string();
    assert!(err.contains("belongs to another install") && err.contains("OTHER"), "{err}");
}

fn preflight_err(h: &mut FakeHost, plan: &Plan, inv: &Inventory, wipe_existing: bool) -> String {
    let steps: Vec<&plan::Step> = plan.steps.iter().collect();
    match preflight::run(h, plan, inv, &steps, false, wipe_existing, false) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn preflight_passes_on_empty_disks_and_lists_versions() {
    let (inv, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    h.answer("sgdisk --version", Output::ok("GPT fdisk (sgdisk) version 1.0.9\n"));
    let steps: Vec<&plan::Step> = plan.steps.iter().collect();
    let pre = preflight::run(&mut h, &plan, &inv, &steps, false, false, false).unwrap();
    assert_eq!(pre.versions[0], "sgdisk --version: GPT fdisk (sgdisk) version 1.0.9");
    assert_eq!(pre.devices.values().collect::<Vec<_>>(), ["/dev/nvme0n1", "/dev/nvme1n1"]);
    // nothing was written
    assert!(!h.calls.iter().any(|c| matches!(c, Call::Write(_) | Call::Append(_))));
    assert!(!h.commands().iter().any(|c| c.starts_with("sgdisk --") && !c.ends_with("--version")));
}

#[test]
fn preflight_refusals() {
    let (inv, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    h.root = false;
    assert!(preflight_err(&mut h, &plan, &inv, false).contains("must run as root"));

    let mut h = host_for(&plan);
    h.programs.retain(|p| p != "sgdisk");
    let e = preflight_err(&mut h, &plan, &inv, false);
    assert!(e.contains("missing tools: sgdisk") && e.contains("gdisk"), "{e}");

    let mut h = host_for(&plan);
    h.programs.retain(|p| p != "zpool");
    assert!(preflight_err(&mut h, &plan, &inv, false).contains("ZFS is not available"));

    let mut h = host_for(&plan);
    h.files.remove(Path::new("/sys/module/zfs"));
    h.answer("modprobe zfs", Output::failed(1, "modprobe: FATAL: Module zfs not found"));
    assert!(preflight_err(&mut h, &plan, &inv, false).contains("Module zfs not found"));

    // Hetzner's rescue: `zpool` and `zfs` are scripts that offer to build OpenZFS and ask a
    // question. keel says so and never runs them (not even `zpool version`).
    let mut h = host_for(&plan);
    h.files.remove(Path::new("/sys/module/zfs"));
    h.files.insert("/usr/sbin/zpool".into(), b"#!/bin/bash\necho 'ZFS is not installed. Build it? (y/N)'\nread a\n".to_vec());
    let e = preflight_err(&mut h, &plan, &inv, false);
    assert!(e.contains("ZFS is not available") && e.contains("/usr/sbin/zpool is a script (#!/bin/bash), not OpenZFS's zpool"), "{e}");
    assert!(!h.commands().iter().any(|c| c.starts_with("zpool") || c.starts_with("zfs")), "the script was run: {:?}", h.commands());

    // an OpenZFS older than the node's cannot limit its pools to the node's feature set
    let mut h = host_for(&plan);
    h.files.remove(Path::new("/usr/share/zfs/compatibility.d/openzfs-2.2-linux"));
    h.files.insert("/sys/module/zfs/version".into(), b"2.1.11-1\n".to_vec());
    let e = preflight_err(&mut h, &plan, &inv, false);
    assert!(e.contains("OpenZFS (2.1.11-1) cannot make pools limited to the feature set openzfs-2.2-linux") && e.contains("no feature set openzfs-2.2-linux in /etc/zfs/compatibility.d or /usr/share/zfs/compatibility.d"), "{e}");
    assert!(!h.commands().iter().any(|c| c.starts_with("wipefs --all") || c.starts_with("sgdisk --zap")), "nothing wiped");

    // a rescue system whose udev predates `udevadm wait` (the swap step needs it)
    let mut h = host_for(&plan);
    h.answer("udevadm wait --help", Output::failed(1, "Unknown command verb wait."));
    let e = preflight_err(&mut h, &plan, &inv, false);
    assert!(e.contains("udevadm is too old") && e.contains("Unknown command verb wait") && e.contains("udev 251"), "{e}");
    assert!(!h.commands().iter().any(|c| c.starts_with("wipefs --all") || c.starts_with("sgdisk --zap")), "nothing wiped");

    // the by-id link of disk B points at disk A
    let mut h = host_for(&plan);
    h.links.insert(plan.targets[1].by_id.clone().into(), "/dev/nvme0n1".into());
    let e = preflight_err(&mut h, &plan, &inv, false);
    assert!(e.contains("serial mismatch for disk B") && e.contains("S675NX0T100001"), "{e}");

    let mut h = host_for(&plan);
    h.links.remove(Path::new(&plan.targets[0].by_id));
    assert!(preflight_err(&mut h, &plan, &inv, false).contains("disk A (serial S675NX0T100001) is not here"));

    let mut h = host_for(&plan);
    h.answer("blkid -p -o value -s TYPE /dev/nvme0n1p3", Output::ok("zfs_member\n"));
    let e = preflight_err(&mut h, &plan, &inv, false);
    assert!(e.contains("nvme0n1p3: zfs_member") && e.contains("--wipe-existing"), "{e}");
    assert_eq!(preflight_err(&mut h, &plan, &inv, true), "");

    let mut h = host_for(&plan);
    h.set("zpool status", Output::ok(&format!("  pool: oldpool\n state: ONLINE\nconfig:\n\tNAME STATE\n\toldpool ONLINE\n\t  {} ONLINE\n", plan.targets[0].part(3))));
    let e = preflight_err(&mut h, &plan, &inv, true);
    assert!(e.contains("ZFS pool oldpool is imported"), "{e}");
}

#[test]
fn preflight_refuses_a_disk_the_system_booted_from() {
    // plan made on a rescue system, executed where nvme0n1 holds the running root
    let (_, plan) = setup("ax41-nvme");
    let live = probe(&ws("tests/fixtures/ax41-nvme-booted-from-nvme")).unwrap();
    let mut h = host_for(&plan);
    let e = preflight_err(&mut h, &plan, &live, true);
    assert!(e.contains("disk A (/dev/nvme0n1, serial S675NX0T100001) is in use") && e.contains("mounted at /"), "{e}");
}

/// What `zpool import` lists for one exported pool: a mirror of these leaves.
fn scan_listing(pool: &str, guid: &str, leaves: &[String]) -> String {
    let base = |l: &String| l.rsplit('/').next().unwrap_or(l).to_string();
    let leaves: String = leaves.iter().map(|l| format!("\t    {}  ONLINE\n", base(l))).collect();
    format!("   pool: {pool}\n     id: {guid}\n  state: ONLINE\n action: The pool can be imported using its name or numeric identifier.\n config:\n\n\t{pool}  ONLINE\n\t  mirror-0  ONLINE\n{leaves}\n")
}

/// The rescue system rebooted: nothing is imported, the plan's pools (GUIDs 1111 and 2222, as
/// recorded) are exported on the plan's partitions, the rescue journal is gone.
fn rescue_rebooted(h: &mut FakeHost, plan: &Plan) {
    for (pool, guid, n) in [("rpool", "1111", 2), ("datapool", "2222", 3)] {
        h.set(&format!("zpool list -H -p -o name,guid,health {pool}"), Output::failed(1, "no such pool"));
        let parts: Vec<String> = plan.targets.iter().map(|t| t.part(n)).collect();
        let scan = format!("zpool import -d {} -d {}", parts[0], parts[1]);
        h.set(&scan, Output::ok(&scan_listing(pool, guid, &parts)));
    }
    h.set("zpool import -f", Output::ok(""));
    partitioned(h, plan);
    h.files.remove(Path::new("/var/lib/keel/install-pve-node-01.jsonl"));
}

/// A foreign disk (nvme-OTHER) carries exported pools named rpool and datapool, and a scan of
/// the whole machine (or anything that names the pool) finds them.
fn foreign_pools(h: &mut FakeHost) {
    h.links.insert("/dev/disk/by-id/nvme-OTHER-part2".into(), "/dev/nvme2n1p2".into());
    h.links.insert("/dev/disk/by-id/nvme-OTHER-part3".into(), "/dev/nvme2n1p3".into());
    let listing = scan_listing("rpool", "999", &["/dev/disk/by-id/nvme-OTHER-part2".into()]) + &scan_listing("datapool", "998", &["/dev/disk/by-id/nvme-OTHER-part3".into()]);
    h.set("zpool import", Output::ok(&listing));
    h.set("zpool import -d /dev/disk/by-id", Output::ok(&listing));
}

fn is_import(c: &str) -> bool {
    c.starts_with("zpool import") && c.contains(" -N ")
}

#[test]
fn a_lost_rescue_journal_is_recovered_from_the_target() {
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    let mut j = journal(&mut h, &plan);
    execute(&mut h, &plan, &mut j, &until("datasets.swap"), &mut |_| {}).unwrap();
    assert_eq!(j.pool_guid("rpool").as_deref(), Some("1111"), "the GUID of the created pool is journaled");
    assert_eq!(j.pool_guid("datapool").as_deref(), Some("2222"));
    // the rescue system rebooted: its journal is gone, the copy in the target remains
    let rescue = Path::new("/var/lib/keel/install-pve-node-01.jsonl");
    let copy = h.files.get(Path::new("/mnt/keel/var/lib/keel/install.jsonl")).cloned().expect("mirrored");
    rescue_rebooted(&mut h, &plan);
    h.calls.clear();
    let msg = super::journal::recover_from_target(&mut h, &plan, rescue).unwrap().expect("recovered");
    assert!(msg.contains("recovered it from /mnt/keel/var/lib/keel/install.jsonl") && msg.contains("GUID 1111"), "{msg}");
    assert_eq!(h.files.get(rescue), Some(&copy));
    let (a, b) = (plan.targets[0].part(2), plan.targets[1].part(2));
    let ran = h.commands();
    // a look that writes nothing, by GUID, searching only the plan's rpool partitions; then exported
    assert!(ran.contains(&format!("zpool import -f -o readonly=on -d {a} -d {b} -N -R /mnt/keel 1111")), "{ran:?}");
    assert!(ran.contains(&"zpool export rpool".to_string()), "{ran:?}");
    let j = journal(&mut h, &plan);
    assert!(j.done().contains("datasets.swap"));
    // the engine then imports both pools by their GUIDs (forced: the journal says they are ours)
    h.set("zfs list", Output::ok("dataset\n"));
    h.set("zfs get", Output::ok("yes\n"));
    h.answer("blkid -p -o value -s TYPE /dev/zvol/rpool/swap", Output::ok("swap\n"));
    h.calls.clear();
    let mut j = journal(&mut h, &plan);
    execute(&mut h, &plan, &mut j, &until("datasets.datapool"), &mut |_| {}).unwrap();
    let ran = h.commands();
    assert!(ran.contains(&format!("zpool import -f -d {a} -d {b} -N -R /mnt/keel 1111")), "{ran:?}");
    let (c, d) = (plan.targets[0].part(3), plan.targets[1].part(3));
    assert!(ran.contains(&format!("zpool import -f -d {c} -d {d} -N -R /mnt/keel 2222")), "{ran:?}");
    assert!(!ran.iter().any(|c| c.starts_with("zpool create")), "{ran:?}");
    // the journal of another node (a root received from its image) is not taken for ours
    h.files.remove(rescue);
    let other = String::from_utf8(copy.clone()).unwrap().replacen("\"hostname\":\"pve-node-01\"", "\"hostname\":\"pve-node-07\"", 1);
    h.files.insert("/mnt/keel/var/lib/keel/install.jsonl".into(), other.into_bytes());
    rescue_rebooted(&mut h, &plan);
    h.calls.clear();
    assert_eq!(super::journal::recover_from_target(&mut h, &plan, rescue).unwrap(), None);
    assert!(!h.files.contains_key(rescue));
    assert!(h.commands().contains(&"zpool export rpool".to_string()), "left as found: {:?}", h.commands());
    // a journal that recorded another GUID for rpool is another pool's
    h.files.insert("/mnt/keel/var/lib/keel/install.jsonl".into(), String::from_utf8(copy).unwrap().replace("\"guid\":\"1111\"", "\"guid\":\"4444\"").into_bytes());
    assert_eq!(super::journal::recover_from_target(&mut h, &plan, rescue).unwrap(), None);
    assert!(!h.files.contains_key(rescue));
}

#[test]
fn a_pool_on_other_disks_is_not_taken_for_ours() {
    // the issue's case: a third disk carries an old install's exported rpool and datapool
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    foreign_pools(&mut h);
    let rescue = Path::new("/var/lib/keel/install-pve-node-01.jsonl");
    assert_eq!(super::journal::recover_from_target(&mut h, &plan, rescue).unwrap(), None);
    assert!(!h.commands().iter().any(|c| is_import(c) || c.starts_with("zpool export")), "nothing imported or exported: {:?}", h.commands());
    // the disk phase creates both pools on the plan's partitions; the foreign ones are never named
    h.calls.clear();
    let mut j = journal(&mut h, &plan);
    execute(&mut h, &plan, &mut j, &until("datasets.datapool"), &mut |_| {}).unwrap();
    let ran = h.commands();
    assert_eq!(ran.iter().filter(|c| c.starts_with("zpool create")).count(), 2, "{ran:?}");
    assert!(!ran.iter().any(|c| is_import(c) || c.contains("OTHER") || c.contains(" 999") || c.contains(" 998")), "{ran:?}");
    // every search for an exported pool names the plan's partitions, never a directory
    for c in ran.iter().filter(|c| c.starts_with("zpool import")) {
        assert!(!c.contains("-d /dev/disk/by-id ") && c.contains("-part"), "{c}");
    }
}

#[test]
fn a_foreign_pool_imported_under_the_planned_name_stops_the_pool_step() {
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    h.links.insert("/dev/disk/by-id/nvme-OTHER-part2".into(), "/dev/nvme2n1p2".into());
    h.set("zpool list -H -p -o name,guid,health rpool", Output::ok("rpool\t999\tONLINE\n"));
    h.set("zpool status -P rpool", Output::ok("  pool: rpool\nconfig:\n\trpool ONLINE\n\t  /dev/disk/by-id/nvme-OTHER-part2 ONLINE 0 0 0\n"));
    let mut j = journal(&mut h, &plan);
    let err = execute(&mut h, &plan, &mut j, &opts(), &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("step pools.rpool") && err.contains("a pool named rpool is imported, but it is not this plan's") && err.contains("GUID 999") && err.contains("nvme-OTHER-part2"), "{err}");
    let ran = h.commands();
    assert!(!ran.iter().any(|c| c.starts_with("zpool create") || c.starts_with("zfs ") || c.starts_with("zpool export") || c.starts_with("zpool set")), "{ran:?}");
}

#[test]
fn a_resumed_install_finds_its_pool_by_guid_not_by_name() {
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    let mut j = journal(&mut h, &plan);
    execute(&mut h, &plan, &mut j, &until("datasets.swap"), &mut |_| {}).unwrap();
    // after a reboot the plan's partitions carry an rpool with another GUID than the journal's
    // (the rescue journal kept, for this test)
    let kept = h.files.get(Path::new("/var/lib/keel/install-pve-node-01.jsonl")).cloned().unwrap();
    rescue_rebooted(&mut h, &plan);
    h.files.insert("/var/lib/keel/install-pve-node-01.jsonl".into(), kept);
    let parts: Vec<String> = plan.targets.iter().map(|t| t.part(2)).collect();
    h.set(&format!("zpool import -d {} -d {}", parts[0], parts[1]), Output::ok(&scan_listing("rpool", "3333", &parts)));
    h.calls.clear();
    let mut j = journal(&mut h, &plan);
    let err = execute(&mut h, &plan, &mut j, &opts(), &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("step pools.rpool is recorded done") && err.contains("recorded pool rpool as GUID 1111") && err.contains("GUID 3333"), "{err}");
    assert!(!h.commands().iter().any(|c| is_import(c)), "{:?}", h.commands());
    // and one whose members are not exactly the plan's partitions is not ours either
    h.set(&format!("zpool import -d {} -d {}", parts[0], parts[1]), Output::ok(&scan_listing("rpool", "1111", &[parts[0].clone(), "/dev/disk/by-id/nvme-OTHER-part2".into()])));
    h.calls.clear();
    let mut j = journal(&mut h, &plan);
    let err = execute(&mut h, &plan, &mut j, &opts(), &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("step pools.rpool is recorded done"), "{err}");
    assert!(!h.commands().iter().any(|c| is_import(c)), "{:?}", h.commands());
}

#[test]
fn a_completed_install_on_the_disks_is_not_resumed() {
    // DR over a node keel installed before: its rpool carries the journal of a finished install
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    let mut j = journal(&mut h, &plan);
    execute(&mut h, &plan, &mut j, &opts(), &mut |_| {}).unwrap();
    let rescue = Path::new("/var/lib/keel/install-pve-node-01.jsonl");
    rescue_rebooted(&mut h, &plan);
    h.calls.clear();
    assert_eq!(super::journal::recover_from_target(&mut h, &plan, rescue).unwrap(), None);
    assert!(!h.files.contains_key(rescue));
    let ran = h.commands();
    assert!(ran.iter().any(|c| c.starts_with("zpool import -f -o readonly=on")) && ran.contains(&"zpool export rpool".to_string()), "{ran:?}");
}

#[test]
fn a_pool_created_but_not_journaled_is_recognised_by_its_members() {
    // a run died right after `zpool create rpool`: the pool is imported, the journal has no GUID
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    let mut j = journal(&mut h, &plan);
    execute(&mut h, &plan, &mut j, &until("pools.datapool"), &mut |_| {}).unwrap();
    let mut entries = j.entries.clone();
    entries.retain(|e| !matches!(&e.record, Record::Pool { .. }) && !matches!(&e.record, Record::Done { step, .. } if step.starts_with("pools.")));
    let text: String = entries.iter().enumerate().map(|(i, e)| { let mut e = e.clone(); e.seq = i as u64; serde_json::to_string(&e).unwrap() + "\n" }).collect();
    h.files.insert("/var/lib/keel/install-pve-node-01.jsonl".into(), text.into_bytes());
    partitioned(&mut h, &plan);
    h.calls.clear();
    let mut j = journal(&mut h, &plan);
    assert_eq!(j.pool_guid("rpool"), None);
    execute(&mut h, &plan, &mut j, &until("datasets.datapool"), &mut |_| {}).unwrap();
    assert!(!h.commands().iter().any(|c| c.starts_with("zpool create")), "{:?}", h.commands());
    assert_eq!(j.pool_guid("rpool").as_deref(), Some("1111"));
    assert_eq!(j.pool_guid("datapool").as_deref(), Some("2222"));
}

#[test]
fn a_wrong_release_key_stops_before_any_package_is_installed() {
    let (_, mut plan) = setup("ax41-nvme");
    for s in &mut plan.steps {
        for c in &mut s.checksums {
            c.sha512 = "0".repeat(128);
        }
    }
    let mut h = host_for(&plan);
    let mut j = journal(&mut h, &plan);
    let err = execute(&mut h, &plan, &mut j, &opts(), &mut |_| {}).unwrap_err().to_string();
    assert!(err.starts_with("step os.pve-key: /mnt/keel/etc/apt/trusted.gpg.d/proxmox-release-bookworm.gpg from https://enterprise.proxmox.com/debian/proxmox-release-bookworm.gpg has SHA-512 "), "{err}");
    assert!(err.contains("the profile pins 0000") && err.contains("nothing was installed"), "{err}");
    let ran = h.commands();
    assert!(!ran.iter().any(|c| c.starts_with("mmdebstrap") || c.contains("apt-get")), "{ran:?}");
    assert!(ran.contains(&"rm -f /mnt/keel/etc/apt/trusted.gpg.d/proxmox-release-bookworm.gpg".to_string()));
    assert!(matches!(&j.entries.last().unwrap().record, Record::Failed { step, .. } if step == "os.pve-key"));
}

#[test]
fn os_steps_done_before_a_reboot_are_detected_and_mounts_made_again() {
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    let mut j = journal(&mut h, &plan);
    execute(&mut h, &plan, &mut j, &until("os.packages"), &mut |_| {}).unwrap();
    // the rescue system rebooted: pools exported, nothing mounted; the packages are installed
    after_reboot(&mut h, &plan);
    let one_pass = plan.steps.iter().flat_map(|s| &s.commands).find(|c| c[0] == "mmdebstrap").expect("the package pass");
    let included = one_pass.iter().find_map(|a| a.strip_prefix("--include=")).expect("--include");
    h.set("chroot /mnt/keel dpkg-query", Output::ok(&included.split(',').map(|p| format!("{p} 1.0 installed\n")).collect::<String>()));
    // the kernel package built its initramfs with OpenZFS's script and module in it
    h.set("find /mnt/keel/boot -maxdepth 1 -name 'initrd.img-*'", Output::ok("/mnt/keel/boot/initrd.img-6.8.12-4-pve\n"));
    h.set("chroot /mnt/keel lsinitramfs", Output::ok(ZFS_INITRAMFS));
    h.calls.clear();
    let mut j = journal(&mut h, &plan);
    execute(&mut h, &plan, &mut j, &opts(), &mut |_| {}).unwrap();
    let ran = h.commands();
    for fs in ["dev", "proc", "sys", "run"] {
        assert!(ran.contains(&format!("mount --make-private --rbind /{fs} /mnt/keel/{fs}")), "{fs} bound again: {ran:?}");
    }
    assert!(!ran.iter().any(|c| c.starts_with("mmdebstrap") || c.starts_with("zfs rollback") || c.starts_with("curl")), "the package pass is not run again: {ran:?}");
    assert!(!ran.iter().any(|c| c.contains("update-initramfs")), "a current initramfs is not rebuilt: {ran:?}");
    assert!(ran.iter().any(|c| c.contains("keel-boot-sync install") || c.contains("proxmox-boot-tool init")), "{ran:?}");
}

#[test]
fn a_failing_verify_fails_the_install_with_the_checks() {
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    h.set("zfs get -H -o value compression", Output::ok("off\n"));
    h.set("zpool list -H -o health", Output::ok("DEGRADED\n"));
    let mut j = journal(&mut h, &plan);
    let err = execute(&mut h, &plan, &mut j, &opts(), &mut |_| {}).unwrap_err().to_string();
    assert!(err.starts_with("step verify.target: "), "{err}");
    assert!(err.contains("rpool compression: expected lz4, found off") && err.contains("rpool health: DEGRADED"), "{err}");
    assert!(!h.commands().iter().any(|c| c.starts_with("zpool export")), "pools stay imported for a look");
}

/// An image plan on the AX41 fixture: the image is `stream` zstd-compressed, the fake host is
/// the usual rescue system with a ZFS 2.1.11 module.
fn image_setup(stream: &[u8], zfs_version: &str) -> (Inventory, Plan, Vec<u8>, FakeHost) {
    use sha2::{Digest, Sha256};
    let inv = probe(&ws("tests/fixtures/ax41-nvme")).unwrap();
    let z = zstd::encode_all(stream, 3).unwrap();
    let manifest = crate::image::Manifest {
        schema: crate::image::MANIFEST_SCHEMA.into(),
        name: "pve-base.zfs.zst".into(),
        created: "2026-11-28T00:00:00Z".into(),
        dataset: "rpool/ROOT/pve-1".into(),
        snapshot: "keel-base".into(),
        snapshot_guid: "987654321".into(),
        size: z.len() as u64,
        stream_size: stream.len() as u64,
        sha256: crate::profile::hex_digest(&Sha256::digest(&z)),
        compression: "zstd".into(),
        zfs_version: zfs_version.into(),
        compatibility: "openzfs-2.1-linux".into(),
        debian_version: "12.8".into(),
        kernels: vec![],
        packages: Default::default(),
        profile_sha256: "00".repeat(32),
        profile_hostname: "pve-node-02".into(),
    };
    let image = plan::ImageRef { location: "/srv/pve-base.zfs.zst".into(), manifest };
    let plan = plan::build_with_image(&inv, &profile(), None, Some(image)).unwrap();
    let mut h = host_for(&plan);
    h.files.insert("/sys/module/zfs/version".into(), b"2.1.11-1\n".to_vec());
    // the image brings the packages, openssh-server among them
    h.files.insert("/mnt/keel/usr/sbin/sshd".into(), b"sshd".to_vec());
    (inv, plan, z, h)
}

fn image_opts(z: Vec<u8>) -> Options {
    let source = super::engine::ImageSource(std::sync::Arc::new(move || Ok(Box::new(std::io::Cursor::new(z.clone())) as Box<dyn std::io::Read + Send>)));
    Options { image_source: Some(source), ..opts() }
}

#[test]
fn an_image_install_receives_the_root_and_makes_the_node_its_own() {
    let stream: Vec<u8> = (0..2_500_000u32).map(|i| (i % 241) as u8).collect();
    let (_, plan, z, mut h) = image_setup(&stream, "2.1.11-1");
    let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    for gone in ["os.pve-key", "os.before-packages", "os.packages", "os.base-snapshot"] {
        assert!(!ids.contains(&gone), "{gone} in {ids:?}");
    }
    let at = |id: &str| ids.iter().position(|s| *s == id).unwrap_or_else(|| panic!("{id} missing"));
    assert!(at("datasets.root") < at("os.image") && at("os.image") < at("datasets.swap") && at("os.identity") < at("os.boot-identity"));
    // the image's initramfs, as received: it can import the root, so it is not rebuilt
    h.set("find /mnt/keel/boot -maxdepth 1 -name 'initrd.img-*'", Output::ok("/mnt/keel/boot/initrd.img-6.8.12-4-pve\n"));
    h.set("chroot /mnt/keel lsinitramfs", Output::ok(ZFS_INITRAMFS));
    // not there before the receive, there after it with the image's GUID
    h.answer("zfs get -H -p -o value guid", Output::failed(1, "dataset does not exist"));
    h.answer("zfs get -H -p -o value guid", Output::ok("987654321\n"));
    let mut j = journal(&mut h, &plan);
    let mut notes = Vec::new();
    let out = execute(&mut h, &plan, &mut j, &image_opts(z.clone()), &mut |e| {
        if let Record::Note { message } = &e.record {
            notes.push(message.clone());
        }
    })
    .unwrap();
    assert_eq!(out, Outcome::Finished);
    assert_eq!(h.inputs, vec![stream], "zfs receive got the stream whole");
    let cmds = h.commands();
    let pos = |c: &str| cmds.iter().position(|x| x == c).unwrap_or_else(|| panic!("`{c}` not run: {cmds:#?}"));
    assert!(pos("zfs create -o canmount=off -o mountpoint=none rpool/ROOT") < pos("zfs receive -u rpool/ROOT/pve-1"));
    assert!(pos("zfs receive -u rpool/ROOT/pve-1") < pos("zfs set canmount=noauto rpool/ROOT/pve-1"));
    assert!(pos("zfs set mountpoint=/ rpool/ROOT/pve-1") < pos("zfs mount rpool/ROOT/pve-1"));
    let zgenhostid = format!("zgenhostid -f -o /mnt/keel/etc/hostid 0x{:08x}", crate::render::host_id(&profile()));
    assert!(pos("rm -f /mnt/keel/etc/machine-id /mnt/keel/etc/hostid") < pos(&zgenhostid));
    for c in ["chroot /mnt/keel systemd-machine-id-setup", "chroot /mnt/keel ssh-keygen -A", "chroot /mnt/keel lsinitramfs /boot/initrd.img-6.8.12-4-pve"] {
        pos(c);
    }
    assert!(!cmds.iter().any(|c| c.contains("update-initramfs")), "the image's initramfs boots the node as received: {cmds:#?}");
    assert!(!cmds.iter().any(|c| c.starts_with("mmdebstrap") || c.contains("apt-get")), "no network OS steps");
    assert!(notes.iter().any(|n| n.starts_with(super::engine::IMAGE_NOTE) && n.contains("matches the manifest") && n.contains("peak memory")), "{notes:#?}");
    let mailname = String::from_utf8(h.files[Path::new("/mnt/keel/etc/mailname")].clone()).unwrap();
    assert!(mailname.starts_with("pve-node-01."), "{mailname}");
    assert!(cmds.iter().any(|c| c.starts_with("chroot /mnt/keel postconf -e myhostname=pve-node-01.")), "{cmds:#?}");
    // the journal is mirrored once the received root is mounted
    let write = h.calls.iter().position(|c| *c == Call::Write("/mnt/keel/var/lib/keel/install.jsonl".into())).expect("mirrored");
    let receive = h.calls.iter().position(|c| *c == Call::Run("zfs receive -u rpool/ROOT/pve-1".into())).unwrap();
    assert!(write > receive);
}

#[test]
fn an_image_already_received_is_not_fetched_again() {
    let (_, plan, z, mut h) = image_setup(b"stream", "2.1.11-1");
    h.answer("zfs get -H -p -o value guid", Output::ok("987654321\n"));
    let mut j = journal(&mut h, &plan);
    let mut notes = Vec::new();
    execute(&mut h, &plan, &mut j, &image_opts(z), &mut |e| {
        if let Record::Note { message } = &e.record {
            notes.push(message.clone());
        }
    })
    .unwrap();
    assert!(h.inputs.is_empty() && !h.commands().iter().any(|c| c.starts_with("zfs receive")));
    assert!(notes.iter().any(|n| n.contains("is here with the image's GUID 987654321: not received again")), "{notes:#?}");
}

#[test]
fn an_image_from_a_newer_zfs_is_refused_before_any_disk_is_touched() {
    let (inv, plan, _, mut h) = image_setup(b"stream", "2.2.6-pve1");
    let e = preflight_err(&mut h, &plan, &inv, false);
    assert!(e.contains("written by OpenZFS 2.2.6-pve1, newer than this system's module 2.1.11-1"), "{e}");
    assert!(!h.commands().iter().any(|c| c.starts_with("wipefs --all") || c.starts_with("sgdisk --zap-all") || c.starts_with("zpool create")));
}

#[test]
fn another_images_root_on_the_disks_is_not_taken_for_this_one() {
    let (_, plan, z, mut h) = image_setup(b"stream", "2.1.11-1");
    h.answer("zfs get -H -p -o value guid", Output::ok("555\n"));
    let mut j = journal(&mut h, &plan);
    let e = execute(&mut h, &plan, &mut j, &image_opts(z), &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("rpool/ROOT/pve-1@keel-base exists with GUID 555, the image pve-base.zfs.zst has 987654321"), "{e}");
}

/// The AX41 fixture plus a third drive (a SATA disk named nvme2n1 here, so the fake's links
/// stay short: serial OLD0003, by-id nvme-OTHER) with two partitions: an old install's disk.
fn with_old_disk(inv: &Inventory) -> Inventory {
    let mut inv = inv.clone();
    let mut d = inv.disks.iter().find(|d| d.name == "nvme1n1").unwrap().clone();
    d.name = "nvme2n1".into();
    d.path = "/dev/nvme2n1".into();
    d.serial = "OLD0003".into();
    d.kind = crate::hardware::DiskKind::Scsi;
    d.stable_id = Some("nvme-OTHER".into());
    d.by_id = vec!["nvme-OTHER".into()];
    d.usage.clear();
    d.partitions = (2..=3u32)
        .map(|n| crate::hardware::Partition { name: format!("nvme2n1p{n}"), number: n, start_sector: 4096 * n as u64, size_bytes: crate::size::ByteSize(crate::size::GIB) })
        .collect();
    inv.disks.push(d);
    inv
}

#[test]
fn preflight_lists_foreign_pools_and_refuses_an_importable_rpool_elsewhere() {
    let (inv, _) = setup("ax41-nvme");
    let inv = with_old_disk(&inv);
    let plan = plan::build(&inv, &profile(), None).unwrap();
    assert_eq!(plan.serials(), ["S675NX0T100001", "S675NX0T100002"], "the old disk is no target");
    let mut h = host_for(&plan);
    foreign_pools(&mut h);
    let e = preflight_err(&mut h, &plan, &inv, false);
    assert!(e.contains("disks outside the plan carry pools named like this install's own"), "{e}");
    assert!(e.contains("nvme2n1 (serial OLD0003) holds pool rpool (GUID 999, exported, ONLINE) on nvme-OTHER-part2"), "{e}");
    assert!(e.contains("nvme2n1 (serial OLD0003) holds pool datapool (GUID 998"), "{e}");
    assert!(e.contains("--clear-zfs-labels OLD0003") && e.contains("--accept-foreign-pools"), "{e}");
    assert!(!h.commands().iter().any(|c| is_import(c) || c.contains("labelclear")), "a scan only: {:?}", h.commands());

    // accepted: listed in the table, left alone
    let steps: Vec<&plan::Step> = plan.steps.iter().collect();
    let pre = preflight::run(&mut h, &plan, &inv, &steps, false, false, true).unwrap();
    assert_eq!(pre.foreign.len(), 2);
    let table = super::confirm::disks_to_destroy(&plan, &pre);
    assert!(table.contains("left alone: nvme2n1 (serial OLD0003) holds pool rpool (GUID 999, exported), not ours"), "{table}");

    // cleared: the plan names the disk, one step clears only its ZFS labels, consent covers it
    let mut cleared = plan.clone();
    cleared.clear_zfs_labels(&inv, &["OLD0003".to_string()]).unwrap();
    let step = cleared.steps.iter().find(|s| s.id == "wipe.labels-old0003").expect("planned");
    let cmds: Vec<String> = step.commands.iter().map(|c| super::host::command_line(c)).collect();
    assert_eq!(cmds, ["zpool labelclear -f /dev/disk/by-id/nvme-OTHER-part2", "zpool labelclear -f /dev/disk/by-id/nvme-OTHER-part3"]);
    assert_ne!(cleared.digest(), plan.digest());
    let steps: Vec<&plan::Step> = cleared.steps.iter().collect();
    let pre = preflight::run(&mut h, &cleared, &inv, &steps, false, false, false).unwrap();
    assert!(super::confirm::disks_to_destroy(&cleared, &pre).contains("cleared: nvme2n1 (serial OLD0003) holds pool rpool (GUID 999)"));
    assert!(super::confirm::check_serials(&cleared, &plan.serials()).is_err(), "the cleared disk must be confirmed too");
    let mut all = plan.serials();
    all.push("OLD0003".into());
    super::confirm::check_serials(&cleared, &all).unwrap();
    let mut j = journal(&mut h, &cleared);
    h.calls.clear();
    execute(&mut h, &cleared, &mut j, &until("partition.disk-b"), &mut |_| {}).unwrap();
    let on_old: Vec<String> = h.commands().into_iter().filter(|c| c.contains("nvme-OTHER") || c.contains("nvme2n1")).collect();
    assert_eq!(on_old, cmds, "nothing else touches the old disk");
    // a target or an unknown serial cannot be "cleared"
    assert!(plan.clone().clear_zfs_labels(&inv, &["S675NX0T100001".to_string()]).unwrap_err().to_string().contains("is a target already"));
    assert!(plan.clone().clear_zfs_labels(&inv, &["NOPE".to_string()]).unwrap_err().to_string().contains("no disk with that serial"));

    // imported under the planned name: refused even when accepted
    h.set("zpool list -H -o name", Output::ok("rpool\n"));
    h.set("zpool list -H -p -o name,guid,health rpool", Output::ok("rpool\t999\tONLINE\n"));
    h.set("zpool status -P rpool", Output::ok("  pool: rpool\nconfig:\n\trpool ONLINE\n\t  /dev/disk/by-id/nvme-OTHER-part2 ONLINE 0 0 0\n"));
    let steps: Vec<&plan::Step> = plan.steps.iter().collect();
    let e = preflight::run(&mut h, &plan, &inv, &steps, false, false, true).unwrap_err().to_string();
    assert!(e.contains("a pool named rpool is imported from a disk outside the plan") && e.contains("zpool export rpool"), "{e}");
}

#[test]
fn a_package_pass_that_did_not_finish_is_rolled_back_and_run_again_never_continued() {
    let (_, plan) = setup("ax41-nvme");
    let mut h = host_for(&plan);
    let mut j = journal(&mut h, &plan);
    // the package pass fails half way (dpkg's database half configured)
    h.answer("mmdebstrap ", Output::failed(1, "E: mmdebstrap failed to run"));
    let err = execute(&mut h, &plan, &mut j, &opts(), &mut |_| {}).unwrap_err().to_string();
    assert!(err.starts_with("step os.packages failed: `mmdebstrap "), "{err}");
    // run again: the snapshot taken before the step is rolled back to first, then the whole pass
    h.set("mmdebstrap ", Output::ok(""));
    // what the rollback does to the journal's copy in the target: back to the snapshot's
    // (older, shorter) content
    let copy_path = Path::new(crate::plan::TARGET_ROOT).join(super::journal::TARGET_JOURNAL);
    h.effects.push(("zfs rollback ".into(), copy_path.clone(), b"{}\n".to_vec()));
    after_reboot(&mut h, &plan);
    h.calls.clear();
    let mut j = journal(&mut h, &plan);
    execute(&mut h, &plan, &mut j, &opts(), &mut |_| {}).unwrap();
    let ran = h.commands();
    let at = |prefix: &str| ran.iter().position(|c| c.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix} not run: {ran:?}"));
    assert!(!ran.iter().any(|c| c.starts_with("zfs snapshot rpool/ROOT/pve-1@before-packages")), "the snapshot is not taken again: {ran:?}");
    assert!(at("zfs rollback -r rpool/ROOT/pve-1@before-packages") < at("mmdebstrap "), "{ran:?}");
    assert_eq!(ran.iter().filter(|c| c.starts_with("mmdebstrap ")).count(), 1);
    assert!(at("zfs destroy rpool/ROOT/pve-1@before-packages") < at("zfs snapshot rpool/ROOT/pve-1@keel-base"), "{ran:?}");
    // the rollback took the journal's copy in the target back: it is written whole again
    // (mirrored until finish.export closes it before the pools go away)
    let copy = String::from_utf8(h.files[&copy_path].clone()).unwrap();
    let whole: Vec<String> = j.entries.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    let lines: Vec<&str> = copy.lines().collect();
    assert!(lines.len() > whole.len() / 2 && lines.iter().zip(&whole).all(|(a, b)| a == b), "the copy is the journal from its first line:\n{copy}");
    assert!(copy.contains(r#""event":"failed","step":"os.packages""#) && copy.contains(r#""event":"done","step":"os.packages""#), "{copy}");
}

#[test]
fn an_install_s_time_is_split_into_the_plan_s_commands_keel_s_checks_and_keel_itself() {
    use super::journal::time_split;
    assert_eq!(time_split(100.0, 90.0, 8.5), "the plan's commands 90.0s, keel's checks and waits 8.5s, keel itself 1.5s = 1.50 %");
    assert_eq!(time_split(0.0, 0.0, 0.0), "the plan's commands 0.0s, keel's checks and waits 0.0s, keel itself 0.0s = 0.00 %");
    // clocks read at different moments never make keel's own time negative
    assert!(time_split(10.0, 9.0, 1.2).ends_with("keel itself 0.0s = 0.00 %"));
}

/// A host whose commands take real time: the timing layer must count them as the plan's or as
/// keel's own commands.
#[test]
fn the_timing_layer_counts_the_plan_s_commands_and_the_others_apart() {
    struct Slow(FakeHost);
    impl super::host::Layer for Slow {
        fn inner(&mut self) -> &mut dyn super::host::Host {
            &mut self.0
        }
        fn command(&mut self, argv: &[String], run: &mut dyn FnMut(&mut dyn super::host::Host) -> Result<Output, super::host::HostError>) -> Result<Output, super::host::HostError> {
            if argv[0] == "mmdebstrap" || argv.get(..2).is_some_and(|a| a == ["zfs", "list"]) {
                std::thread::sleep(std::time::Duration::from_millis(if argv[0] == "mmdebstrap" { 300 } else { 5 }));
            }
            run(&mut self.0)
        }
    }
    let (_, plan) = setup("ax41-nvme");
    let mut h = Slow(host_for(&plan));
    let mut j = journal(&mut h.0, &plan);
    super::engine::execute(&mut h, &plan, &profile(), &mut j, &opts(), &mut |_| {}).unwrap();
    let Some(Record::Finished { seconds, planned_seconds, other_seconds }) = j.entries.last().map(|e| &e.record) else { panic!("not finished") };
    assert!(*planned_seconds >= 0.3, "the package pass is the plan's: {planned_seconds}");
    assert!(*other_seconds >= 0.005 && *other_seconds < 0.3, "the checks' zfs list are keel's own commands: {other_seconds}");
    assert!(planned_seconds + other_seconds <= *seconds);
}

#[test]
fn unattended_consent_is_the_profiles_pinned_serials_or_nothing() {
    let (_, plan) = setup("ax41-nvme");
    let e = super::confirm::check_pinned(&plan, &[]).unwrap_err();
    let want: Vec<String> = plan.written_serials().iter().map(|s| format!("\"{s}\"")).collect();
    assert!(e.contains(&format!("set disks.serials = [{}] in pve-node-01's profile", want.join(", "))), "{e}");
    assert!(e.contains("nothing was written"), "{e}");
    assert!(super::confirm::check_pinned(&plan, &["".to_string()]).is_err(), "an empty pin is no pin");
    let mut pinned = plan.written_serials();
    pinned.reverse();
    super::confirm::check_pinned(&plan, &pinned).unwrap();
    let e = super::confirm::check_pinned(&plan, &[pinned[0].clone(), "OTHER0001".into()]).unwrap_err();
    assert!(e.contains(&format!("the profile pins disks.serials = [{}, OTHER0001], but this plan destroys {}", pinned[0], plan.written_serials().join(", "))), "{e}");
}
