//! The loop-device rig of the install tests: three sparse image files attached as loop devices
//! with serials (A and B are the plan's targets, C a bystander whose data must survive), the
//! recorded tree keel reads the hardware from, and the lab profile pinned to A and B. Needs
//! root; one test at a time (`exclusive`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use super::common::*;

pub static LOCK: Mutex<()> = Mutex::new(());
pub const SERIALS: [&str; 3] = ["KEELTESTA0001", "KEELTESTB0002", "KEELTESTC0003"];
pub const SIZE: &str = "6G";
pub const UNTIL: &str = "partition.format-esp";

pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(out.status.success(), "`{cmd}` failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The loop devices and by-id links are shared: one test at a time. `None` when the tests
/// cannot run here (not root, tools missing) and KEEL_REQUIRE_TOOLS is not set.
pub fn exclusive() -> Option<std::sync::MutexGuard<'static, ()>> {
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    usable().then_some(guard)
}

pub fn usable() -> bool {
    let root = sh("id -u") == "0";
    let tools = ["losetup", "sgdisk", "wipefs", "partprobe", "mkfs.vfat", "sfdisk", "blkid", "udevadm"]
        .iter()
        .all(|t| Command::new("sh").arg("-c").arg(format!("command -v {t}")).output().unwrap().status.success());
    if root && tools {
        return true;
    }
    if std::env::var_os("KEEL_REQUIRE_TOOLS").is_some() {
        panic!("loop-device tests need root and losetup, sgdisk, wipefs, partprobe, mkfs.vfat, sfdisk, blkid, udevadm");
    }
    eprintln!("SKIPPED: loop-device tests need root and the partitioning tools");
    false
}

/// Three loop devices with serials; A and B are the plan's targets, C is a bystander.
pub struct Rig {
    pub dir: tempfile::TempDir,
    pub loops: Vec<String>,
}

