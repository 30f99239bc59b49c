use std::path::Path;

use super::*;
use crate::hardware::probe;
use crate::profile::Profile;
use crate::source::SourceFile;

fn root(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn load(rel: &str) -> Profile {
    Profile::load(&root(rel)).unwrap().profile
}

fn spec(rel: &str) -> Spec {
    Spec::load(&SourceFile::read(&root(rel)).unwrap()).unwrap()
}

#[test]
fn seed_plan_names_both_disks_by_serial_and_is_deterministic() {
    let inv = probe(&root("tests/fixtures/ax41-nvme")).unwrap();
    let p = load("profiles/pve-node-01.toml");
    let s = spec("hardware-specs/ax41-nvme.toml");
    let a = build(&inv, &p, Some(&s)).unwrap();
    let b = build(&inv, &p, Some(&s)).unwrap();
    assert_eq!(a.human(), b.human());
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    let serials: Vec<&str> = a.targets.iter().map(|t| t.serial.as_str()).collect();
    assert_eq!(serials, ["S675NX0T100001", "S675NX0T100002"]);
    // every destructive command names a target by-id path, never a kernel name
    for step in a.steps.iter().filter(|s| s.group.destructive()) {
        for c in &step.commands {
            let joined = c.join(" ");
            assert!(!joined.contains("/dev/nvme"), "{joined}");
            if joined.contains("/dev/") {
                assert!(a.targets.iter().any(|t| joined.contains(&t.by_id)), "{joined}");
            }
        }
    }
}

#[test]
fn pools_carry_every_seed_option_on_partition_3() {
    let inv = probe(&root("tests/fixtures/ax41-nvme")).unwrap();
    let plan = build(&inv, &load("profiles/pve-node-01.toml"), None).unwrap();
    let step = plan.steps.iter().find(|s| s.id == "pools.datapool").unwrap();
    let c = step.commands[0].join(" ");
    for opt in ["-o ashift=12", "-O compression=lz4", "-O atime=off", "-O xattr=sa", "-O dnodesize=auto", "-O normalization=formD", "-O mountpoint=none"] {
        assert!(c.contains(opt), "{opt} missing: {c}");
    }
    assert!(c.ends_with("mirror /dev/disk/by-id/nvme-SAMSUNG_MZVL2512HCJQ-00B00_S675NX0T100001-part3 /dev/disk/by-id/nvme-SAMSUNG_MZVL2512HCJQ-00B00_S675NX0T100002-part3"), "{c}");
}

#[test]
fn pinned_serial_missing_is_refused() {
    let inv = probe(&root("tests/fixtures/ax41-nvme")).unwrap();
    let mut p = load("profiles/pve-node-01.toml");
    p.disks.serials = vec!["S675NX0T100001".into(), "NOPE".into()];
    let err = build(&inv, &p, None).unwrap_err().to_string();
    assert!(err.contains("pinned disk serial NOPE"), "{err}");
}

#[test]
fn booted_from_disk_is_never_a_target() {
    let inv = probe(&root("tests/fixtures/ax41-nvme-booted-from-nvme")).unwrap();
    let mut p = load("profiles/pve-node-01.toml");
    let err = build(&inv, &p, None).unwrap_err().to_string();
    assert!(err.contains("0 free NVMe drive(s)"), "{err}");
    p.disks.serials = vec!["S675NX0T100001".into(), "S675NX0T100002".into()];
    let err = build(&inv, &p, None).unwrap_err().to_string();
    assert!(err.contains("is in use") && err.contains("booted from"), "{err}");
}

#[test]
fn wrong_uplink_mac_is_refused_with_what_was_found() {
    let inv = probe(&root("tests/fixtures/ax41-nvme")).unwrap();
    let err = build(&inv, &load("profiles/pve-node-02.toml"), None).unwrap_err().to_string();
    assert!(err.contains("a8:a1:59:41:00:02") && err.contains("enp35s0 a8:a1:59:41:00:01"), "{err}");
}
