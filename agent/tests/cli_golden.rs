//! Every command on every fixture, against golden transcripts in tests/golden/cli/.

mod common;

use common::*;

const FIXTURES: [&str; 6] = [
    "ax41-nvme",
    "ax41-nvme-one-drive",
    "ax41-nvme-256gb",
    "ax41-nvme-32gb",
    "ax41-nvme-booted-from-nvme",
    "qemu-lab",
];

#[test]
fn detect_json_on_every_fixture() {
    for f in FIXTURES {
        let root = format!("tests/fixtures/{f}");
        let run = golden_run(&format!("cli/detect-json-{f}.txt"), &["detect", "--root", &root, "--json"], 0);
        let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("detect --json is JSON");
        assert_eq!(v["schema"], "keel.inventory/v1");
    }
}

#[test]
fn detect_human() {
    golden_run("cli/detect-ax41-nvme.txt", &["detect", "--root", "tests/fixtures/ax41-nvme"], 0);
    golden_run("cli/detect-qemu-lab.txt", &["detect", "--root", "tests/fixtures/qemu-lab"], 0);
}

#[test]
fn detect_bad_root_is_an_error_not_a_panic() {
    golden_run("cli/detect-missing-root.txt", &["detect", "--root", "tests/fixtures/does-not-exist"], 1);
}

#[test]
fn check_ax41_spec_on_every_fixture() {
    for f in FIXTURES {
        let code = if f == "ax41-nvme" { 0 } else { 1 };
        let root = format!("tests/fixtures/{f}");
        golden_run(&format!("cli/check-ax41-{f}.txt"), &["check", "--spec", "hardware-specs/ax41-nvme.toml", "--root", &root], code);
    }
}

#[test]
fn check_qemu_lab_spec() {
    golden_run("cli/check-qemu-lab-qemu-lab.txt", &["check", "--spec", "hardware-specs/qemu-lab.toml", "--root", "tests/fixtures/qemu-lab"], 0);
    let run = golden_run("cli/check-qemu-lab-json.txt", &["check", "--spec", "hardware-specs/qemu-lab.toml", "--root", "tests/fixtures/qemu-lab", "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(v["rows"].as_array().unwrap().iter().all(|r| r["ok"] == true));
}

#[test]
fn validate_shipped_profiles() {
    for p in ["pve-node-01", "pve-node-02", "lab-node-01"] {
        golden_run(&format!("cli/validate-{p}.txt"), &["validate", "--profile", &format!("profiles/{p}.toml")], 0);
    }
}

#[test]
fn validate_broken_files() {
    golden_run("cli/validate-syntax-error.txt", &["validate", "--profile", "tests/bad-profiles/syntax-error.toml"], 1);
    golden_run("cli/validate-unknown-field.txt", &["validate", "--profile", "tests/bad-profiles/unknown-field.toml"], 1);
    golden_run("cli/validate-missing-file.txt", &["validate", "--profile", "tests/bad-profiles/nope.toml"], 1);
}

#[test]
fn plan_seed_node_on_ax41() {
    let args = ["plan", "--profile", "profiles/pve-node-01.toml", "--root", "tests/fixtures/ax41-nvme"];
    golden_run("cli/plan-pve-node-01-ax41.txt", &args, 0);
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let run = golden_run("cli/plan-pve-node-01-ax41-json.txt", &json_args, 0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["schema"], "keel.plan/v1");
    assert_eq!(v["targets"][0]["serial"], "S675NX0T100001");
}

#[test]
fn plan_lab_node_on_qemu_lab() {
    golden_run("cli/plan-lab-node-01-qemu-lab.txt", &["plan", "--profile", "profiles/lab-node-01.toml", "--root", "tests/fixtures/qemu-lab"], 0);
}

#[test]
fn plan_as_a_shell_script() {
    golden_run("cli/plan-lab-node-01-shell.txt", &["plan", "--profile", "profiles/lab-node-01.toml", "--root", "tests/fixtures/qemu-lab", "--shell"], 0);
}

#[test]
fn plan_from_an_image() {
    // the OS comes from the image: no package pass, os.image and os.identity instead
    golden_run("cli/plan-lab-node-01-image.txt", &["plan", "--profile", "profiles/lab-node-01.toml", "--root", "tests/fixtures/qemu-lab", "--image", "tests/images/pve-base-lab.zfs.zst"], 0);
    golden_run("cli/plan-lab-node-01-image-shell.txt", &["plan", "--profile", "profiles/lab-node-01.toml", "--root", "tests/fixtures/qemu-lab", "--image", "tests/images/pve-base-lab.zfs.zst", "--shell"], 0);
    // no manifest beside the image: said before anything else
    golden_run("cli/plan-image-missing.txt", &["plan", "--profile", "profiles/lab-node-01.toml", "--root", "tests/fixtures/qemu-lab", "--image", "tests/images/nothing.zfs.zst"], 1);
}

#[test]
fn plan_refusals() {
    // spec failure: the table, and nothing planned
    golden_run("cli/plan-one-drive.txt", &["plan", "--profile", "profiles/pve-node-01.toml", "--root", "tests/fixtures/ax41-nvme-one-drive"], 1);
    golden_run("cli/plan-booted-from-nvme.txt", &["plan", "--profile", "profiles/pve-node-01.toml", "--root", "tests/fixtures/ax41-nvme-booted-from-nvme"], 1);
    // node-02's MAC is not on node-01's hardware
    golden_run("cli/plan-wrong-mac.txt", &["plan", "--profile", "profiles/pve-node-02.toml", "--root", "tests/fixtures/ax41-nvme"], 1);
    // the AX41 profile on lab hardware, spec given explicitly: lab drives are too small
    golden_run("cli/plan-ax41-profile-on-lab.txt", &["plan", "--profile", "profiles/pve-node-01.toml", "--spec", "hardware-specs/qemu-lab.toml", "--root", "tests/fixtures/qemu-lab"], 1);
}
