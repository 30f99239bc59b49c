use std::path::Path;

use super::*;
use crate::hardware::probe;
use crate::profile::Profile;
use crate::source::SourceFile;

fn root(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn load(rel: &str) -> Profile {
    Profile::load(&root(rel)).unwrap().profile
}

fn spec(rel: &str) -> Spec {
    Spec::load(&SourceFile::read(&root(rel)).unwrap()).unwrap()
}

#[test]
fn seed_plan_names_both_disks_by_serial_and_is_deterministic() {
    let inv = probe(&root("tests/fixtures/ax41-nvme")).unwrap();
    let p = load("profiles/pve-node-01.toml");
    let s = spec("hardware-specs/ax41-nvme.toml");
    let a = build(&inv, &p, Some(&s)).unwrap();
    let b = build(&inv, &p, Some(&s)).unwrap();
    assert_eq!(a.human(), b.human());
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    let serials: Vec<&str> = a.targets.iter().map(|t| t.serial.as_str()).collect();
    assert_eq!(serials, ["S675NX0T100001", "S675NX0T100002"]);
    // every destructive command names a target by-id path, never a kernel name
    for step in a.steps.iter().filter(|s| s.group.destructive()) {
        for c in &step.commands {
            let joined = c.join(" ");
            assert!(!joined.contains("/dev/nvme"), "{joined}");
            if joined.contains("/dev/") {
                assert!(a.targets.iter().any(|t| joined.contains(&t.by_id)), "{joined}");
            }
        }
    }
}

#[test]
fn pools_carry_every_seed_option_on_partition_3() {
    let inv = probe(&root("tests/fixtures/ax41-nvme")).unwrap();
    let plan = build(&inv, &load("profiles/pve-node-01.toml"), None).unwrap();
    let step = plan.steps.iter().find(|s| s.id == "pools.datapool").unwrap();
    let c = step.commands[0].join(" ");
    for opt in ["-o ashift=12", "-O compression=lz4", "-O atime=off", "-O xattr=sa", "-O dnodesize=auto", "-O normalization=formD", "-O mountpoint=none"] {
        assert!(c.contains(opt), "{opt} missing: {c}");
    }
    assert!(c.ends_with("mirror /dev/disk/by-id/nvme-SAMSUNG_MZVL2512HCJQ-00B00_S675NX0T100001-part3 /dev/disk/by-id/nvme-SAMSUNG_MZVL2512HCJQ-00B00_S675NX0T100002-part3"), "{c}");
}

#[test]
fn pinned_serial_missing_is_refused() {
    let inv = probe(&root("tests/fixtures/ax41-nvme")).unwrap();
    let mut p = load("profiles/pve-node-01.toml");
    p.disks.serials = vec!["S675NX0T100001".into(), "NOPE".into()];
    let err = build(&inv, &p, None).unwrap_err().to_string();
    assert!(err.contains("pinned disk serial NOPE"), "{err}");
}

#[test]
fn booted_from_disk_is_never_a_target() {
    let inv = probe(&root("tests/fixtures/ax41-nvme-booted-from-nvme")).unwrap();
    let mut p = load("profiles/pve-node-01.toml");
    let err = build(&inv, &p, None).unwrap_err().to_string();
    assert!(err.contains("0 free NVMe drive(s)"), "{err}");
    p.disks.serials = vec!["S675NX0T100001".into(), "S675NX0T100002".into()];
    let err = build(&inv, &p, None).unwrap_err().to_string();
    assert!(err.contains("is in use") && err.contains("booted from"), "{err}");
}

#[test]
fn wrong_uplink_mac_is_refused_with_what_was_found() {
    let inv = probe(&root("tests/fixtures/ax41-nvme")).unwrap();
    let err = build(&inv, &load("profiles/pve-node-02.toml"), None).unwrap_err().to_string();
    assert!(err.contains("a8:a1:59:41:00:02") && err.contains("enp35s0 a8:a1:59:41:00:01"), "{err}");
}

/// proxmox-boot-tool (an explicit choice): what its `init` runs on this firmware is installed,
/// udev settles between `format` and `init`, efivarfs is in the target on UEFI, stale ESPs are cleaned, GRUB mode gets the ZFS
/// root in /etc/default/grub.d, and on UEFI network boot goes first again after `bootctl`.
#[test]
fn proxmox_boot_tool_gets_what_it_runs_on_each_firmware() {
    let text = std::fs::read_to_string(root("profiles/pve-node-01.toml")).unwrap().replace("bootloader = \"grub\"", "bootloader = \"proxmox-boot-tool\"");
    let p = Profile::from_source(&SourceFile::from_text(&root("profiles/pve-node-01.toml"), text)).unwrap().profile;
    let mut inv = probe(&root("tests/fixtures/ax41-nvme")).unwrap();
    for (firmware, want, not) in [
        (crate::hardware::FirmwareMode::Bios, vec!["grub-pc"], vec!["systemd-boot", "grub-pc-bin"]),
        (crate::hardware::FirmwareMode::Uefi, vec!["systemd-boot", "efibootmgr"], vec!["grub-pc"]),
    ] {
        inv.firmware = firmware;
        let plan = build(&inv, &p, None).unwrap();
        let step = |id: &str| plan.steps.iter().find(|s| s.id == id).unwrap_or_else(|| panic!("no step {id}"));
        let one_pass = step("os.packages").commands.iter().find(|c| c[0] == "mmdebstrap").unwrap().clone();
        let install: Vec<String> = one_pass.iter().find_map(|a| a.strip_prefix("--include=")).unwrap().split(',').map(String::from).collect();
        for w in &want {
            assert!(install.contains(&w.to_string()), "{firmware}: {w} not in {install:?}");
        }
        for n in &not {
            assert!(!install.contains(&n.to_string()), "{firmware}: {n} in {install:?}");
        }
        let lines: Vec<String> = step("boot.loader").commands.iter().map(|c| c.join(" ")).collect();
        let esp = |i: usize| plan.targets[i].part(1);
        let mut expected = Vec::new();
        if firmware == crate::hardware::FirmwareMode::Uefi {
            expected.push("mount -t efivarfs efivarfs /mnt/keel/sys/firmware/efi/efivars".to_string());
        }
        for i in 0..2 {
            expected.push(format!("chroot /mnt/keel proxmox-boot-tool format {} --force", esp(i)));
            expected.push("udevadm settle --timeout=30".to_string());
            expected.push(format!("chroot /mnt/keel proxmox-boot-tool init {}", esp(i)));
        }
        expected.push("chroot /mnt/keel proxmox-boot-tool clean".into());
        expected.push("chroot /mnt/keel proxmox-boot-tool refresh".into());
        if firmware == crate::hardware::FirmwareMode::Uefi {
            expected.push("chroot /mnt/keel /usr/local/sbin/keel-netboot-first".into());
        }
        assert_eq!(lines, expected, "{firmware}");
        let files: Vec<&crate::render::RenderedFile> = plan.steps.iter().flat_map(|s| &s.files).collect();
        let zfs_cfg = files.iter().find(|f| f.path == "/etc/default/grub.d/zfs.cfg").expect("zfs.cfg is written");
        let hostid = format!("spl.spl_hostid=0x{:08x}", crate::render::host_id(&p));
        assert!(zfs_cfg.content.contains(&format!("GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX root=ZFS=rpool/ROOT/pve-1 boot=zfs {hostid} noresume")), "{}", zfs_cfg.content);
        assert!(files.iter().any(|f| f.path == "/usr/local/sbin/keel-netboot-first"));
        let seed = files.iter().find(|f| f.path.ends_with("debconf-selections")).unwrap();
        assert!(seed.content.contains("grub-pc/install_devices_empty boolean true"));
    }
}

/// A subnet prefix copied from Robot into the uplink is refused on a Hetzner spec, with the /32
/// to write; without the spec's point-to-point routing the same profile plans.
#[test]
fn a_subnet_uplink_is_refused_where_the_provider_routes_point_to_point() {
    let inv = probe(&root("tests/fixtures/ax41-nvme")).unwrap();
    let mut p = load("profiles/pve-node-01.toml");
    p.network.uplink.ipv4 = "203.0.113.10/26".parse().unwrap();
    let mut s = spec("hardware-specs/ax41-nvme.toml");
    let e = build(&inv, &p, Some(&s)).unwrap_err().to_string();
    assert!(e.contains("network.uplink.ipv4-address is 203.0.113.10/26") && e.contains("write ipv4-address = \"203.0.113.10/32\""), "{e}");
    s.uplink_point_to_point = false;
    assert!(build(&inv, &p, Some(&s)).is_ok());
}

/// Hetzner swapped drive B for one with another serial: the install (and `keel rebuild`, which
/// runs it) refuses the profile that pins the old serial, and says which drive is new and which
/// line of the profile to change.
#[test]
fn a_pinned_serial_that_is_gone_names_the_new_drive_and_the_line_to_change() {
    let p = crate::profile::tests::seed_with("serials = []", "serials = [\"S675NX0T100001\", \"S675NX0T100002\"]").unwrap();
    let inv = crate::replace::fixtures::swapped();
    let e = build(&inv, &p, None).unwrap_err().to_string();
    let (file, line, _) = p.disks.serials_line.clone().unwrap();
    assert!(file.ends_with("profiles/pve-node-01.toml"), "{file}");
    assert!(e.contains("pinned disk serial S675NX0T100002 (disks.serials) is not in this machine"), "{e}");
    assert!(e.contains(&format!("change {file}:{line} from `serials = [\"S675NX0T100001\", \"S675NX0T100002\"]` to `serials = [\"S675NX0T100001\", \"S675NX0T100009\"]`")), "{e}");
    assert!(e.contains("keel disk replace --new S675NX0T100009"), "{e}");
    // both drives there: no such advice
    let inv = probe(&root("tests/fixtures/ax41-nvme")).unwrap();
    assert!(build(&inv, &p, None).is_ok());
}
