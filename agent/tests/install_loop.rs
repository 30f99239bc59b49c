//! `keel install` on real block devices: sparse image files attached as loop devices, with the
//! real sgdisk, wipefs, partprobe, mkfs.vfat and sfdisk. Needs root. The host kernel has no ZFS,
//! so these runs stop after the ESPs are formatted (`--until partition.format-esp`); the pool and
//! dataset steps are covered by the fake-host tests and, for real, by the lab.
//!
//! The loop devices get serials through a recorded tree (`--root`, as the fixtures do): its
//! /proc is the live one, its sys/block/loopN entries link to the live ones plus a `serial`
//! file, and /dev/disk/by-id links (made here, as udev would) name the devices.

mod common;
mod loop_rig;

use std::process::Command;

use common::*;
use loop_rig::*;

#[test]
fn install_partitions_exactly_as_planned_and_a_rerun_changes_nothing() {
    let Some(_g) = exclusive() else { return };
    let rig = Rig::new();
    let bystander = rig.bystander();

    let pre = rig.keel(&["--preflight-only", "--until", UNTIL], &[]);
    assert_eq!(pre.code, 0, "{}", pre.stderr);
    assert!(pre.stderr.contains("KEELTESTA0001") && pre.stderr.contains("nothing was written"), "{}", pre.stderr);
    assert!(Command::new("sfdisk").args(["--json", &rig.loops[0]]).output().unwrap().stdout.is_empty(), "preflight wrote a table");

    let first = rig.install(&[]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert_eq!(rig.layout(), planned_layout(&rig));
    for dev in &rig.loops[..2] {
        assert_eq!(sh(&format!("blkid -p -o value -s TYPE {dev}p1")), "vfat");
    }
    let state = rig.state();

    let again = rig.install(&[]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(rig.state(), state, "a re-run changed the disks");
    assert!(again.stdout.contains("done earlier, still holds"), "{}", again.stdout);
    assert!(!again.stdout.contains("$ sgdisk") && !again.stdout.contains("$ mkfs.vfat"), "{}", again.stdout);

    let status = keel(&["status", "--journal-dir", rig.journals().to_str().unwrap()]);
    assert_eq!(status.code, 0);
    assert!(status.stdout.contains("paused after partition.format-esp"), "{}", status.stdout);
    assert_eq!(rig.bystander(), bystander, "a disk outside the plan was written");
}

#[test]
fn a_run_killed_after_any_step_resumes_to_the_same_state() {
    let Some(_g) = exclusive() else { return };
    let reference = {
        let rig = Rig::new();
        assert_eq!(rig.install(&[]).code, 0);
        rig.layout()
    };
    for step in ["wipe.disk-a", "wipe.disk-b", "partition.disk-a", "partition.disk-b", "partition.settle", "partition.format-esp"] {
        let rig = Rig::new();
        let bystander = rig.bystander();
        let confirm = format!("{},{}", SERIALS[0], SERIALS[1]);
        let crashed = rig.keel(&["--yes", "--confirm-serials", &confirm, "--until", UNTIL], &[("KEEL_TEST_CRASH_AFTER", step)]);
        assert_eq!(crashed.code, 99, "crash after {step}: {}", crashed.stderr);
        let esp_before = sh(&format!("blkid -p -o value -s UUID {}p1 || true", rig.loops[0]));
        let resumed = rig.install(&[]);
        assert_eq!(resumed.code, 0, "resume after a crash in {step}:\n{}\n{}", resumed.stdout, resumed.stderr);
        assert_eq!(rig.layout(), reference, "after a crash in {step}");
        if step == "partition.format-esp" {
            // the file systems made before the crash were found, not made again
            assert_eq!(sh(&format!("blkid -p -o value -s UUID {}p1", rig.loops[0])), esp_before);
            assert!(resumed.stdout.contains("holds vfat"), "{}", resumed.stdout);
        }
        assert_eq!(rig.bystander(), bystander);
    }
}

#[test]
fn refusals_write_nothing() {
    let Some(_g) = exclusive() else { return };
    let rig = Rig::new();
    let bystander = rig.bystander();
    let blank = |rig: &Rig| Command::new("sfdisk").args(["--json", &rig.loops[0]]).output().unwrap().stdout.is_empty();

    // no terminal and no --yes
    let r = rig.keel(&["--until", UNTIL], &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no terminal to ask for confirmation"), "{}", r.stderr);
    // --yes with the wrong serials, or without any
    let r = rig.keel(&["--yes", "--confirm-serials", "KEELTESTA0001,KEELTESTC0003", "--until", UNTIL], &[]);
    assert!(r.code == 1 && r.stderr.contains("does not match the disks this plan destroys"), "{}", r.stderr);
    let r = rig.keel(&["--yes", "--until", UNTIL], &[]);
    assert!(r.code == 1 && r.stderr.contains("--confirm-serials (none)"), "{}", r.stderr);
    assert!(blank(&rig));

    // disk B's by-id link points at the bystander: serial mismatch
    let link = by_id(SERIALS[1]);
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&rig.loops[2], &link).unwrap();
    let r = rig.install(&[]);
    assert!(r.code == 1 && r.stderr.contains("serial mismatch for disk B") && r.stderr.contains("KEELTESTC0003"), "{}", r.stderr);
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&rig.loops[1], &link).unwrap();
    assert!(blank(&rig));

    // a file system on a target needs --wipe-existing; mounted, it is refused outright
    sh(&format!("mkfs.ext4 -q -F -L OLD {}", rig.loops[0]));
    let r = rig.install(&[]);
    assert!(r.code == 1 && r.stderr.contains("hold data") && r.stderr.contains("ext4") && r.stderr.contains("--wipe-existing"), "{}", r.stderr);
    let mnt = rig.dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    sh(&format!("mount {} {}", rig.loops[0], mnt.display()));
    let r = rig.install(&["--wipe-existing"]);
    sh(&format!("umount {}", mnt.display()));
    assert!(r.code == 1 && r.stderr.contains("is in use") && r.stderr.contains("mounted at"), "{}", r.stderr);
    assert_eq!(sh(&format!("blkid -p -o value -s LABEL {}", rig.loops[0])), "OLD", "a refused run touched disk A");
    let r = rig.install(&["--wipe-existing"]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // a journal from another plan, and a damaged journal
    let other = rig.profile();
    let text = std::fs::read_to_string(&other).unwrap().replace("esp-size = \"256MiB\"", "esp-size = \"512MiB\"");
    std::fs::write(&other, text).unwrap();
    let journal = rig.journals().join("install-lab-node-01.jsonl");
    let mut damaged = std::fs::read_to_string(&journal).unwrap();
    damaged.push_str("{\"seq\": 99, \"ev");
    std::fs::write(&journal, damaged).unwrap();
    let r = rig.install(&[]);
    assert!(r.code == 1 && r.stderr.contains("is damaged") && r.stderr.contains("cut short"), "{}", r.stderr);
    assert_eq!(rig.bystander(), bystander);
}

#[test]
fn a_detached_install_survives_its_caller_and_status_follows_it() {
    let Some(_g) = exclusive() else { return };
    let rig = Rig::new();
    let started = rig.install(&["--detach"]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    assert!(started.stdout.contains("install running in the background") && started.stdout.contains("keel status --follow"), "{}", started.stdout);
    // the caller is gone; the install goes on and `status --follow` returns when it pauses
    let follow = std::thread::spawn({
        let dir = rig.journals();
        move || keel(&["status", "--follow", "--journal-dir", dir.to_str().unwrap()])
    });
    let status = follow.join().unwrap();
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains("paused after partition.format-esp"), "{}", status.stdout);
    assert_eq!(rig.layout(), planned_layout(&rig));
    let log = std::fs::read_to_string(rig.journals().join("install-lab-node-01.log")).unwrap();
    assert!(log.contains("$ sgdisk --clear") && log.contains("exit 0"), "{log}");
}

/// A detached install that dies without finishing its journal (a crash, a kill -9) does not
/// leave `status --follow` waiting forever: it says so, with the end of the install's output.
#[test]
fn status_follow_notices_a_detached_install_that_died() {
    let Some(_g) = exclusive() else { return };
    let rig = Rig::new();
    let confirm = format!("{},{}", SERIALS[0], SERIALS[1]);
    let start = rig.keel(&["--yes", "--confirm-serials", &confirm, "--until", UNTIL, "--detach"], &[("KEEL_TEST_CRASH_AFTER", "wipe.disk-a")]);
    assert_eq!(start.code, 0, "{}", start.stderr);
    let dir = rig.journals();
    let follow = keel(&["status", "--follow", "--journal-dir", dir.to_str().unwrap()]);
    assert_eq!(follow.code, 1, "{}\n{}", follow.stdout, follow.stderr);
    assert!(follow.stderr.contains("ended without finishing its journal") && follow.stderr.contains("KEEL_TEST_CRASH_AFTER=wipe.disk-a"), "{}", follow.stderr);
}


#[test]
fn an_install_phones_home_every_event_then_its_report() {
    let Some(_g) = exclusive() else { return };
    let rig = Rig::new();
    let (url, store, rt) = registry();
    let token = keel_registry::secret::generate();
    rt.block_on(async {
        let profile = std::fs::read_to_string(rig.profile()).unwrap();
        store.put_document("profile", "lab-node-01", &profile, "x").await.unwrap();
        let node = keel_registry::store::NewNode { hostname: "lab-node-01".into(), profile: "lab-node-01".into(), mac: Some("52:54:00:a4:41:01".into()), dmi_serial: None, disk_serials: vec![], pxe: false };
        store.arm_node(&node, Some(&keel_registry::secret::hash(&token)), keel_registry::store::now() + 600).await.unwrap();
    });
    let run = rig.install(&["--registry", &url, "--token", &token]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("events delivered, report sent (ok)"), "{}", run.stderr);
    // every journal entry reached the registry once, in order, the Begin line first
    let journal = std::fs::read_to_string(rig.journals().join("install-lab-node-01.jsonl")).unwrap();
    let written: Vec<u64> = journal.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_u64().unwrap()).collect();
    let events = rt.block_on(store.events("lab-node-01", 0, 10000)).unwrap();
    let got: Vec<u64> = events.iter().map(|(_, b)| serde_json::from_str::<serde_json::Value>(b).unwrap()["journal_seq"].as_u64().unwrap()).collect();
    assert_eq!(got, written);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&events[0].1).unwrap()["event"], "begin");
    let node = rt.block_on(store.node("lab-node-01")).unwrap().unwrap();
    assert_eq!(node.state, "installed");
    let report: serde_json::Value = serde_json::from_str(&rt.block_on(store.report("lab-node-01")).unwrap().unwrap()).unwrap();
    assert_eq!(report["result"], "ok");
    assert!(report["step_seconds"]["partition.format-esp"].as_f64().is_some(), "{report}");
    // a second run (the token from a file this time): the token is spent, the saved
    // enrollment is used, nothing is sent twice
    let token_file = rig.dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let again = rig.install(&["--registry", &url, "--token-file", token_file.to_str().unwrap()]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let n = rt.block_on(store.events("lab-node-01", 0, 10000)).unwrap().len();
    assert!(n > events.len(), "the second run's events arrive too");
    let seqs: Vec<i64> = rt.block_on(store.events("lab-node-01", 0, 10000)).unwrap().iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=n as i64).collect::<Vec<_>>());
}

