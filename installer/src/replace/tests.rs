use super::fixtures::*;
use super::status::{parse, Scan};
use super::*;
use crate::hardware::probe;
use crate::plan::Plan;

#[test]
fn a_missing_member_and_its_by_path_and_guid_listings() {
    let st = degraded("rpool", 2);
    assert_eq!(st.state, "DEGRADED");
    assert_eq!(st.leaves.len(), 2);
    assert_eq!((st.leaves[0].guid.as_str(), st.leaves[0].path.as_deref(), st.leaves[0].state.as_str()), ("102", Some(by_id(A, 2).as_str()), "ONLINE"));
    assert_eq!((st.leaves[1].guid.as_str(), st.leaves[1].path.as_deref(), st.leaves[1].was.as_deref()), ("202", None, Some(by_id(B, 2).as_str())));
    assert!(!st.resilvering());
    assert_eq!(status::serial_in_by_id(&by_id(B, 2)), Some(B));
    // listings of two different moments are refused, not zipped wrongly
    let (p, _) = status("rpool", "DEGRADED", "none requested", &[(&by_id(A, 2), "ONLINE", "1", ""), ("2", "UNAVAIL", "2", "")], None);
    let (_, g) = status("rpool", "ONLINE", "none requested", &[(&by_id(A, 2), "ONLINE", "1", "")], None);
    assert!(parse(&p, &g).unwrap_err().contains("changed"));
}

