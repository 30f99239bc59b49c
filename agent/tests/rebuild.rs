//! `keel rebuild` end to end against the stand-ins: the Robot stand-in (rescue activation, reset)
//! and a real sshd on loopback that comes back with a new host key when the stand-in resets it,
//! as a server booting into the rescue system does; the far side installs onto the loop-device
//! rig. The rebuild is killed after each phase in turn and re-run: it continues, and never
//! activates the rescue system or resets the server twice.

mod common;
mod loop_rig;
mod robot_standin;
mod sshd;

use std::process::Command;
use std::sync::{Arc, Mutex};

use loop_rig::*;
use sshd::Sshd;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

#[test]
fn a_rebuild_killed_after_each_phase_continues_and_resets_once() {
    let Some(_g) = exclusive() else { return };
    let Some(sshd) = Sshd::start() else { return };
    let options = sshd.options();
    let old_host_pub = std::fs::read_to_string(sshd.dir.path().join("host_key.pub")).unwrap();
    let sshd = Arc::new(Mutex::new(sshd));
    let (robot_url, world) = robot_standin::start();
    let s2 = sshd.clone();
    world.lock().unwrap().on_reset = Some(Box::new(move || s2.lock().unwrap().restart_with_new_host_key()));

    let rig = Rig::new();
    let profile = rig.profile();
    let mut text = std::fs::read_to_string(&profile).unwrap();
    text.push_str(&format!("\n[robot]\nserver = \"2001\"\nkey-fingerprint = \"{}\"\n", robot_standin::KEY));
    std::fs::write(&profile, text).unwrap();
    let state = rig.dir.path().join("state");
    let confirm = format!("{},{}", SERIALS[0], SERIALS[1]);
    // one recorded tree for the whole rebuild: the far install runs detached while later runs start
    let root = rig.root();
    let registry_args: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let run = |stop_after: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_keel"));
        c.args(["rebuild", "lab-node-01", "--profile", profile.to_str().unwrap(), "--host", "127.0.0.1", "--yes", "--confirm-serials", &confirm, "--until", UNTIL])
            .args(&options)
            .args(["--far-dir", rig.dir.path().join("far").to_str().unwrap(), "--far-journal-dir", rig.journals().to_str().unwrap(), "--far-root", root.to_str().unwrap()])
            .args(["--state-dir", state.to_str().unwrap(), "--ssh-wait", "60"])
            .args(registry_args.lock().unwrap().iter())
            .env("KEEL_ROBOT_URL", &robot_url)
            .env("KEEL_ROBOT_USER", robot_standin::USER)
            .env("KEEL_ROBOT_PASSWORD", robot_standin::PASSWORD)
            .stdin(std::process::Stdio::null());
        if let Some(p) = stop_after {
            c.env("KEEL_TEST_STOP_AFTER", p);
        }
        let o = c.output().unwrap();
        let out = Out { code: o.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&o.stdout).into(), stderr: String::from_utf8_lossy(&o.stderr).into() };
        assert!(!out.stderr.contains("panicked") && !out.stderr.contains(robot_standin::PASSWORD), "{}", out.stderr);
        out
    };

    // without --yes and without a terminal: refused before any Robot call
    let o = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(["rebuild", "lab-node-01", "--profile", profile.to_str().unwrap(), "--host", "127.0.0.1", "--state-dir", state.to_str().unwrap()])
        .env("KEEL_ROBOT_URL", &robot_url)
        .env("KEEL_ROBOT_USER", robot_standin::USER)
        .env("KEEL_ROBOT_PASSWORD", robot_standin::PASSWORD)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("power-cycles Robot server 2001") && err.contains("--yes --confirm-serials") && err.contains("nothing was done"), "{err}");
    assert!(world.lock().unwrap().log.is_empty(), "no Robot call was made");

    for phase in ["rescue", "reset", "ssh", "install", "follow"] {
        let r = run(Some(phase));
        assert_eq!(r.code, 1, "stopped after {phase}:\n{}", r.stderr);
        assert!(r.stderr.contains(&format!("KEEL_TEST_STOP_AFTER={phase}")), "{}", r.stderr);
        let w = world.lock().unwrap();
        let rescues = w.log.iter().filter(|l| l.starts_with("POST /boot/2001/rescue")).count();
        assert_eq!((rescues, w.resets.len()), (1, if phase == "rescue" { 0 } else { 1 }), "after {phase}: {:?}", w.log);
    }
    // the old host key is no longer the server's; the rebuild pinned the new one
    let new_host_pub = std::fs::read_to_string(sshd.lock().unwrap().dir.path().join("host_key.pub")).unwrap();
    assert_ne!(old_host_pub, new_host_pub);
    let pinned = std::fs::read_to_string(state.join("known_hosts-lab-node-01")).unwrap();
    assert!(pinned.contains(new_host_pub.split_whitespace().nth(1).unwrap()), "{pinned}");

    // the last run also waits for the first boot's phone-home: the registry has it already
    // (the lab proves the real first boot; here the node's report is stored directly)
    let (reg_url, store, rt) = registry();
    rt.block_on(async {
        let node = keel_registry::store::NewNode { hostname: "lab-node-01".into(), profile: "x".into(), mac: None, dmi_serial: Some("S".into()), disk_serials: vec![], pxe: false };
        store.arm_node(&node, Some("h"), keel_registry::store::now() + 600).await.unwrap();
        let boot = serde_json::json!({ "phase": "ready", "ssh_host_keys": ["ssh-ed25519 SHA256:abc"], "cluster": { "action": "join", "ok": true } });
        store.set_boot_report("lab-node-01", &boot.to_string(), "ready", "ready").await.unwrap();
    });
    let admin = rig.dir.path().join("admin.token");
    std::fs::write(&admin, REGISTRY_ADMIN).unwrap();
    registry_args.lock().unwrap().extend(["--registry".to_string(), reg_url, "--registry-admin-token-file".into(), admin.display().to_string()]);
    let last = run(None);
    assert_eq!(last.code, 0, "{}", last.stderr);
    assert!(last.stdout.contains("first boot reported: state ready, host keys ssh-ed25519 SHA256:abc"), "{}", last.stdout);
    if let Some(f) = std::env::var_os("KEEL_CAPTURE_REBUILD") {
        // the README's captured run comes from here
        std::fs::write(f, format!("{}{}", last.stderr, last.stdout)).unwrap();
    }
    assert!(last.stdout.contains("rebuild of lab-node-01: done"), "{}", last.stdout);
    for phase in ["rescue", "reset", "ssh", "install", "follow", "phone-home"] {
        assert!(last.stdout.lines().any(|l| l.starts_with(phase)), "{phase} in the summary:\n{}", last.stdout);
    }
    assert_eq!(world.lock().unwrap().resets.len(), 1, "one reset in all");
    assert_eq!(rig.layout(), planned_layout(&rig));
    let journal = std::fs::read_to_string(rig.journals().join("install-lab-node-01.jsonl")).unwrap();
    assert_eq!(journal.matches("\"event\":\"begin\"").count(), 1, "one install, not one per run");
    // everything done: a further run changes nothing
    let again = run(None);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(world.lock().unwrap().resets.len(), 1);
    // the stand-in outlives the test: drop its hook so that sshd stops with the test
    world.lock().unwrap().on_reset = None;
}
