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
    for want in ["/etc/network/interfaces", "/etc/hosts", "/etc/hostname", "/etc/fstab"] {
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

/// pmxcfs imports a present /etc/corosync/corosync.conf at its first start and then runs in
/// cluster mode (pve-cluster pmxcfs.c): keel writes no corosync file at all, pvecm forms the
/// cluster at the first boot.
#[test]
fn no_corosync_file_is_written() {
    for n in ["pve-node-01", "pve-node-02", "lab-node-01", "lab-node-02"] {
        let path = format!("{}/../profiles/{n}.toml", env!("CARGO_MANIFEST_DIR"));
        let p = Profile::load(std::path::Path::new(&path)).unwrap().profile;
        let mut files = node_files(&p);
        files.extend(super::boot::files(&p, &[]));
        let corosync: Vec<&str> = files.iter().map(|f| f.path.as_str()).filter(|f| f.contains("corosync") || f.starts_with("/etc/pve")).collect();
        assert!(corosync.is_empty(), "{n}: {corosync:?}");
    }
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
    // proxmox-boot-tool profiles get the drive list, GRUB's ZFS defaults and keel-netboot-first
    let seed = std::fs::read_to_string(ws("profiles/pve-node-01.toml")).unwrap().replace("bootloader = \"grub\"", "bootloader = \"proxmox-boot-tool\"");
    let pve = Profile::from_source(&SourceFile::from_text(&ws("profiles/pve-node-01.toml"), seed)).unwrap().profile;
    assert_eq!(pve.os.bootloader, crate::profile::Bootloader::ProxmoxBootTool);
    let paths: Vec<String> = super::boot::files(&pve, &disks).into_iter().map(|f| f.path).collect();
    assert_eq!(paths, [super::boot::BOOT_DISKS, super::boot::GRUB_ZFS_CFG, super::boot::NETBOOT_FIRST]);
}

/// keel-netboot-first against a fake efibootmgr: network entries move to the front in their
/// order, the rest keep theirs; nothing to do and no network entry change nothing.
#[test]
fn netboot_first_puts_network_entries_in_front() {
    use std::os::unix::fs::PermissionsExt;
    let seed = std::fs::read_to_string(ws("profiles/pve-node-01.toml")).unwrap().replace("bootloader = \"grub\"", "bootloader = \"proxmox-boot-tool\"");
    let p = Profile::from_source(&SourceFile::from_text(&ws("profiles/pve-node-01.toml"), seed)).unwrap().profile;
    let files = super::boot::files(&p, &[]);
    let script = files.iter().find(|f| f.path == super::boot::NETBOOT_FIRST).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keel-netboot-first"), &script.content).unwrap();
    let fake = "#!/bin/sh\nif [ \"$1\" = -q ]; then echo \"$3\" >\"$(dirname \"$0\")/set\"; exit 0; fi\ncat \"$(dirname \"$0\")/listing\"\n";
    std::fs::write(dir.path().join("efibootmgr"), fake).unwrap();
    std::fs::set_permissions(dir.path().join("efibootmgr"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = |listing: &str| {
        std::fs::write(dir.path().join("listing"), listing).unwrap();
        let _ = std::fs::remove_file(dir.path().join("set"));
        let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap());
        let out = std::process::Command::new("sh").arg(dir.path().join("keel-netboot-first")).env("PATH", path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read_to_string(dir.path().join("set")).ok().map(|s| s.trim().to_string())
    };
    let after_bootctl = "BootCurrent: 0001\nTimeout: 0 seconds\nBootOrder: 0004,0001,0002,0003\nBoot0001* UEFI PXEv4 (MAC:A8A159410001)\nBoot0002* UEFI PXEv6 (MAC:A8A159410001)\nBoot0003* UEFI: Built-in EFI Shell\nBoot0004* Linux Boot Manager\tHD(1,GPT,...)\n";
    assert_eq!(run(after_bootctl).as_deref(), Some("0001,0002,0004,0003"));
    assert_eq!(run("BootOrder: 0001,0004\nBoot0001* UEFI HTTPv4 (MAC:A8)\nBoot0004* Linux Boot Manager\n"), None, "already first: nothing written");
    assert_eq!(run("BootOrder: 0004,0003\nBoot0003* UEFI: Built-in EFI Shell\nBoot0004* Linux Boot Manager\n"), None, "no network entry: left alone");
}
