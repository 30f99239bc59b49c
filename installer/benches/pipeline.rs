//! `cargo bench -p keel-installer`: time of detect (probe of the AX41 fixture tree), validate
//! (the seed profile) and plan, each over many runs; prints min / median / mean per operation.
//! No timing is asserted anywhere: these are figures to compare between changes.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use keel_installer::hardware::probe;
use keel_installer::plan;
use keel_installer::profile::Profile;
use keel_installer::source::SourceFile;
use keel_installer::spec::Spec;

fn measure(name: &str, runs: usize, mut f: impl FnMut()) {
    for _ in 0..runs / 10 {
        f(); // warm-up: page cache, allocator
    }
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    t.sort();
    let mean = t.iter().sum::<Duration>() / runs as u32;
    println!(
        "{name:<28} runs {runs:>5}  min {:>9.1} us  median {:>9.1} us  mean {:>9.1} us",
        t[0].as_secs_f64() * 1e6,
        t[runs / 2].as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6
    );
}

fn main() {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = ws.join("tests/fixtures/ax41-nvme");
    let profile_path = ws.join("profiles/pve-node-01.toml");
    let spec_src = SourceFile::read(&ws.join("hardware-specs/ax41-nvme.toml")).unwrap();
    let profile_src = SourceFile::read(&profile_path).unwrap();

    measure("detect (probe ax41 fixture)", 2000, || {
        black_box(probe(&root).unwrap());
    });
    measure("validate (read + check seed)", 2000, || {
        black_box(Profile::load(&profile_path).unwrap());
    });
    measure("validate (parse only, in mem)", 2000, || {
        black_box(Profile::from_source(&profile_src).unwrap());
    });
    let inv = probe(&root).unwrap();
    let profile = Profile::from_source(&profile_src).unwrap().profile;
    let spec = Spec::load(&spec_src).unwrap();
    measure("check (spec vs inventory)", 2000, || {
        black_box(spec.check(&inv));
    });
    measure("plan (build)", 2000, || {
        black_box(plan::build(&inv, &profile, Some(&spec)).unwrap());
    });
    let p = plan::build(&inv, &profile, Some(&spec)).unwrap();
    measure("plan (render human + json)", 2000, || {
        black_box(p.human());
        black_box(serde_json::to_string(&p).unwrap());
    });
    measure("detect+validate+plan total", 1000, || {
        let inv = probe(&root).unwrap();
        let l = Profile::load(&profile_path).unwrap();
        black_box(plan::build(&inv, &l.profile, Some(&spec)).unwrap());
    });
}
