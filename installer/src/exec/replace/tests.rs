use std::path::PathBuf;

use super::*;
use crate::exec::host::{FakeHost, Output};
use crate::replace::fixtures::*;

fn link(h: &mut FakeHost, serial: &str, dev: &str) {
    h.links.insert(PathBuf::from(format!("/dev/disk/by-id/nvme-{MODEL}_{serial}")), PathBuf::from(dev));
}

fn partition_links(h: &mut FakeHost, serial: &str, dev: &str) {
    for n in 1..=4 {
        h.links.insert(PathBuf::from(by_id(serial, n)), PathBuf::from(format!("{dev}p{n}")));
    }
}

/// Both pools' listings: (by path, by GUID) per pool.
fn answer_pools(h: &mut FakeHost, listings: &[(&str, (String, String))]) {
    for (pool, (p, g)) in listings {
        h.set(&format!("zpool status -P {pool}"), Output::ok(p));
        h.set(&format!("zpool status -g {pool}"), Output::ok(g));
    }
}

fn degraded_listing(pool: &str, n: u32) -> (String, String) {
    status(pool, "DEGRADED", "none requested", &[(&by_id(A, n), "ONLINE", &format!("10{n}"), ""), (&format!("20{n}"), "UNAVAIL", &format!("20{n}"), &format!("was {}", by_id(B, n)))], None)
}

fn resilvering_listing(pool: &str, n: u32, percent: &str) -> (String, String) {
    let scan = format!("resilver in progress since Tue Dec  1 21:00:00 2026\n\t790M resilvered, {percent}% done, 00:00:16 to go");
    status(pool, "DEGRADED", &scan, &[
        (&by_id(A, n), "ONLINE", &format!("10{n}"), ""),
        (&format!("20{n}"), "UNAVAIL", &format!("20{n}"), &format!("was {}", by_id(B, n))),
        (&by_id(NEW, n), "ONLINE", &format!("30{n}"), "(resilvering)"),
    ], Some(1))
}

fn mirrored_listing(pool: &str, n: u32) -> (String, String) {
    status(pool, "ONLINE", "resilvered 2.10G in 00:00:40 with 0 errors on Tue Dec  1 21:00:40 2026", &[(&by_id(A, n), "ONLINE", &format!("10{n}"), ""), (&by_id(NEW, n), "ONLINE", &format!("30{n}"), "")], None)
}

/// The node with drive B swapped for a blank one; the new table shows once sgdisk ran.
fn node() -> FakeHost {
    let mut h = FakeHost { root: true, ..Default::default() };
    h.programs = ["sfdisk", "wipefs", "sgdisk", "partprobe", "udevadm", "mkfs.vfat", "zpool", "/usr/local/sbin/keel-boot-sync"].map(String::from).to_vec();
    h.files.insert("/sys/module/zfs".into(), Vec::new());
    h.answer("findmnt --noheadings --output FSTYPE --mountpoint /", Output::ok("zfs\n"));
    link(&mut h, A, "/dev/nvme0n1");
    link(&mut h, NEW, "/dev/nvme1n1");
    partition_links(&mut h, A, "/dev/nvme0n1");
    answer_pools(&mut h, &[("rpool", degraded_listing("rpool", 2)), ("datapool", degraded_listing("datapool", 3))]);
    h.answer("sfdisk --json /dev/nvme0n1", Output::ok(&sfdisk("/dev/nvme0n1", 894306304)));
    h.answer("sfdisk --json /dev/nvme1n1", Output::failed(1, "sfdisk: /dev/nvme1n1: does not contain a recognized partition table"));
    h.triggers.push(("sgdisk --clear".into(), "sfdisk --json /dev/nvme1n1".into(), Output::ok(&sfdisk("/dev/nvme1n1", 894306304))));
    for n in 1..=4 {
        h.link_effects.push(("udevadm settle".into(), PathBuf::from(by_id(NEW, n)), PathBuf::from(format!("/dev/nvme1n1p{n}"))));
    }
    h.answer("blkid", Output::ok(""));
    h.triggers.push(("mkfs.vfat".into(), "blkid".into(), Output::ok("vfat\n")));
    h
}

/// The plan for the new drive on `inv` (the seed profile, BIOS).
fn plan_on(h: &mut FakeHost, inv: &Inventory, wipe_existing: bool) -> ReplacePlan {
    let (p, text) = profile();
    load(h, inv, &p, &text, NEW, FirmwareMode::Bios, wipe_existing).unwrap()
}

