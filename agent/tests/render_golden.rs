//! `keel render` output, file by file, against tests/golden/render/<profile>/.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;

fn files_under(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out
}

fn check_profile(name: &str) {
    let out = tempfile::tempdir().unwrap();
    let run = keel(&["render", "--profile", &format!("profiles/{name}.toml"), "--out", out.path().to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got = files_under(out.path());
    let golden_dir = workspace().join("tests/golden/render").join(name);
    if std::env::var_os("KEEL_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&golden_dir);
    } else {
        assert_eq!(got, files_under(&golden_dir), "set of rendered files for {name}");
    }
    for rel in &got {
        let content = std::fs::read_to_string(out.path().join(rel)).unwrap();
        assert_golden(&format!("render/{name}/{rel}"), &content);
    }
    // modes: secrets-adjacent files are private
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(out.path().join("root/.ssh/authorized_keys")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn render_pve_node_01() {
    check_profile("pve-node-01");
}

#[test]
fn render_pve_node_02() {
    check_profile("pve-node-02");
}

#[test]
fn render_lab_node_01() {
    check_profile("lab-node-01");
}

#[test]
fn render_refuses_the_live_root() {
    let run = keel(&["render", "--profile", "profiles/pve-node-01.toml", "--out", "/"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("would overwrite this system's own files"), "{}", run.stderr);
}