#[test]
fn a_resilver_in_progress_is_read_with_its_percentage() {
    let scan = "resilver in progress since Tue Dec  1 21:00:00 2026\n\t1.50G scanned at 150M/s, 800M issued at 80M/s, 2.10G total\n\t790M resilvered, 37.12% done, 00:00:16 to go";
    let (p, g) = status("rpool", "DEGRADED", scan, &[
        (&by_id(A, 2), "ONLINE", "102", ""),
        ("202", "UNAVAIL", "202", &format!("was {}", by_id(B, 2))),
        (&by_id(NEW, 2), "ONLINE", "302", "(resilvering)"),
    ], Some(1));
    let st = parse(&p, &g).unwrap();
    match &st.scan {
        Scan::Resilvering { percent, detail } => {
            assert_eq!(*percent, Some(37.12));
            assert!(detail.contains("790M resilvered"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!st.leaves[0].replacing);
    assert!(st.leaves[1].replacing && st.leaves[2].replacing && st.leaves[2].resilvering);
    let (p, g) = status("rpool", "ONLINE", "resilvered 2.10G in 00:00:40 with 0 errors on Tue Dec  1 21:00:40 2026", &[(&by_id(A, 2), "ONLINE", "102", ""), (&by_id(NEW, 2), "ONLINE", "302", "")], None);
    let st = parse(&p, &g).unwrap();
    assert!(matches!(&st.scan, Scan::Idle(s) if s.starts_with("resilvered")), "{:?}", st.scan);
    assert!(!st.resilvering());
}

#[test]
fn the_new_drive_replaces_the_dead_member_by_guid_in_both_pools() {
    let (p, text) = profile();
    let inv = swapped();
    let m = find(&inv, &p, &both_degraded(), NEW).unwrap();
    assert_eq!((m.survivor.serial.as_str(), m.new.serial.as_str(), m.old_serial.as_deref(), m.position), (A, NEW, Some(B), 1));
    let layout = survivor_layout(&sfdisk("/dev/nvme0n1", 894306304), "/dev/nvme0n1").unwrap();
    let plan = plan(m, layout, &p, &text, FirmwareMode::Bios, false, Vec::new()).unwrap();
    let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["replace.partition", "replace.settle", "replace.format-esp", "replace.rpool", "replace.datapool", "replace.resilver", "replace.boot"]);
    let lines: Vec<String> = plan.steps.iter().flat_map(|s| s.commands.iter().map(|c| c.join(" "))).collect();
    let new_disk = format!("/dev/disk/by-id/nvme-{MODEL}_{NEW}");
    assert!(lines.contains(&format!("sgdisk --clear --set-alignment=1 --new=4:34:2047 --typecode=4:EF02 --change-name=4:bios-boot --new=1:2048:1050623 --typecode=1:EF00 --change-name=1:esp --new=2:1050624:105908223 --typecode=2:BF01 --change-name=2:rpool --new=3:105908224:1000214527 --typecode=3:BF01 --change-name=3:datapool {new_disk}")), "{lines:#?}");
    assert!(lines.contains(&format!("mkfs.vfat -F 32 -n ESP-B {new_disk}-part1")));
    assert!(lines.contains(&format!("zpool replace rpool 202 {new_disk}-part2")), "the dead member by its GUID: {lines:#?}");
    assert!(lines.contains(&format!("zpool replace datapool 203 {new_disk}-part3")));
    assert!(lines.contains(&"/usr/local/sbin/keel-boot-sync install".to_string()));
    // the survivor is never written: no command names it
    for l in &lines {
        assert!(!l.contains(A), "{l}");
    }
    // the boot list: the survivor first, the new drive in the dead one's place
    let boot = plan.steps.iter().find(|s| s.id == "replace.boot").unwrap();
    assert!(boot.files[0].content.ends_with(&format!("/dev/disk/by-id/nvme-{MODEL}_{A}\n{new_disk}\n")), "{}", boot.files[0].content);
    assert!(plan.describe().contains("dead member GUID 202 UNAVAIL"), "{}", plan.describe());
    // the seed pins no serials: nothing to change in the profile
    assert!(plan.profile_change.is_none());
}

#[test]
fn the_survivor_named_as_the_new_drive_is_refused() {
    let (p, _) = profile();
    let e = find(&swapped(), &p, &both_degraded(), A).unwrap_err();
    assert!(e.contains(&format!("{A} is the surviving member of rpool")) && e.contains("nothing was written"), "{e}");
}

#[test]
fn refusals_name_what_is_wrong() {
    let (p, text) = profile();
    let inv = swapped();
    let e = find(&inv, &p, &both_degraded(), "NOPE").unwrap_err();
    assert!(e.contains("no drive with serial NOPE") && e.contains(NEW), "{e}");
    let healthy: Vec<PoolStatus> = [("rpool", 2), ("datapool", 3)].iter().map(|(pool, n)| {
        let (a, g) = status(pool, "ONLINE", "none requested", &[(&by_id(A, *n), "ONLINE", "1", ""), (&by_id(B, *n), "ONLINE", "2", "")], None);
        parse(&a, &g).unwrap()
    }).collect();
    let mut inv2 = probe(&root("tests/fixtures/ax41-nvme")).unwrap();
    inv2.disks.push(swapped().disks.into_iter().find(|d| d.serial == NEW).unwrap());
    let e = find(&inv2, &p, &healthy, NEW).unwrap_err();
    assert!(e.contains("nothing to replace"), "{e}");
    let e = find(&inv, &p, &both_degraded()[..1], NEW).unwrap_err();
    assert!(e.contains("datapool is not imported"), "{e}");
    // a smaller drive
    let m = find(&inv, &p, &both_degraded(), NEW).unwrap();
    let mut small = m.clone();
    small.new.size = ByteSize(256_060_514_304);
    let layout = survivor_layout(&sfdisk("/dev/nvme0n1", 894306304), "/dev/nvme0n1").unwrap();
    let e = plan(small, layout, &p, &text, FirmwareMode::Bios, false, Vec::new()).err().unwrap();
    assert!(e.contains("too small"), "{e}");
    // a table keel did not write
    let e = survivor_layout(&sfdisk("/dev/nvme0n1", 1).replace("\"name\": \"rpool\"", "\"name\": \"root\""), "/dev/nvme0n1").unwrap_err();
    assert!(e.contains("not a table keel wrote"), "{e}");
}

#[test]
fn a_run_that_got_the_drive_into_the_pools_continues_with_the_same_journal() {
    let (p, text) = profile();
    let inv = swapped();
    let layout = || survivor_layout(&sfdisk("/dev/nvme0n1", 894306304), "/dev/nvme0n1").unwrap();
    let fresh = plan(find(&inv, &p, &both_degraded(), NEW).unwrap(), layout(), &p, &text, FirmwareMode::Bios, false, Vec::new()).unwrap();
    let scan = "resilver in progress since Tue Dec  1 21:00:00 2026\n\t790M resilvered, 37.12% done, 00:00:16 to go";
    let pools: Vec<PoolStatus> = [("rpool", 2), ("datapool", 3)].iter().map(|(pool, n)| {
        let (a, g) = status(pool, "DEGRADED", scan, &[
            (&by_id(A, *n), "ONLINE", "1", ""),
            ("2", "UNAVAIL", "2", &format!("was {}", by_id(B, *n))),
            (&by_id(NEW, *n), "ONLINE", "3", "(resilvering)"),
        ], Some(1));
        parse(&a, &g).unwrap()
    }).collect();
    let mut inv = inv;
    inv.disks.iter_mut().find(|d| d.serial == NEW).unwrap().partitions = probe(&root("tests/fixtures/ax41-nvme")).unwrap().disks[0].partitions.clone();
    let m = find(&inv, &p, &pools, NEW).unwrap();
    assert!(m.started() && m.new_has_partitions);
    assert!(matches!(m.pools[0].member, Member::Present { resilvering: true }));
    let resumed = plan(m, layout(), &p, &text, FirmwareMode::Bios, true, Vec::new()).unwrap();
    assert_eq!(resumed.digest(), fresh.digest());
    // nothing is wiped or replaced again
    assert!(resumed.steps.iter().all(|s| s.id != "replace.wipe"));
    assert!(resumed.steps.iter().filter(|s| s.id == "replace.rpool" || s.id == "replace.datapool").all(|s| s.commands.is_empty()));
}

#[test]
fn a_pinned_serial_is_changed_on_its_own_line() {
    let (p, text) = profile();
    let pinned = text.replacen("serials = []", &format!("serials = [\"{A}\", \"{B}\"]"), 1);
    let path = std::env::temp_dir().join(format!("keel-replace-{}.toml", std::process::id()));
    std::fs::write(&path, &pinned).unwrap();
    let pp = Profile::load(&path).unwrap().profile;
    std::fs::remove_file(&path).unwrap();
    let _ = p;
    let m = find(&swapped(), &pp, &both_degraded(), NEW).unwrap();
    let layout = survivor_layout(&sfdisk("/dev/nvme0n1", 894306304), "/dev/nvme0n1").unwrap();
    let plan = plan(m, layout, &pp, &pinned, FirmwareMode::Uefi, false, Vec::new()).unwrap();
    let (n, before, after) = plan.profile_change.clone().unwrap();
    assert_eq!(pinned.lines().nth(n - 1).unwrap(), before);
    assert_eq!(after, format!("serials = [\"{A}\", \"{NEW}\"]"));
    let s = plan.steps.iter().find(|s| s.id == "replace.profile").unwrap();
    assert_eq!(s.files[0].content, pinned.replacen(&format!("\"{B}\"]"), &format!("\"{NEW}\"]"), 1));
    assert_eq!(s.files[0].path, "/etc/keel/profile.toml");
    // in a rescue system the same files go into the node's root, its boot loader commands run
    // inside it, and the pools are imported first and exported last
    let rescue = vec![
        RescuePool { pool: "rpool".into(), guid: "9002".into(), survivor_part: by_id(A, 2) },
        RescuePool { pool: "datapool".into(), guid: "9003".into(), survivor_part: by_id(A, 3) },
    ];
    let m = find(&swapped(), &pp, &both_degraded(), NEW).unwrap();
    let plan = super::plan(m, layout_of(), &pp, &pinned, FirmwareMode::Uefi, false, rescue).unwrap();
    let step = |id: &str| plan.steps.iter().find(|s| s.id == id).unwrap_or_else(|| panic!("no {id}"));
    assert_eq!(step("replace.profile").files[0].path, "/mnt/keel/etc/keel/profile.toml");
    assert_eq!(step("replace.boot").files[0].path, "/mnt/keel/etc/keel/boot-disks");
    assert_eq!(step("replace.boot").commands, vec![vec!["chroot".to_string(), "/mnt/keel".into(), "/usr/local/sbin/keel-boot-sync".into(), "install".into()]]);
    assert_eq!(step("replace.import").commands[0].join(" "), format!("zpool import -N -f -R /mnt/keel -d {} 9002", by_id(A, 2)));
    assert_eq!(plan.steps.first().unwrap().id, "replace.import");
    assert_eq!(plan.steps.last().unwrap().id, "replace.export");
    assert_eq!(step("replace.export").commands.iter().map(|c| c.join(" ")).collect::<Vec<_>>(), ["sync", "umount --recursive /mnt/keel", "zpool export datapool", "zpool export rpool"]);
    assert!(plan.describe().contains("this is a rescue system: rpool (GUID 9002"), "{}", plan.describe());
    let _: Option<&Plan> = None;
}

fn layout_of() -> Layout {
    survivor_layout(&sfdisk("/dev/nvme0n1", 894306304), "/dev/nvme0n1").unwrap()
}
