use super::*;
use crate::profile::Profile;
use crate::source::SourceFile;

fn ws(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn seed() -> Profile {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles/pve-node-01.toml");
    Profile::load(std::path::Path::new(path)).expect("seed profile is valid").profile
}

#[test]
fn files_are_deterministic_and_complete() {
    let p = seed();
    let a = node_files(&p);
    let b = node_files(&p);
    assert_eq!(a.iter().map(|f| &f.content).collect::<Vec<_>>(), b.iter().map(|f| &f.content).collect::<Vec<_>>());
    let paths: Vec<&str> = a.iter().map(|f| f.path.as_str()).collect();
    for want in ["/etc/network/interfaces", "/etc/corosync/corosync.conf", "/etc/hosts", "/etc/hostname"] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
}

#[test]
fn second_nic_variant_pins_nic1() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles/pve-node-01.toml");
    let text = std::fs::read_to_string(path).unwrap().replace("vswitch-vlan = 4000\nmtu = 1400", "nic-mac = \"a8:a1:59:41:00:99\"\nmtu = 1500");
    let p = Profile::from_source(&SourceFile::from_text("two-nic.toml", text)).unwrap().profile;
    let files = node_files(&p);
    let link = files.iter().find(|f| f.path.ends_with("10-keel-nic1.link")).expect("nic1 link file");
    assert!(link.content.contains("MACAddress=a8:a1:59:41:00:99"));
    let ifaces = &files.iter().find(|f| f.path == "/etc/network/interfaces").unwrap().content;
    assert!(ifaces.contains("bridge-ports nic1"), "{ifaces}");
    assert!(!ifaces.contains("nic0.4000"));
}

#[test]
fn corosync_conf_is_identical_on_both_nodes() {
    let load = |n: &str| {
        let path = format!("{}/../profiles/{n}.toml", env!("CARGO_MANIFEST_DIR"));
        Profile::load(std::path::Path::new(&path)).unwrap().profile
    };
    let conf = |p: &Profile| node_files(p).into_iter().find(|f| f.path == "/etc/corosync/corosync.conf").unwrap().content;
    assert_eq!(conf(&load("pve-node-01")), conf(&load("pve-node-02")));
}

#[test]
fn boot_sync_script_is_valid_shell_and_lists_the_drives() {
    let p = Profile::load(&ws("profiles/lab-node-01.toml")).unwrap().profile;
    let disks = ["/dev/disk/by-id/nvme-A_1".to_string(), "/dev/disk/by-id/nvme-B_2".to_string()];
    let files = super::boot::files(&p, &disks);
    let list = files.iter().find(|f| f.path == super::boot::BOOT_DISKS).unwrap();
    assert!(list.content.ends_with("/dev/disk/by-id/nvme-A_1\n/dev/disk/by-id/nvme-B_2\n"), "{}", list.content);
    for f in files.iter().filter(|f| f.content.starts_with("#!/bin/sh")) {
        let dir = std::env::temp_dir().join(format!("keel-sh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("script");
        std::fs::write(&script, &f.content).unwrap();
        let out = std::process::Command::new("sh").arg("-n").arg(&script).output().unwrap();
        assert!(out.status.success(), "{}: {}", f.path, String::from_utf8_lossy(&out.stderr));
    }
    // proxmox-boot-tool profiles get the drive list only
    let seed = std::fs::read_to_string(ws("profiles/pve-node-01.toml")).unwrap().replace("bootloader = \"grub\"", "bootloader = \"proxmox-boot-tool\"");
    let pve = Profile::from_source_without_files(&SourceFile::from_text(&ws("profiles/pve-node-01.toml"), seed)).unwrap().profile;
    assert_eq!(pve.os.bootloader, crate::profile::Bootloader::ProxmoxBootTool);
    assert_eq!(super::boot::files(&pve, &disks).len(), 1);
}
