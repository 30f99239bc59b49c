//! The steps of an install, in order. Each names what it writes and how "already done" is
//! recognised; the executor (`exec`) runs them through the `Host` layer.

use super::{Group, Layout, Step, TargetDisk, TARGET_ROOT};
use crate::hardware::{FirmwareMode, Inventory};
use crate::profile::{Bootloader, Profile};
use crate::render;

fn cmd(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A command run inside the target root.
fn chroot(args: &[&str]) -> Vec<String> {
    let mut v = cmd(&["chroot", TARGET_ROOT]);
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

struct Builder {
    steps: Vec<Step>,
}

impl Builder {
    fn step(&mut self, id: &str, group: Group, title: impl Into<String>, done_when: impl Into<String>) -> &mut Step {
        self.steps.push(Step {
            id: id.to_string(),
            group,
            title: title.into(),
            done_when: done_when.into(),
            disks: Vec::new(),
            commands: Vec::new(),
            files: Vec::new(),
        });
        self.steps.last_mut().expect("just pushed")
    }
}

pub fn all(p: &Profile, targets: &[TargetDisk], layout: &Layout, inv: &Inventory) -> Vec<Step> {
    let mut b = Builder { steps: Vec::new() };
    let serials: Vec<String> = targets.iter().map(|t| t.serial.clone()).collect();
    let parts = |n: u32| targets.iter().map(|t| t.part(n)).collect::<Vec<_>>();

    // --- preflight: everything cheap that can fail, before a disk is touched
    let s = b.step("preflight.targets", Group::Preflight,
        "target disks present by serial, not mounted, not swap, not held, not booted from; existing content listed",
        "never skipped: keel re-checks on every run");
    s.disks = serials.clone();
    let s = b.step("preflight.tools", Group::Preflight, "required tools present (versions recorded)", "never skipped");
    s.commands = vec![cmd(&["sgdisk", "--version"]), cmd(&["wipefs", "--version"]), cmd(&["zpool", "version"])];
    let s = b.step("preflight.zfs-module", Group::Preflight, "ZFS kernel module loaded", "/sys/module/zfs exists");
    s.commands = vec![cmd(&["modprobe", "zfs"])];

    // --- wipe: only the named serials
    for t in targets {
        let s = b.step(&format!("wipe.disk-{}", t.label.to_lowercase()), Group::Wipe,
            format!("clear ZFS labels, signatures and the partition table of disk {} ({})", t.label, t.serial),
            "the disk has no partition table and no signatures (wipefs --no-act prints nothing)");
        s.disks = vec![t.serial.clone()];
        for part in &t.existing_partitions {
            let path = t.part(part.number);
            // A ZFS vdev is at least 64 MiB: smaller partitions cannot carry a pool label.
            if part.size_bytes.0 >= 64 * crate::size::MIB {
                s.commands.push(cmd(&["zpool", "labelclear", "-f", &path]));
            }
            s.commands.push(cmd(&["wipefs", "--all", "--force", &path]));
        }
        s.commands.push(cmd(&["wipefs", "--all", "--force", &t.by_id]));
        s.commands.push(cmd(&["sgdisk", "--zap-all", &t.by_id]));
    }

    // --- partition: identical tables on every drive
    for t in targets {
        let s = b.step(&format!("partition.disk-{}", t.label.to_lowercase()), Group::Partition,
            format!("partition disk {} ({})", t.label, t.serial),
            "the GPT matches the layout exactly (sgdisk --print)");
        s.disks = vec![t.serial.clone()];
        // One sgdisk run writes the whole table at once: a fresh, empty GPT (so a re-run after
        // a partial attempt starts clean), then every partition at its exact sectors.
        // Alignment 1 lets p4 use the gap before the first MiB; the others start on MiB
        // boundaries by their sector numbers.
        let mut c = cmd(&["sgdisk", "--clear"]);
        if layout.partitions.iter().any(|p| p.first_sector % (crate::size::MIB / layout.logical_block_size as u64) != 0) {
            c.push("--set-alignment=1".into());
        }
        for part in &layout.partitions {
            let n = part.number;
            c.extend([
                format!("--new={n}:{}:{}", part.first_sector, part.last_sector),
                format!("--typecode={n}:{}", part.type_code),
                format!("--change-name={n}:{}", part.name),
            ]);
        }
        c.push(t.by_id.clone());
        s.commands.push(c);
    }
    let s = b.step("partition.settle", Group::Partition, "kernel re-reads the tables; by-id partition links appear",
        "every -partN link of the layout exists");
    s.disks = serials.clone();
    for t in targets {
        s.commands.push(cmd(&["partprobe", &t.by_id]));
    }
    s.commands.push(cmd(&["udevadm", "settle", "--timeout=30"]));
    let s = b.step("partition.format-esp", Group::Partition, "format the EFI system partitions (vfat)",
        "blkid reports TYPE=vfat on every ESP");
    s.disks = serials.clone();
    for (t, part) in targets.iter().zip(parts(1)) {
        s.commands.push(cmd(&["mkfs.vfat", "-F", "32", "-n", &format!("ESP-{}", t.label), &part]));
    }

    // --- pools: the seed's options, on by-id partitions, under the target root
    for (pool, n) in [("rpool", 2u32), ("datapool", 3)] {
        let s = b.step(&format!("pools.{pool}"), Group::Pools,
            format!("create {pool} (mirror of partition {n} on every drive)"),
            format!("`zpool list {pool}` succeeds with the same member partitions (imported if exported)"));
        s.disks = serials.clone();
        let mut c = cmd(&["zpool", "create", "-f", "-o", &format!("ashift={}", p.zfs.ashift)]);
        for (k, v) in p.zfs.fs_properties() {
            c.push("-O".into());
            c.push(format!("{k}={v}"));
        }
        c.extend(["-R".into(), TARGET_ROOT.into(), pool.into()]);
        if targets.len() > 1 {
            c.push("mirror".into());
        }
        c.extend(parts(n));
        s.commands.push(c);
    }

    // --- datasets
    let s = b.step("datasets.root", Group::Datasets, "root file system rpool/ROOT/pve-1, boot file system set",
        "the datasets exist and bootfs is rpool/ROOT/pve-1");
    s.commands = vec![
        cmd(&["zfs", "create", "-o", "canmount=off", "-o", "mountpoint=none", "rpool/ROOT"]),
        cmd(&["zfs", "create", "-o", "canmount=noauto", "-o", "mountpoint=/", "-o", "acltype=posixacl", "rpool/ROOT/pve-1"]),
        cmd(&["zfs", "mount", "rpool/ROOT/pve-1"]),
        cmd(&["zpool", "set", "bootfs=rpool/ROOT/pve-1", "rpool"]),
    ];
    let swap = p.disks.swap_size.exact().trim_end_matches("iB").to_string();
    let s = b.step("datasets.swap", Group::Datasets, format!("swap zvol rpool/swap ({})", p.disks.swap_size.exact()),
        "rpool/swap exists with the planned volsize and carries a swap signature");
    s.commands = vec![
        cmd(&["zfs", "create", "-V", &swap, "-b", "4096", "-o", "compression=zle", "-o", "logbias=throughput",
            "-o", "sync=always", "-o", "primarycache=metadata", "-o", "secondarycache=none",
            "-o", "com.sun:auto-snapshot=false", "rpool/swap"]),
        cmd(&["mkswap", "-f", "-L", "swap", "/dev/zvol/rpool/swap"]),
    ];
    let s = b.step("datasets.datapool", Group::Datasets,
        format!("datapool datasets: {}", p.zfs.datapool_datasets.join(", ")), "every dataset exists");
    for ds in &p.zfs.datapool_datasets {
        s.commands.push(cmd(&["zfs", "create", "-o", &format!("mountpoint=/datapool/{ds}"), &format!("datapool/{ds}")]));
    }

    // --- OS: Debian 12 + Proxmox VE
    let s = b.step("os.debootstrap", Group::Os, format!("Debian {} base system into rpool/ROOT/pve-1", p.os.suite),
        "the target has /etc/debian_version and a working dpkg database");
    s.commands = vec![cmd(&[
        "debootstrap", "--arch=amd64", "--components=main,contrib", "--include=locales,zfsutils-linux,zfs-initramfs,openssh-server,ifupdown2,gnupg,curl,ca-certificates",
        &p.os.suite, TARGET_ROOT, &p.os.debian_mirror,
    ])];
    let s = b.step("os.apt-sources", Group::Os, "APT sources for Debian and Proxmox VE, Proxmox release key",
        "the files match their digests");
    s.files = render::node_files(p).into_iter().filter(|f| f.path.starts_with("/etc/apt/")).collect();
    s.commands = vec![cmd(&[
        "curl", "-fsSLo", &format!("{TARGET_ROOT}/etc/apt/trusted.gpg.d/proxmox-release-{}.gpg", p.os.suite),
        &format!("https://enterprise.proxmox.com/debian/proxmox-release-{}.gpg", p.os.suite),
    ])];
    let s = b.step("os.proxmox-ve", Group::Os, "Proxmox VE packages; Debian's kernel and os-prober removed",
        "dpkg reports proxmox-ve installed");
    let mut install = chroot(&["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y",
        "proxmox-default-kernel", "proxmox-ve", "postfix", "open-iscsi", "chrony", "zfs-initramfs"]);
    if p.os.bootloader == Bootloader::Grub {
        install.push(if inv.firmware == FirmwareMode::Uefi { "grub-efi-amd64".into() } else { "grub-pc".into() });
    }
    s.commands = vec![
        chroot(&["apt-get", "update"]),
        install,
        chroot(&["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "remove", "-y", "linux-image-amd64", "os-prober"]),
    ];

    // --- configuration files
    let s = b.step("config.files", Group::Config,
        "network, corosync, hosts, sshd, SSH keys, name pinning", "every file matches its digest");
    s.files = render::node_files(p).into_iter().filter(|f| !f.path.starts_with("/etc/apt/")).collect();
    let s = b.step("config.system", Group::Config, "time zone, host id, users", "host id and users exist");
    s.commands = vec![
        chroot(&["ln", "-sf", &format!("/usr/share/zoneinfo/{}", p.node.timezone), "/etc/localtime"]),
        chroot(&["zgenhostid", "-f"]),
    ];
    for u in &p.users {
        let mut c = chroot(&["useradd", "--create-home", "--shell", "/bin/bash"]);
        if u.sudo {
            c.extend(["--groups".into(), "sudo".into()]);
        }
        c.push(u.name.clone());
        s.commands.push(c);
        s.commands.push(chroot(&["chown", "-R", &format!("{0}:{0}", u.name), &format!("/home/{}/.ssh", u.name)]));
    }

    // --- boot: both drives bootable
    let s = b.step("boot.loader", Group::Boot, match p.os.bootloader {
        Bootloader::ProxmoxBootTool => "proxmox-boot-tool on every ESP (boots from either drive)".to_string(),
        Bootloader::Grub => "GRUB on every drive (boots from either drive)".to_string(),
    }, "every ESP / drive carries the boot loader for the installed kernel");
    s.disks = serials.clone();
    match p.os.bootloader {
        Bootloader::ProxmoxBootTool => {
            for part in parts(1) {
                s.commands.push(chroot(&["proxmox-boot-tool", "format", &part, "--force"]));
                s.commands.push(chroot(&["proxmox-boot-tool", "init", &part]));
            }
            s.commands.push(chroot(&["proxmox-boot-tool", "refresh"]));
        }
        Bootloader::Grub => {
            for t in targets {
                s.commands.push(chroot(&["grub-install", &t.by_id]));
            }
            s.commands.push(chroot(&["update-grub"]));
        }
    }
    s.commands.push(chroot(&["update-initramfs", "-u", "-k", "all"]));

    // --- verify and finish
    let s = b.step("verify.pools", Group::Verify, "pools ONLINE and mirrored, seed properties set", "never skipped");
    s.commands = vec![
        cmd(&["zpool", "status", "-x", "rpool", "datapool"]),
        cmd(&["zfs", "get", "-H", "-p", "-o", "name,property,value", "compression,atime,xattr,dnodesize,normalization", "rpool", "datapool"]),
    ];
    let s = b.step("finish.export", Group::Finish, "unmount the target and export both pools cleanly",
        "neither pool is imported");
    s.commands = vec![
        cmd(&["umount", "--recursive", TARGET_ROOT]),
        cmd(&["zpool", "export", "datapool"]),
        cmd(&["zpool", "export", "rpool"]),
    ];
    if let Some(r) = &p.registry {
        let s = b.step("finish.report", Group::Finish, format!("send the final report to the registry {}", r.url),
            "the registry acknowledged the report");
        s.commands = vec![];
    }
    b.steps
}