/// An unattended install: no --profile and no --registry flag; the kernel command line names the
/// registry and the token (as the registry's iPXE script does); the profile comes from the
/// registry; the credentials stay beside the journal for the installed node's first boot.
#[test]
fn an_install_without_a_profile_takes_it_from_the_registry_named_on_the_kernel_command_line() {
    let Some(_g) = exclusive() else { return };
    let rig = Rig::new();
    let (url, store, rt) = registry();
    let token = keel_registry::secret::generate();
    rt.block_on(async {
        let profile = std::fs::read_to_string(rig.profile()).unwrap();
        store.put_document("profile", "lab-node-01", &profile, "x").await.unwrap();
        let node = keel_registry::store::NewNode { hostname: "lab-node-01".into(), profile: "lab-node-01".into(), mac: Some("52:54:00:a4:41:01".into()), dmi_serial: None, disk_serials: vec![], pxe: false };
        store.arm_node(&node, Some(&keel_registry::secret::hash(&token)), keel_registry::store::now() + 600).await.unwrap();
    });
    let cmdline = rig.dir.path().join("cmdline");
    std::fs::write(&cmdline, format!("BOOT_IMAGE=/vmlinuz boot=live keel.registry={url} keel.token={token} quiet\n")).unwrap();
    let (root, journals) = (rig.root(), rig.journals());
    let confirm = format!("{},{}", SERIALS[0], SERIALS[1]);
    let args = ["install", "--root", root.to_str().unwrap(), "--journal-dir", journals.to_str().unwrap(), "--cmdline", cmdline.to_str().unwrap(),
        "--yes", "--confirm-serials", &confirm, "--until", UNTIL];
    let out = Command::new(env!("CARGO_BIN_EXE_keel")).args(args).current_dir(workspace()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("from-registry/profiles/lab-node-01.toml from the registry"), "{stderr}");
    assert!(stderr.contains("report sent (ok)"), "{stderr}");
    assert_eq!(rig.layout(), planned_layout(&rig));
    let creds: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(journals.join("registry.json")).unwrap()).unwrap();
    assert_eq!((creds["registry"].as_str(), creds["enrollment"]["hostname"].as_str()), (Some(url.as_str()), Some("lab-node-01")));
    let node = rt.block_on(store.node("lab-node-01")).unwrap().unwrap();
    assert_eq!(node.state, "installed");
    // nothing at all: a clear refusal
    let none = Command::new(env!("CARGO_BIN_EXE_keel")).args(["install", "--root", root.to_str().unwrap(), "--journal-dir", rig.dir.path().join("j2").to_str().unwrap(), "--cmdline", "/nonexistent"]).output().unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no profile: give --profile FILE, or a registry"), "{}", String::from_utf8_lossy(&none.stderr));
}
