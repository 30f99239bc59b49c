//! Golden-file helpers for the CLI tests. `KEEL_BLESS=1 cargo test` rewrites the golden files;
//! review the diff like code before committing it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the built `keel` with `args` in directory `cwd`.
pub fn keel_in(cwd: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_keel")).args(args).current_dir(cwd).output().expect("running keel");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

pub fn keel(args: &[&str]) -> Run {
    keel_in(&workspace(), args)
}

/// Compares `actual` with the golden file `tests/golden/<rel>`.
pub fn assert_golden(rel: &str, actual: &str) {
    let path = workspace().join("tests/golden").join(rel);
    if std::env::var_os("KEEL_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("golden file {} is missing: run KEEL_BLESS=1 cargo test and review it", path.display()));
    if expected != actual {
        let first = expected.lines().zip(actual.lines()).position(|(a, b)| a != b).unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "output differs from {} at line {}:\n  expected: {:?}\n  actual:   {:?}\n(KEEL_BLESS=1 cargo test rewrites golden files; review the diff)",
            path.display(),
            first + 1,
            expected.lines().nth(first).unwrap_or("<end>"),
            actual.lines().nth(first).unwrap_or("<end>")
        );
    }
}

/// The golden transcript of one CLI run: command, exit code, stdout, stderr.
pub fn transcript(args: &[&str], run: &Run) -> String {
    format!("$ keel {}\nexit: {}\n--- stdout\n{}--- stderr\n{}", args.join(" "), run.code, run.stdout, run.stderr)
}

pub fn golden_run(rel: &str, args: &[&str], expected_code: i32) -> Run {
    let run = keel(args);
    assert_golden(rel, &transcript(args, &run));
    assert_eq!(run.code, expected_code, "exit code of keel {}\nstderr: {}", args.join(" "), run.stderr);
    assert!(!run.stderr.contains("panicked"), "keel panicked: {}", run.stderr);
    run
}