#[test]
fn a_fresh_replace_runs_every_step_and_follows_the_resilver() {
    let mut h = node();
    // each replace resilvers at once (a small pool; following a long one: the next test)
    for (pool, n) in [("rpool", 2), ("datapool", 3)] {
        let (p, g) = mirrored_listing(pool, n);
        h.triggers.push((format!("zpool replace {pool}"), format!("zpool status -P {pool}"), Output::ok(&p)));
        h.triggers.push((format!("zpool replace {pool}"), format!("zpool status -g {pool}"), Output::ok(&g)));
    }
    let plan = plan_on(&mut h, &swapped(), false);
    let dir = PathBuf::from("/var/lib/keel");
    let mut j = journal(&mut h, &dir, &plan, false).unwrap();
    preflight(&mut h, &plan, &swapped(), &j, false).unwrap();
    let mut said = Vec::new();
    run(&mut h, &plan, &mut j, &Options::default(), Spent::default(), &mut |l| said.push(l.to_string())).unwrap();
    let cmds = h.commands();
    let pos = |prefix: &str| cmds.iter().position(|c| c.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix} not run: {cmds:#?}"));
    assert!(pos("sgdisk --clear") < pos("partprobe") && pos("partprobe") < pos("mkfs.vfat") && pos("mkfs.vfat") < pos("zpool replace rpool 202"));
    assert!(pos("zpool replace rpool 202") < pos("zpool replace datapool 203") && pos("zpool replace datapool 203") < pos("/usr/local/sbin/keel-boot-sync install"));
    // nothing ever names the survivor in a command that writes
    for c in cmds.iter().filter(|c| !c.starts_with("zpool status") && !c.starts_with("sfdisk --json")) {
        assert!(!c.contains(A) && !c.contains("nvme0n1"), "{c}");
    }
    assert!(h.files.contains_key(&PathBuf::from("/etc/keel/boot-disks")));
    assert!(said.iter().any(|l| l.contains("resilver finished")), "{said:#?}");
    assert!(j.finished());
    // run again: every step is found done, nothing is written to a drive
    let before = h.commands().len();
    let again_plan = plan_on(&mut h, &swapped_with_partitions(), false);
    let mut j = journal(&mut h, &dir, &again_plan, false).unwrap();
    run(&mut h, &again_plan, &mut j, &Options::default(), Spent::default(), &mut |_| {}).unwrap();
    let again: Vec<String> = h.commands()[before..].to_vec();
    assert!(again.iter().all(|c| !c.starts_with("sgdisk") && !c.starts_with("zpool replace") && !c.starts_with("mkfs")), "{again:#?}");
}


#[test]
fn after_a_power_cut_during_the_resilver_a_rerun_follows_it_and_replaces_nothing_twice() {
    let mut h = node();
    let plan = plan_on(&mut h, &swapped(), false);
    let dir = PathBuf::from("/var/lib/keel");
    let mut j = journal(&mut h, &dir, &plan, false).unwrap();
    // the first run got as far as both replaces, then the power went
    for id in ["replace.partition", "replace.settle", "replace.format-esp", "replace.rpool", "replace.datapool"] {
        j.append(&mut h, Record::Start { step: id.into(), n: 0, total: 0, title: String::new() }).unwrap();
        j.append(&mut h, Record::Done { step: id.into(), seconds: 1.0 }).unwrap();
    }
    j.append(&mut h, Record::Start { step: "replace.resilver".into(), n: 6, total: 7, title: String::new() }).unwrap();
    h.set("sfdisk --json /dev/nvme1n1", Output::ok(&sfdisk("/dev/nvme1n1", 894306304)));
    partition_links(&mut h, NEW, "/dev/nvme1n1");
    h.set("blkid", Output::ok("vfat\n"));
    // after the reboot ZFS resumes the resilver: 40 %, 80 %, then done
    for (pool, n) in [("rpool", 2u32), ("datapool", 3u32)] {
        h.answers.retain(|(p, _)| !p.ends_with(pool));
        for pct in ["40.00", "40.00", "80.00", "80.00"] {
            let (p, g) = resilvering_listing(pool, n, pct);
            h.answer(&format!("zpool status -P {pool}"), Output::ok(&p));
            h.answer(&format!("zpool status -g {pool}"), Output::ok(&g));
        }
        let (p, g) = mirrored_listing(pool, n);
        h.answer(&format!("zpool status -P {pool}"), Output::ok(&p));
        h.answer(&format!("zpool status -g {pool}"), Output::ok(&g));
    }
    let plan = plan_on(&mut h, &swapped_with_partitions(), false);
    let mut j = journal(&mut h, &dir, &plan, false).unwrap();
    preflight(&mut h, &plan, &swapped_with_partitions(), &j, false).unwrap();
    let mut said = Vec::new();
    let opts = Options { report_every: Duration::ZERO, ..Options::default() };
    run(&mut h, &plan, &mut j, &opts, Spent::default(), &mut |l| said.push(l.to_string())).unwrap();
    let cmds = h.commands();
    assert!(cmds.iter().all(|c| !c.starts_with("sgdisk") && !c.starts_with("zpool replace") && !c.starts_with("mkfs") && !c.starts_with("wipefs --all")), "{cmds:#?}");
    assert!(said.iter().any(|l| l.contains("resilver: rpool 80.0%")), "{said:#?}");
    assert!(said.iter().any(|l| l.contains("resilver finished")), "{said:#?}");
    assert!(cmds.iter().any(|c| c == "/usr/local/sbin/keel-boot-sync install"));
}

fn swapped_with_partitions() -> Inventory {
    let mut inv = swapped();
    inv.disks.iter_mut().find(|d| d.serial == NEW).unwrap().partitions = crate::hardware::probe(&root("tests/fixtures/ax41-nvme")).unwrap().disks[0].partitions.clone();
    inv
}


#[test]
fn a_drive_with_data_is_written_only_with_wipe_existing() {
    let mut h = node();
    let inv = swapped_with_partitions();
    let plan = plan_on(&mut h, &inv, false);
    let j = journal(&mut h, &PathBuf::from("/var/lib/keel"), &plan, false).unwrap();
    let e = preflight(&mut h, &plan, &inv, &j, false).unwrap_err();
    assert!(e.contains("not blank") && e.contains("--wipe-existing") && e.contains(NEW), "{e}");
    // signatures alone (no partitions) count too
    h.answer("wipefs --noheadings /dev/nvme1n1", Output::ok("0x438 ext4 1234 /dev/nvme1n1\n"));
    let e = preflight(&mut h, &plan, &swapped(), &j, false).unwrap_err();
    assert!(e.contains("ext4"), "{e}");
    let plan = plan_on(&mut h, &inv, true);
    preflight(&mut h, &plan, &inv, &j, true).unwrap();
    assert_eq!(plan.steps[0].id, "replace.wipe");
}

/// After a replace that finished, the survivor named as the new drive (or a replace done by
/// hand): both drives are whole members, no journal of ours: refused, nothing run.
#[test]
fn a_whole_member_with_no_replace_of_ours_is_refused() {
    let mut h = node();
    answer_pools(&mut h, &[("rpool", mirrored_listing("rpool", 2)), ("datapool", mirrored_listing("datapool", 3))]);
    partition_links(&mut h, NEW, "/dev/nvme1n1");
    h.set("sfdisk --json /dev/nvme1n1", Output::ok(&sfdisk("/dev/nvme1n1", 894306304)));
    let (p, text) = profile();
    let inv = swapped_with_partitions();
    let plan = load(&mut h, &inv, &p, &text, A, FirmwareMode::Bios, false).unwrap();
    // even so, the plan writes nothing to a drive that is in the pools
    assert!(plan.steps.iter().filter(|s| s.id.starts_with("replace.partition") || s.id == "replace.format-esp").all(|s| s.commands.is_empty()));
    let j = journal(&mut h, &PathBuf::from("/var/lib/keel"), &plan, false).unwrap();
    let e = preflight(&mut h, &plan, &inv, &j, false).unwrap_err();
    assert!(e.contains(&format!("{A} is already an ONLINE member of rpool and datapool")), "{e}");
}

/// `zpool import -d PART` listing of a degraded pool: the survivor's partition and the dead
/// member's GUID.
fn import_listing(pool: &str, guid: &str, present: &str, missing: &str) -> String {
    format!("   pool: {pool}\n     id: {guid}\n  state: DEGRADED\n status: One or more devices are missing from the system.\n action: The pool can be imported despite missing or damaged devices.  The\n\tfault tolerance of the pool may be compromised if imported.\n   see: https://openzfs.github.io/openzfs-docs/msg/ZFS-8000-2Q\n config:\n\n\t{pool}                     DEGRADED\n\t  mirror-0               DEGRADED\n\t    {present}  ONLINE\n\t    {missing}   UNAVAIL\n")
}

/// The rescue system (root on tmpfs, ZFS loaded) over the node's drives: the pools are
/// exported; importing them (read-only or not) makes their status readable, exporting ends it.
fn rescue() -> FakeHost {
    let mut h = node();
    h.programs.extend(["chroot", "zfs", "mount", "umount", "sync"].map(String::from));
    h.set("findmnt --noheadings --output FSTYPE --mountpoint /", Output::ok("tmpfs\n"));
    for (pool, n, guid) in [("rpool", 2u32, "9002"), ("datapool", 3u32, "9003")] {
        let gone = Output::failed(1, &format!("cannot open '{pool}': no such pool"));
        h.set(&format!("zpool status -P {pool}"), gone.clone());
        h.set(&format!("zpool status -g {pool}"), gone.clone());
        h.answer(&format!("zpool import -d {}", by_id(A, n)), Output::ok(&import_listing(pool, guid, &format!("nvme-{MODEL}_{A}-part{n}"), &format!("20{n}"))));
        let (p, g) = degraded_listing(pool, n);
        for import in [format!("zpool import -o readonly=on -N -f -R /mnt/keel -d {} {guid}", by_id(A, n)), format!("zpool import -N -f -R /mnt/keel -d {} {guid}", by_id(A, n))] {
            h.triggers.push((import.clone(), format!("zpool status -P {pool}"), Output::ok(&p)));
            h.triggers.push((import.clone(), format!("zpool status -g {pool}"), Output::ok(&g)));
            h.triggers.push((import.clone(), format!("zpool list -H -o guid {pool}"), Output::ok(&format!("{guid}\n"))));
        }
        let rw = format!("zpool import -N -f -R /mnt/keel -d {} {guid}", by_id(A, n));
        h.triggers.push((rw, format!("zpool get -H -p -o value guid,readonly {pool}"), Output::ok(&format!("{guid}\noff\n"))));
        for what in ["zpool status -P", "zpool status -g", "zpool list -H -o guid", "zpool get -H -p -o value guid,readonly"] {
            h.triggers.push((format!("zpool export {pool}"), format!("{what} {pool}"), gone.clone()));
        }
        let (p, g) = mirrored_listing(pool, n);
        h.triggers.push((format!("zpool replace {pool}"), format!("zpool status -P {pool}"), Output::ok(&p)));
        h.triggers.push((format!("zpool replace {pool}"), format!("zpool status -g {pool}"), Output::ok(&g)));
    }
    h.answer("findmnt --noheadings --output SOURCE --mountpoint /mnt/keel", Output::ok(""));
    h.triggers.push(("zfs mount rpool/ROOT/pve-1".into(), "findmnt --noheadings --output SOURCE --mountpoint /mnt/keel".into(), Output::ok("rpool/ROOT/pve-1\n")));
    h
}

#[test]
fn in_a_rescue_system_the_pools_are_read_read_only_then_imported_by_guid_and_exported_at_the_end() {
    let mut h = rescue();
    let (p, text) = profile();
    let inv = swapped();
    let plan = load(&mut h, &inv, &p, &text, NEW, FirmwareMode::Bios, false).unwrap();
    // reading it imported both pools read-only and exported them again: nothing left imported
    let read: Vec<String> = h.commands();
    let ro = read.iter().position(|c| c.starts_with("zpool import -o readonly=on -N -f -R /mnt/keel -d") && c.ends_with(" 9002")).expect("read-only import");
    assert!(read[ro..].iter().any(|c| c == "zpool export rpool") && read[ro..].iter().any(|c| c == "zpool export datapool"), "{read:#?}");
    assert!(!read.iter().any(|c| c.starts_with("zpool import -N")), "{read:#?}");
    assert_eq!(plan.rescue.iter().map(|r| (r.pool.as_str(), r.guid.as_str())).collect::<Vec<_>>(), [("rpool", "9002"), ("datapool", "9003")]);
    let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.first(), Some(&"replace.import"));
    assert_eq!(ids.last(), Some(&"replace.export"));
    assert!(ids.iter().position(|i| *i == "replace.mount") < ids.iter().position(|i| *i == "replace.boot"), "{ids:?}");
    let dir = PathBuf::from("/var/lib/keel");
    let mut j = journal(&mut h, &dir, &plan, false).unwrap();
    preflight(&mut h, &plan, &inv, &j, false).unwrap();
    // the caller stops before the export (to read the node's registry credentials), then ends it
    let opts = Options { stop_before: Some("replace.export".into()), ..Options::default() };
    let first = run(&mut h, &plan, &mut j, &opts, Spent::default(), &mut |_| {}).unwrap();
    assert!(!j.finished());
    assert!(!h.commands().iter().any(|c| c.starts_with("umount")));
    let earlier = Spent { wall: first.wall + Duration::from_secs(100), ..first };
    run(&mut h, &plan, &mut j, &Options::default(), earlier, &mut |_| {}).unwrap();
    assert!(j.finished());
    // the finish counts both calls
    match &j.entries.last().unwrap().record {
        Record::Finished { seconds, .. } => assert!(*seconds >= 100.0, "{seconds}"),
        r => panic!("{r:?}"),
    }
    let cmds: Vec<String> = h.commands()[read.len()..].to_vec();
    let pos = |prefix: &str| cmds.iter().position(|c| c.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix} not run: {cmds:#?}"));
    assert!(pos("zpool import -N -f -R /mnt/keel -d") < pos("sgdisk --clear"));
    assert!(pos("zpool replace rpool 202") < pos("zfs mount rpool/ROOT/pve-1") && pos("zfs mount") < pos("mount --make-private --rbind /dev /mnt/keel/dev"));
    assert!(pos("mount --make-private --rbind /run") < pos("chroot /mnt/keel /usr/local/sbin/keel-boot-sync install"));
    assert!(pos("chroot /mnt/keel /usr/local/sbin/keel-boot-sync install") < pos("umount --recursive /mnt/keel"));
    assert!(pos("umount --recursive /mnt/keel") < pos("zpool export datapool") && pos("zpool export datapool") < pos("zpool export rpool"));
    // the node's files, in its root: the rescue system's own /etc is not touched
    assert!(h.files.contains_key(&PathBuf::from("/mnt/keel/etc/keel/boot-disks")));
    assert!(!h.files.contains_key(&PathBuf::from("/etc/keel/boot-disks")));
    // the survivor is named only to import from it
    for c in cmds.iter().filter(|c| !c.starts_with("zpool status") && !c.starts_with("sfdisk --json") && !c.starts_with("zpool import") && !c.starts_with("zpool get") && !c.starts_with("zpool list")) {
        assert!(!c.contains(A) && !c.contains("nvme0n1"), "{c}");
    }
}

#[test]
fn in_a_rescue_system_two_pools_of_one_name_are_refused_and_no_zfs_module_is_said() {
    let mut h = rescue();
    let (p, text) = profile();
    // an old drive with a pool named rpool of its own
    let mut inv = swapped();
    let mut old = inv.disks.iter().find(|d| d.serial == A).unwrap().clone();
    old.serial = "OLDDRIVE01".into();
    old.name = "nvme2n1".into();
    old.stable_id = Some(format!("nvme-{MODEL}_OLDDRIVE01"));
    old.by_id = vec![format!("nvme-{MODEL}_OLDDRIVE01")];
    inv.disks.push(old);
    h.links.insert(PathBuf::from(by_id("OLDDRIVE01", 2)), PathBuf::from("/dev/nvme2n1p2"));
    h.answer(&format!("zpool import -d {}", by_id("OLDDRIVE01", 2)), Output::ok(&import_listing("rpool", "7777", &format!("nvme-{MODEL}_OLDDRIVE01-part2"), "1234")));
    let e = load(&mut h, &inv, &p, &text, NEW, FirmwareMode::Bios, false).err().unwrap();
    assert!(e.contains("2 pools named rpool") && e.contains("GUID 9002 on S675NX0T100001") && e.contains("GUID 7777 on OLDDRIVE01") && e.contains("disks.serials"), "{e}");
    assert!(!h.commands().iter().any(|c| c.starts_with("zpool import -o") || c.starts_with("zpool import -N")), "{:#?}", h.commands());
    // Hetzner's rescue: no module, its zpool a script that builds OpenZFS: never run
    let mut h = rescue();
    h.files.remove(std::path::Path::new("/sys/module/zfs"));
    let e = load(&mut h, &swapped(), &p, &text, NEW, FirmwareMode::Bios, false).err().unwrap();
    assert!(e.contains("no ZFS module") && e.contains("nothing was written"), "{e}");
    assert!(h.commands().is_empty(), "{:#?}", h.commands());
}

/// Pools the operator imported by hand in the rescue system (no altroot): the node's root
/// would be mounted over the rescue's own; refused before anything runs.
#[test]
fn in_a_rescue_system_pools_imported_without_keels_altroot_are_refused() {
    let mut h = rescue();
    answer_pools(&mut h, &[("rpool", degraded_listing("rpool", 2)), ("datapool", degraded_listing("datapool", 3))]);
    h.answer("zpool get -H -o value altroot", Output::ok("-\n"));
    let (p, text) = profile();
    let e = load(&mut h, &swapped(), &p, &text, NEW, FirmwareMode::Bios, false).err().unwrap();
    assert!(e.contains("altroot \"-\", not /mnt/keel") && e.contains("zpool export rpool datapool") && e.contains("nothing was written"), "{e}");
    // under keel's altroot (a run that got that far) they are the replace's: no import again
    h.set("zpool get -H -o value altroot", Output::ok("/mnt/keel\n"));
    h.answer("zpool list -H -o guid rpool", Output::ok("9002\n"));
    h.answer("zpool list -H -o guid datapool", Output::ok("9003\n"));
    let plan = load(&mut h, &swapped(), &p, &text, NEW, FirmwareMode::Bios, false).unwrap();
    assert_eq!(plan.rescue.iter().map(|r| (r.guid.as_str(), r.survivor_part.as_str())).collect::<Vec<_>>(), [("9002", by_id(A, 2).as_str()), ("9003", by_id(A, 3).as_str())]);
    assert!(!h.commands().iter().any(|c| c.starts_with("zpool import")), "{:#?}", h.commands());
}

/// A rescue system without ZFS: before the switch to keel-live only the drives are looked at;
/// the handover names the survivor candidates and the new drive, and refuses what keel-live
/// would refuse anyway (no such drive, not blank, the boot disk, no candidate), writing nothing.
#[test]
fn without_zfs_the_handover_to_keel_live_names_the_drives_and_refuses_from_the_inventory() {
    let (p, _) = profile();
    let inv = swapped();
    let said = live_handover(&inv, &p, NEW, false).unwrap();
    assert!(said.contains(&format!("surviving drive ({A} (")) && said.contains(&format!("the new drive {NEW} (")), "{said}");
    assert!(said.contains(&format!("/dev/disk/by-id/nvme-{MODEL}_{NEW}")) && said.contains("still blank"), "{said}");
    // the new drive is never a survivor candidate, nor a drive of another kind
    let candidates = said.split("check that").next().unwrap();
    assert!(!candidates.contains(NEW), "{said}");
    let mut with_cdrom = swapped();
    let mut cdrom = with_cdrom.disks[0].clone();
    (cdrom.name, cdrom.serial, cdrom.kind, cdrom.stable_id) = ("sr0".into(), "QM00003".into(), crate::hardware::DiskKind::Optical, Some("ata-QEMU_DVD-ROM_QM00003".into()));
    with_cdrom.disks.push(cdrom);
    assert!(!live_handover(&with_cdrom, &p, NEW, false).unwrap().contains("QM00003"));

    let e = live_handover(&inv, &p, "NOSUCH", false).unwrap_err();
    assert!(e.contains("no drive with serial NOSUCH") && e.contains(A) && e.contains("nothing was written"), "{e}");

    let full = swapped_with_partitions();
    let e = live_handover(&full, &p, NEW, false).unwrap_err();
    assert!(e.contains("is not blank") && e.contains("--wipe-existing"), "{e}");
    assert!(live_handover(&full, &p, NEW, true).unwrap().contains("--wipe-existing"));

    let mut booted = swapped();
    let name = booted.disks.iter().find(|d| d.serial == NEW).unwrap().name.clone();
    booted.boot.disks = vec![name];
    assert!(live_handover(&booted, &p, NEW, false).unwrap_err().contains("booted from"));

    let mut alone = swapped();
    alone.disks.retain(|d| d.serial == NEW);
    assert!(live_handover(&alone, &p, NEW, false).unwrap_err().contains("no drive here besides"));
}