impl Rig {
    pub fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let mut loops = Vec::new();
        std::fs::create_dir_all("/dev/disk/by-id").unwrap();
        for (i, serial) in SERIALS.iter().enumerate() {
            let img = dir.path().join(format!("disk{i}.img"));
            sh(&format!("truncate -s {SIZE} {}", img.display()));
            let dev = sh(&format!("losetup -f --show -P {}", img.display()));
            let link = by_id(serial);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&dev, &link).unwrap();
            for n in 1..=4 {
                let part = PathBuf::from(format!("{}-part{n}", link.display()));
                let _ = std::fs::remove_file(&part);
                std::os::unix::fs::symlink(format!("{dev}p{n}"), &part).unwrap();
            }
            loops.push(dev);
        }
        // the bystander carries data that must survive every test
        sh(&format!("printf 'keel-bystander-%.0s' $(seq 1 4096) | dd of={} conv=notrunc status=none", loops[2]));
        let rig = Rig { dir, loops };
        std::fs::create_dir_all(rig.journals()).unwrap();
        rig
    }

    pub fn journals(&self) -> PathBuf {
        self.dir.path().join("journal")
    }

    /// The recorded tree keel reads the hardware from; rebuilt before each run because the
    /// partitions change.
    pub fn root(&self) -> PathBuf {
        let root = self.dir.path().join("root");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("sys/block")).unwrap();
        std::os::unix::fs::symlink("/proc", root.join("proc")).unwrap();
        let ids = root.join("dev/disk/by-id");
        std::fs::create_dir_all(&ids).unwrap();
        for (dev, serial) in self.loops.iter().zip(SERIALS) {
            let name = dev.trim_start_matches("/dev/");
            let live = Path::new("/sys/block").join(name);
            let rec = root.join("sys/block").join(name);
            std::fs::create_dir_all(&rec).unwrap();
            for entry in std::fs::read_dir(&live).unwrap() {
                let entry = entry.unwrap();
                let n = entry.file_name().to_string_lossy().into_owned();
                if n == "serial" || n == "device" {
                    continue;
                }
                std::os::unix::fs::symlink(entry.path(), rec.join(&n)).unwrap();
            }
            std::fs::write(rec.join("serial"), format!("{serial}\n")).unwrap();
            std::os::unix::fs::symlink(dev, ids.join(format!("keel-test-{serial}"))).unwrap();
        }
        let nic = root.join("sys/class/net/ens3");
        std::fs::create_dir_all(&nic).unwrap();
        std::fs::write(nic.join("address"), "52:54:00:a4:41:01\n").unwrap();
        std::os::unix::fs::symlink("/sys/devices", nic.join("device")).unwrap();
        root
    }

    pub fn profile(&self) -> PathBuf {
        let lab = std::fs::read_to_string(workspace().join("profiles/lab-node-01.toml")).unwrap();
        let text = lab
            .replace("hardware-spec = \"qemu-lab\"\n", "")
            .replace("serials = []", &format!("serials = [\"{}\", \"{}\"]", SERIALS[0], SERIALS[1]));
        let p = self.dir.path().join("loop-node.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn keel(&self, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let root = self.root();
        let profile = self.profile();
        let journals = self.journals();
        let mut args = vec!["install", "--profile", profile.to_str().unwrap(), "--root", root.to_str().unwrap(), "--journal-dir", journals.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = Command::new(env!("CARGO_BIN_EXE_keel")).args(&args).envs(env.iter().copied()).current_dir(workspace()).output().unwrap();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(!run.stderr.contains("panicked"), "keel panicked:\n{}", run.stderr);
        run
    }

    pub fn install(&self, extra: &[&str]) -> Run {
        let confirm = format!("{},{}", SERIALS[0], SERIALS[1]);
        let mut args = vec!["--yes", "--confirm-serials", confirm.as_str(), "--until", UNTIL];
        args.extend_from_slice(extra);
        self.keel(&args, &[])
    }

    /// Partition geometry, types, partition UUIDs and ESP file system UUIDs of A and B.
    pub fn state(&self) -> Vec<String> {
        let mut out = Vec::new();
        for dev in &self.loops[..2] {
            let dump: serde_json::Value = serde_json::from_str(&sh(&format!("sfdisk --json {dev}"))).unwrap();
            for p in dump["partitiontable"]["partitions"].as_array().unwrap() {
                out.push(format!("{} {} {} {} {}", p["node"], p["start"], p["size"], p["type"], p["uuid"]));
            }
            out.push(sh(&format!("blkid -p -o value -s UUID {dev}p1")));
        }
        out
    }

    /// Geometry and types only (what any two correct runs share).
    pub fn layout(&self) -> Vec<String> {
        self.state().iter().map(|l| l.split(' ').take(4).collect::<Vec<_>>().join(" ")).filter(|l| l.contains(' ')).collect()
    }

    pub fn bystander(&self) -> String {
        sh(&format!("dd if={} bs=1M count=1 status=none | sha256sum", self.loops[2]))
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        for (dev, serial) in self.loops.iter().zip(SERIALS) {
            let _ = Command::new("umount").arg(format!("{dev}p1")).output();
            let _ = Command::new("losetup").args(["-d", dev]).output();
            let link = by_id(serial);
            let _ = std::fs::remove_file(&link);
            for n in 1..=4 {
                let _ = std::fs::remove_file(format!("{}-part{n}", link.display()));
            }
        }
    }
}

pub fn by_id(serial: &str) -> PathBuf {
    PathBuf::from(format!("/dev/disk/by-id/keel-test-{serial}"))
}

/// The layout `keel plan` promises, as "node start size type" lines.
pub fn planned_layout(rig: &Rig) -> Vec<String> {
    let root = rig.root();
    let profile = rig.profile();
    let run = keel(&["plan", "--profile", profile.to_str().unwrap(), "--root", root.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let guid = |c: &str| match c {
        "EF00" => "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
        "EF02" => "21686148-6449-6E6F-744E-656564454649",
        _ => "6A898CC3-1DD2-11B2-99A6-080020736631",
    };
    let mut parts: Vec<&serde_json::Value> = plan["layout"]["partitions"].as_array().unwrap().iter().collect();
    parts.sort_by_key(|p| p["number"].as_u64());
    let mut out = Vec::new();
    for dev in &rig.loops[..2] {
        for p in &parts {
            let size = p["last_sector"].as_u64().unwrap() - p["first_sector"].as_u64().unwrap() + 1;
            out.push(format!("\"{dev}p{}\" {} {} \"{}\"", p["number"], p["first_sector"], size, guid(p["type_code"].as_str().unwrap())));
        }
    }
    out
}

pub const REGISTRY_ADMIN: &str = "admin-token-for-the-loop-tests-0123456789";

/// A registry in process on a free loopback port (admin token [`REGISTRY_ADMIN`]); returns its
/// URL, its store and the runtime that serves it.
pub fn registry() -> (String, keel_registry::Store, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap().keep();
    let (url, store) = rt.block_on(async move {
        let store = keel_registry::Store::open(&format!("sqlite:{}", dir.join("registry.db").display())).await.unwrap();
        let state = std::sync::Arc::new(keel_registry::AppState::new(store.clone(), REGISTRY_ADMIN));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, keel_registry::router(state)).await.unwrap() });
        (url, store)
    });
    (url, store, rt)
}
