//! `keel remote install` / `keel remote status` against a real OpenSSH server on loopback (own
//! port, own host key, a test user key, known_hosts pinned) standing in for the rescue system.
//! The far side is this machine: its keel installs onto the loop-device rig (the far root is the
//! rig's recorded tree), up to the ESPs, as the local install tests do.

mod common;
mod loop_rig;
mod sshd;

use std::path::{Path, PathBuf};
use std::process::Command;

use loop_rig::*;
use sshd::Sshd;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `keel ARGS` against the sshd, the far side installing onto the rig with `root` as its
/// recorded tree (built once per test: a detached install may still be reading it).
fn remote(sshd: &Sshd, rig: &Rig, far_dir: &Path, root: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(["--host".into(), "127.0.0.1".into()]);
    all.extend(sshd.options());
    all.extend(["--far-dir".into(), far_dir.display().to_string(), "--far-journal-dir".into(), rig.journals().display().to_string()]);
    all.extend(["--far-root".into(), root.display().to_string()]);
    let o = Command::new(env!("CARGO_BIN_EXE_keel")).args(&all).envs(env.iter().copied()).stdin(std::process::Stdio::null()).output().unwrap();
    let out = Out { code: o.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&o.stdout).into(), stderr: String::from_utf8_lossy(&o.stderr).into() };
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out
}

fn far_dir(rig: &Rig) -> PathBuf {
    rig.dir.path().join("far")
}

/// Upload + checksum there, preflight there, consent here, detached run, follow; the connection
/// drops mid-way (test hook) and stays down: keel says how to re-attach, the install goes on
/// there, and `keel remote status --follow` shows it to the end. The disks end as planned.
#[test]
fn a_remote_install_survives_a_dropped_connection_and_is_re_attached() {
    let Some(_g) = exclusive() else { return };
    let Some(sshd) = Sshd::start() else { return };
    let rig = Rig::new();
    let far = far_dir(&rig);
    let profile = rig.profile();
    let root = rig.root();
    let confirm = format!("{},{}", SERIALS[0], SERIALS[1]);
    // wrong serials: refused here after the far side's plan, nothing written there
    let bad = remote(&sshd, &rig, &far, &root, &["remote", "install", "--profile", profile.to_str().unwrap(), "--yes", "--confirm-serials", "KEELTESTC0003", "--until", UNTIL], &[]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(bad.stderr.contains("does not match the disks the plan on 127.0.0.1 would destroy"), "{}", bad.stderr);
    assert!(Command::new("sfdisk").args(["--json", &rig.loops[0]]).output().unwrap().stdout.is_empty(), "nothing may be written");
    // --image reaches the far side's keel: an image it cannot find stops its preflight there
    let no_image = remote(&sshd, &rig, &far, &root, &["remote", "install", "--profile", profile.to_str().unwrap(), "--yes", "--confirm-serials", &confirm, "--until", UNTIL, "--image", "/nonexistent/base.zfs.zst"], &[]);
    assert_eq!(no_image.code, 1, "{}", no_image.stderr);
    assert!(no_image.stderr.contains("reading the image manifest /nonexistent/base.zfs.zst.json") && no_image.stderr.contains("nothing was written"), "{}", no_image.stderr);
    assert!(Command::new("sfdisk").args(["--json", &rig.loops[0]]).output().unwrap().stdout.is_empty(), "nothing may be written");

    let run = remote(&sshd, &rig, &far, &root, &["remote", "install", "--profile", profile.to_str().unwrap(), "--yes", "--confirm-serials", &confirm, "--until", UNTIL], &[("KEEL_TEST_DROP_AFTER", "6")]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("keel uploaded, sha256") && run.stderr.contains("verified there"), "{}", run.stderr);
    assert!(run.stderr.contains("KEELTESTA0001") && run.stderr.contains("EVERYTHING ON THEM IS DESTROYED"), "the far side's disk table is shown here:\n{}", run.stderr);
    assert!(run.stderr.contains("Re-attach: keel remote status --host 127.0.0.1 --follow"), "{}", run.stderr);
    assert!(run.stdout.contains("preflight.targets"), "{}", run.stdout);
    // the uploaded binary is the local one, byte for byte
    assert_eq!(std::fs::read(far.join("keel")).unwrap(), std::fs::read(env!("CARGO_BIN_EXE_keel")).unwrap());

    let st = remote(&sshd, &rig, &far, &root, &["remote", "status", "--follow"], &[]);
    assert_eq!(st.code, 0, "{}", st.stderr);
    assert!(st.stdout.contains("paused after partition.format-esp"), "{}", st.stdout);
    assert!(st.stdout.contains("partition.format-esp: format the EFI system partitions"), "the whole journal, up to the last step:\n{}", st.stdout);
    // the far side did the whole job
    let journal = std::fs::read_to_string(rig.journals().join("install-lab-node-01.jsonl")).unwrap();
    assert!(journal.contains("\"event\":\"paused\""), "{journal}");
    assert_eq!(rig.layout(), planned_layout(&rig));
    // a second run uploads nothing new and finds the install paused where it was asked to
    let again = remote(&sshd, &rig, &far, &root, &["remote", "status"], &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("paused after partition.format-esp"), "{}", again.stdout);
}

/// A far side that looks like an installed node is refused before anything is uploaded.
#[test]
fn an_installed_node_is_not_taken_for_a_rescue_system() {
    let Some(_g) = exclusive() else { return };
    let Some(sshd) = Sshd::start() else { return };
    let rig = Rig::new();
    let far = far_dir(&rig);
    let profile = rig.profile();
    let confirm = format!("{},{}", SERIALS[0], SERIALS[1]);
    // the far root looks installed
    let marker_root = rig.root();
    std::fs::create_dir_all(marker_root.join("etc/keel")).unwrap();
    std::fs::write(marker_root.join("etc/keel/profile.toml"), "installed").unwrap();
    let o = remote(&sshd, &rig, &far, &marker_root, &["remote", "install", "--profile", profile.to_str().unwrap(), "--yes", "--confirm-serials", &confirm, "--until", UNTIL], &[]);
    let err = o.stderr;
    assert_eq!(o.code, 1, "{err}");
    assert!(err.contains("does not look like a rescue system: it has /etc/keel/profile.toml (installed by keel)") && err.contains("--force"), "{err}");
    assert!(!far.exists(), "nothing was uploaded");
    assert!(Command::new("sfdisk").args(["--json", &rig.loops[0]]).output().unwrap().stdout.is_empty(), "nothing was written");
}
