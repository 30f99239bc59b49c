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
    run(&mut h, &plan, &mut j, &Options::default(), &mut |l| said.push(l.to_string())).unwrap();
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
    run(&mut h, &again_plan, &mut j, &Options::default(), &mut |_| {}).unwrap();
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
    run(&mut h, &plan, &mut j, &opts, &mut |l| said.push(l.to_string())).unwrap();
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
