//! The steps of an install, in order. Each names what it writes and how "already done" is
//! recognised; the executor (`exec`) runs them through the `Host` layer.

use super::{Checksum, FileCopy, Group, ImageRef, Layout, Step, TargetDisk, FIRST_BOOT_CREDENTIALS, INSTALLED_CREDENTIALS, INSTALLED_PROFILE, SELF_EXE, TARGET_ROOT};
use crate::hardware::FirmwareMode;
use crate::profile::{Bootloader, Profile};
use crate::image::{BASE_SNAPSHOT, ROOT_DATASET};
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
            copies: Vec::new(),
            checksums: Vec::new(),
        });
        self.steps.last_mut().expect("just pushed")
    }
}

/// Packages added to the minimal base (Essential and apt) besides [`packages`]: init, device
/// handling, locales, CA certificates.
pub const BASE_INCLUDE: &[&str] = &["systemd-sysv", "udev", "kmod", "locales", "ca-certificates"];

/// The snapshot of the root dataset the package step starts from (taken before it, rolled back
/// to whenever the step runs, destroyed with the base snapshot).
pub const BEFORE_PACKAGES_SNAPSHOT: &str = "before-packages";

/// The keyrings mmdebstrap's apt checks the mirrors with: a folder on the install system,
/// filled by the package step (the Debian keyring and the pinned Proxmox key).
const APT_KEYRING_DIR: &str = "/run/keel/apt-keyring";

/// Answers for package questions (postfix: local only), read by debconf-set-selections.
const DEBCONF_SEED: &str = "/var/cache/keel/debconf-selections";

/// What `os.packages` installs: Proxmox VE as its documentation installs it on Debian 12,
/// plus ZFS boot support, and what the boot loader runs: GRUB's binaries for keel's GRUB; for
/// proxmox-boot-tool what its `init` calls on this firmware (GRUB's i386-pc `grub-install` on
/// legacy BIOS, otherwise only a kernel Recommends brings it; `bootctl` on UEFI, in
/// systemd-boot, which proxmox-kernel-helper only Suggests; efibootmgr for the boot order).
pub fn packages(p: &Profile, firmware: FirmwareMode) -> Vec<&'static str> {
    let mut v = vec!["proxmox-default-kernel", "proxmox-ve", "postfix", "open-iscsi", "chrony", "zfsutils-linux",
        "zfs-initramfs", "ifupdown2", "openssh-server", "sudo",
        // what `keel disk replace` runs on the node: sgdisk (also a dependency of Proxmox's
        // libpve-storage-perl), sfdisk, partprobe, mkfs.vfat; a minimal base has none of them
        "gdisk", "fdisk", "parted", "dosfstools"];
    match (p.os.bootloader, firmware) {
        (Bootloader::Grub, _) => v.extend(["grub-pc-bin", "grub-efi-amd64-bin", "grub2-common"]),
        (Bootloader::ProxmoxBootTool, FirmwareMode::Bios) => v.push("grub-pc"),
        (Bootloader::ProxmoxBootTool, FirmwareMode::Uefi) => v.extend(["systemd-boot", "efibootmgr"]),
    }
    // the day-one sections: the firewall's nft, fail2ban with its journal reader (a Recommends
    // of fail2ban; backend = systemd needs it), the node exporter
    if p.firewall.is_some() {
        v.push("nftables");
    }
    if p.fail2ban.is_some() {
        v.extend(["fail2ban", "python3-systemd"]);
    }
    if p.metrics.is_some() {
        v.push("prometheus-node-exporter");
    }
    v
}

/// Files the package step needs: the APT sources (mmdebstrap's apt reads the target's), written
/// before any package. The target's /etc/resolv.conf is not among them: mmdebstrap puts the
/// install system's there while it works; the node's comes with the configuration.
fn for_apt(path: &str) -> bool {
    path.starts_with("/etc/apt/")
}

/// Files an initramfs copies (the udev hook takes /etc/systemd/network/*.link): written before
/// the packages, so the initramfs the kernel package builds is already the node's.
fn for_initramfs(path: &str) -> bool {
    path.starts_with("/etc/modprobe.d/") || (path.starts_with("/etc/systemd/network/") && path.ends_with(".link")) || path == render::RESUME_CONF
}


/// Clears the ZFS labels of a disk outside the targets (`--clear-zfs-labels`): every partition
/// big enough to carry a pool, or the whole disk when it has no partitions. Nothing else.
pub fn clear_labels(d: &TargetDisk) -> Step {
    let mut b = Builder { steps: Vec::new() };
    let s = b.step(&format!("wipe.labels-{}", d.serial.to_lowercase()), Group::Wipe,
        format!("clear the ZFS labels on {} ({}, not a target; --clear-zfs-labels)", d.serial, d.kernel_name),
        "never checked: a label that is gone has nothing to clear");
    s.disks = vec![d.serial.clone()];
    let parts: Vec<String> = d.existing_partitions.iter().filter(|p| p.size_bytes.0 >= 64 * crate::size::MIB).map(|p| d.part(p.number)).collect();
    if parts.is_empty() {
        s.commands.push(cmd(&["zpool", "labelclear", "-f", &d.by_id]));
    }
    for part in parts {
        s.commands.push(cmd(&["zpool", "labelclear", "-f", &part]));
    }
    b.steps.pop().expect("just built")
}

/// Writes the layout's table on a drive. One sgdisk run writes the whole table at once: a
/// fresh, empty GPT (so a re-run after a partial attempt starts clean, and every partition and
/// the disk get new unique GUIDs), then every partition at its exact sectors. Alignment 1 lets
/// p4 use the gap before the first MiB; the others start on MiB boundaries by their sector
/// numbers. The install and `keel disk replace` partition with it.
pub fn partition_command(layout: &Layout, by_id: &str) -> Vec<String> {
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
    c.push(by_id.to_string());
    c
}

/// The node's APT sources (and proxy), the files the package step reads.
fn apt_sources(b: &mut Builder, p: &Profile) {
    let s = b.step("os.apt-sources", Group::Os, "APT sources for Debian and Proxmox VE", "the files match their digests");
    s.files = render::node_files(p).into_iter().filter(|f| for_apt(&f.path)).collect();
}

/// What an initramfs built by the packages may copy, in place before them.
fn boot_identity(b: &mut Builder, p: &Profile) {
    let s = b.step("os.boot-identity", Group::Os,
        "host id, pool cache file, NIC name pinning and RESUME=none into the target, before any initramfs is built",
        "the host id and cache files exist and the .link and resume files match their digests");
    s.files = render::node_files(p).into_iter().filter(|f| for_initramfs(&f.path)).collect();
    s.commands = vec![
        // the rescue system's zgenhostid: the target has no ZFS tools yet
        cmd(&["zgenhostid", "-f", "-o", &format!("{TARGET_ROOT}/etc/hostid"), &format!("0x{:08x}", render::host_id(p))]),
        cmd(&["zpool", "set", "cachefile=/etc/zfs/zpool.cache", "rpool"]),
        cmd(&["zpool", "set", "cachefile=/etc/zfs/zpool.cache", "datapool"]),
        cmd(&["mkdir", "-p", &format!("{TARGET_ROOT}/etc/zfs")]),
        cmd(&["cp", "/etc/zfs/zpool.cache", &format!("{TARGET_ROOT}/etc/zfs/zpool.cache")]),
    ];
}

/// initramfs-tools' command (merged /usr).
const UPDATE_INITRAMFS: &str = "/usr/sbin/update-initramfs";

/// Debian's archive keyring on the install system (debootstrap's and mmdebstrap's default).
const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// The one package pass: mmdebstrap into the mounted root dataset, with the target's own APT
/// sources (written before it; the empty mirror argument adds none), the base and every
/// package of the plan in one apt solve, Recommends as apt installs them on the node, and
/// dpkg's `force-unsafe-io` (no fsync per unpacked file: a power cut in this step is undone
/// by the rollback to the snapshot, and the pools are synced and exported at the end). The
/// options mmdebstrap keeps in the target (`99mmdebstrap`) are removed, so the node's dpkg
/// syncs as usual. Services do not start (mmdebstrap's policy-rc.d while it runs).
fn mmdebstrap(p: &Profile, firmware: FirmwareMode) -> Vec<String> {
    let mut include: Vec<&str> = BASE_INCLUDE.to_vec();
    include.extend(packages(p, firmware));
    let mut c = cmd(&["mmdebstrap", "--mode=root", "--variant=minbase", "--format=directory",
        // the target holds the key, the sources, the boot identity and the mount points
        "--skip=check/empty",
        // keeps the machine id, logs and caches an install leaves (as on a node built by apt)
        "--skip=cleanup/reproducible",
        // merged /usr as debootstrap makes it for Debian 12 (the symlinks, then usr-is-merged);
        // without it the base's usr-is-merged refuses to install
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr"]);
    c.push(format!("--keyring={APT_KEYRING_DIR}"));
    c.extend(["--aptopt=Apt::Install-Recommends \"true\"", "--dpkgopt=force-unsafe-io", "--dpkgopt=force-confdef", "--dpkgopt=force-confold"].map(String::from));
    c.push(format!("--include={}", include.join(",")));
    c.push(format!("--essential-hook=chroot \"$1\" debconf-set-selections {DEBCONF_SEED}"));
    // The initramfs is built once, at the end, as the Proxmox VE installer does (pve-installer
    // Proxmox/Install.pm: update-initramfs diverted to /bin/true while the packages install,
    // then `update-initramfs -c`): the kernel's postinst and the zfs-initramfs and
    // initramfs-tools triggers would each build it (minutes each under emulation)
    c.push(format!("--essential-hook=chroot \"$1\" dpkg-divert --quiet --local --rename --add {UPDATE_INITRAMFS} && ln -s /bin/true \"$1\"{UPDATE_INITRAMFS}"));
    // Proxmox's own kernel replaces Debian's; os-prober would list other systems' disks
    c.push("--customize-hook=chroot \"$1\" dpkg --purge linux-image-amd64 os-prober".into());
    c.push(format!("--customize-hook=rm \"$1\"{UPDATE_INITRAMFS} && chroot \"$1\" dpkg-divert --quiet --local --rename --remove {UPDATE_INITRAMFS}"));
    c.push("--customize-hook=chroot \"$1\" update-initramfs -c -k all".into());
    c.push("--customize-hook=rm -f \"$1\"/etc/dpkg/dpkg.cfg.d/99mmdebstrap \"$1\"/etc/apt/apt.conf.d/99mmdebstrap".into());
    c.extend([p.os.suite.clone(), TARGET_ROOT.to_string(), String::new()]);
    c
}

pub fn all(p: &Profile, targets: &[TargetDisk], layout: &Layout, image: Option<&ImageRef>, firmware: FirmwareMode) -> Vec<Step> {
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
        s.commands.push(partition_command(layout, &t.by_id));
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
    for &(pool, n) in super::POOLS {
        let s = b.step(&format!("pools.{pool}"), Group::Pools,
            format!("create {pool} (mirror of partition {n} on every drive)"),
            format!("`zpool list {pool}` succeeds with the same member partitions (imported if exported)"));
        s.disks = serials.clone();
        let mut c = cmd(&["zpool", "create", "-f", "-o", &format!("ashift={}", p.zfs.ashift), "-o", &format!("compatibility={}", p.zfs.compatibility)]);
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
    let root_props = ["canmount=noauto", "mountpoint=/", "acltype=posixacl"];
    let mount_root = [cmd(&["zfs", "mount", ROOT_DATASET]), cmd(&["zpool", "set", &format!("bootfs={ROOT_DATASET}"), "rpool"])];
    if image.is_some() {
        // the root file system itself comes with the image (os.image)
        let s = b.step("datasets.root", Group::Datasets, "rpool/ROOT, the parent of the root file system the image brings",
            "rpool/ROOT exists");
        s.commands = vec![cmd(&["zfs", "create", "-o", "canmount=off", "-o", "mountpoint=none", "rpool/ROOT"])];
    } else {
        let s = b.step("datasets.root", Group::Datasets, "root file system rpool/ROOT/pve-1, boot file system set",
            "the datasets exist and bootfs is rpool/ROOT/pve-1");
        let mut create = cmd(&["zfs", "create"]);
        for prop in root_props {
            create.extend(["-o".to_string(), prop.to_string()]);
        }
        create.push(ROOT_DATASET.into());
        s.commands = vec![cmd(&["zfs", "create", "-o", "canmount=off", "-o", "mountpoint=none", "rpool/ROOT"]), create];
        s.commands.extend(mount_root.iter().cloned());
    }
    // With an image, the root file system comes now: mounted before anything else is mounted
    // under the target root (the datapool datasets), as the network install mounts its own.
    if let Some(img) = image {
        let m = &img.manifest;
        let s = b.step("os.image", Group::Os,
            format!("receive the root image {} ({} bytes, Debian {}, built on {}) into {ROOT_DATASET}, streaming; SHA-256 checked", m.name, m.size, m.debian_version, m.profile_hostname),
            format!("{} exists with the manifest's GUID {} (a received image is not fetched again)", m.received_snapshot(), m.snapshot_guid));
        s.disks = serials.clone();
        for prop in root_props {
            s.commands.push(cmd(&["zfs", "set", prop, ROOT_DATASET]));
        }
        s.commands.extend(mount_root.iter().cloned());
    }
    let swap = p.disks.swap_size.exact().trim_end_matches("iB").to_string();
    let s = b.step("datasets.swap", Group::Datasets, format!("swap zvol rpool/swap ({})", p.disks.swap_size.exact()),
        "rpool/swap exists with the planned volsize and carries a swap signature");
    s.commands = vec![
        cmd(&["zfs", "create", "-V", &swap, "-b", "4096", "-o", "compression=zle", "-o", "logbias=throughput",
            "-o", "sync=always", "-o", "primarycache=metadata", "-o", "secondarycache=none",
            "-o", "com.sun:auto-snapshot=false", "rpool/swap"]),
        // ZFS makes the zvol's device node asynchronously: mkswap right after `zfs create` can
        // find no /dev/zvol/rpool/swap yet (seen in the lab with the plain-script bench)
        cmd(&["udevadm", "wait", "--timeout=30", "/dev/zvol/rpool/swap"]),
        cmd(&["mkswap", "-f", "-L", "swap", "/dev/zvol/rpool/swap"]),
    ];
    let s = b.step("datasets.datapool", Group::Datasets,
        format!("datapool datasets: {}", p.zfs.datapool_datasets.join(", ")), "every dataset exists");
    for ds in &p.zfs.datapool_datasets {
        s.commands.push(cmd(&["zfs", "create", "-o", &format!("mountpoint=/datapool/{ds}"), &format!("datapool/{ds}")]));
    }

    // --- OS: Debian 12 + Proxmox VE from the network in one package pass (with an image:
    // os.image, above)
    if image.is_none() {
        let key_path = format!("{TARGET_ROOT}{}", p.os.pve_key_path());
        let s = b.step("os.pve-key", Group::Os, "fetch the Proxmox release key and check it against the pinned SHA-512",
            "the key file is there and its SHA-512 equals os.pve-key-sha512 (a mismatch stops the install before any package is installed)");
        s.commands = vec![
            cmd(&["mkdir", "-p", &format!("{TARGET_ROOT}/etc/apt/trusted.gpg.d")]),
            cmd(&["curl", "--fail", "--silent", "--show-error", "--location", "--retry", "3", "--output", &key_path, &p.os.pve_key_url()]),
        ];
        s.checksums = vec![Checksum { path: key_path.clone(), sha512: p.os.pve_key_sha512(), source: p.os.pve_key_url() }];
        apt_sources(&mut b, p);
        boot_identity(&mut b, p);
        let snapshot = format!("{ROOT_DATASET}@{BEFORE_PACKAGES_SNAPSHOT}");
        let s = b.step("os.before-packages", Group::Os,
            format!("snapshot {snapshot}: what the package step starts from (and is rolled back to when it runs again)"),
            format!("{snapshot} exists"));
        s.files = vec![render::file(DEBCONF_SEED, 0o644, render::debconf_seed(p))];
        s.commands = vec![cmd(&["zfs", "snapshot", &snapshot])];
        let s = b.step("os.packages", Group::Os,
            format!("Debian {} and Proxmox VE in one pass (mmdebstrap: one apt solve, parallel downloads, dpkg without fsync): its kernel, ZFS boot support, postfix (local only), open-iscsi, chrony; Debian's kernel and os-prober removed", p.os.suite),
            "dpkg reports every package installed; a run that did not finish is rolled back to the snapshot first, never continued");
        s.disks = serials.clone();
        s.commands = vec![
            // a power cut or a failure in this step leaves a half-configured dpkg database:
            // every run starts from the snapshot (on the first run that is a no-op)
            cmd(&["zfs", "rollback", "-r", &snapshot]),
            cmd(&["mkdir", "-p", APT_KEYRING_DIR]),
            cmd(&["cp", p.os.debian_keyring.as_deref().unwrap_or(DEBIAN_KEYRING), &format!("{APT_KEYRING_DIR}/")]),
            cmd(&["cp", &key_path, &format!("{APT_KEYRING_DIR}/")]),
            mmdebstrap(p, firmware),
        ];
    }
    // /run as the Proxmox VE installer binds it (pve-installer Proxmox/Install.pm): lsblk in
    // the target reads UUID and partition types from the udev database in /run/udev (after the
    // package step: mmdebstrap mounts what it needs itself)
    let s = b.step("os.chroot", Group::Os, "bind /dev, /proc, /sys and /run into the target for the steps that run inside it",
        "each is a mount point under the target (re-bound after a reboot of the rescue system)");
    for fs in ["dev", "proc", "sys", "run"] {
        s.commands.push(cmd(&["mount", "--make-private", "--rbind", &format!("/{fs}"), &format!("{TARGET_ROOT}/{fs}")]));
    }
    if image.is_none() {
        // The image point: the OS without anything of this node (SSH host keys made again
        // right after); `keel image build` sends this snapshot.
        let s = b.step("os.base-snapshot", Group::Os,
            format!("snapshot {ROOT_DATASET}@{BASE_SNAPSHOT} without SSH host keys (what `keel image build` sends), then this node's host keys"),
            format!("{ROOT_DATASET}@{BASE_SNAPSHOT} exists"));
        s.commands = vec![
            cmd(&["find", &format!("{TARGET_ROOT}/etc/ssh"), "-maxdepth", "1", "-name", "ssh_host_*", "-delete"]),
            cmd(&["zfs", "destroy", &format!("{ROOT_DATASET}@{BEFORE_PACKAGES_SNAPSHOT}")]),
            cmd(&["zfs", "snapshot", &format!("{ROOT_DATASET}@{BASE_SNAPSHOT}")]),
            chroot(&["ssh-keygen", "-A"]),
        ];
    } else {
        apt_sources(&mut b, p);
        let s = b.step("os.identity", Group::Os,
            "this node's own identity in place of the image's: new machine id, new SSH host keys, its mail name; the image's host id removed",
            "never checked: runs until the journal records it");
        let fqdn = format!("{}.{}", p.node.hostname, p.node.domain);
        s.files = vec![render::file("/etc/mailname", 0o644, format!("{fqdn}\n"))];
        s.commands = vec![
            cmd(&["rm", "-f", &format!("{TARGET_ROOT}/etc/machine-id"), &format!("{TARGET_ROOT}/etc/hostid")]),
            chroot(&["systemd-machine-id-setup"]),
            chroot(&["ssh-keygen", "-A"]),
            // postfix as its package configures a local-only mailer, for this node's name
            chroot(&["postconf", "-e", &format!("myhostname={fqdn}"), &format!("mydestination=$myhostname, {}, localhost.localdomain, localhost", p.node.hostname)]),
        ];
        boot_identity(&mut b, p);
    }

    // --- configuration
    let s = b.step("config.system", Group::Config, "time zone, users", "the users exist");
    s.commands = vec![chroot(&["ln", "-sf", &format!("/usr/share/zoneinfo/{}", p.node.timezone), "/etc/localtime"])];
    for u in &p.users {
        let mut c = chroot(&["useradd", "--create-home", "--shell", "/bin/bash"]);
        if u.sudo {
            c.extend(["--groups".into(), "sudo".into()]);
        }
        c.push(u.name.clone());
        s.commands.push(c);
    }
    let s = b.step("config.files", Group::Config,
        "network, corosync, hosts, sshd, SSH keys, name pinning, boot sync, firewall, fail2ban, metrics, the profile; rpcbind masked", "every file matches its digest");
    s.files = render::node_files(p).into_iter().filter(|f| !for_apt(&f.path) && !for_initramfs(&f.path)).collect();
    s.files.extend(render::boot::files(p, &targets.iter().map(|t| t.by_id.clone()).collect::<Vec<_>>()));
    s.files.push(render::file("/etc/timezone", 0o644, format!("{}\n", p.node.timezone)));
    s.copies.push(FileCopy { from: p.path.clone(), to: INSTALLED_PROFILE.into(), mode: 0o600 });
    s.copies.push(FileCopy { from: SELF_EXE.into(), to: "/usr/local/sbin/keel".into(), mode: 0o755 });
    s.commands.push(chroot(&["systemctl", "enable", render::FIRST_BOOT_UNIT]));
    let units = render::units_enabled(p);
    if !units.is_empty() {
        let mut c = chroot(&["systemctl", "enable"]);
        c.extend(units.iter().map(|u| u.to_string()));
        s.commands.push(c);
    }
    if !p.services.rpcbind {
        let mut c = chroot(&["systemctl", "mask"]);
        c.extend(render::RPCBIND_UNITS.iter().map(|u| u.to_string()));
        s.commands.push(c);
    }
    for u in &p.users {
        s.commands.push(chroot(&["chown", "-R", &format!("{0}:{0}", u.name), &format!("/home/{}/.ssh", u.name)]));
    }

    // --- boot: both drives bootable
    // Nothing of this node has to be inside the initramfs: the host id and `noresume` come from
    // the kernel command line, OpenZFS's initramfs script imports rpool by scanning the disks
    // first (its cache file is only the fallback), and the NIC names are set by the real
    // root's udev from the .link files. So the image's initramfs boots this node as received.
    let s = b.step("boot.zfs", Group::Boot, "every initramfs can import the ZFS root (rebuilt only if it cannot)",
        "every /boot/initrd.img-* holds OpenZFS's initramfs script and module, and no other pool named rpool is importable (then the node's cache file must be inside)");
    s.commands = vec![chroot(&["update-initramfs", "-u", "-k", "all"])];
    let s = b.step("boot.loader", Group::Boot, match p.os.bootloader {
        Bootloader::ProxmoxBootTool => "proxmox-boot-tool on every ESP (boots from either drive)".to_string(),
        Bootloader::Grub => "GRUB on every drive, kernels on every ESP (boots from either drive)".to_string(),
    }, "every ESP / drive carries the boot loader for the installed kernel");
    s.disks = serials.clone();
    match p.os.bootloader {
        Bootloader::ProxmoxBootTool => {
            // UEFI: `bootctl install` (run by `init`) writes NVRAM boot entries, through
            // efivarfs; the target's /sys has it only if the rescue system mounted it (a
            // lab run of upstream's tool: "Failed to create EFI Boot variable entry", exit 1),
            // so it is mounted as pve-installer does (Proxmox/Install.pm 1103-1106); the mount
            // is skipped when the bound /sys has it already
            if firmware == FirmwareMode::Uefi {
                s.commands.push(cmd(&["mount", "-t", "efivarfs", "efivarfs", &format!("{TARGET_ROOT}/sys/firmware/efi/efivars")]));
            }
            // `init` reads UUID, FSTYPE and PARTTYPE through lsblk from the udev database
            // (/run/udev, bound by os.chroot): udev must have seen the new file system first
            for part in parts(1) {
                s.commands.push(chroot(&["proxmox-boot-tool", "format", &part, "--force"]));
                s.commands.push(cmd(&["udevadm", "settle", "--timeout=30"]));
                s.commands.push(chroot(&["proxmox-boot-tool", "init", &part]));
            }
            // a re-run formats again (new UUIDs): the old ones leave the synced list
            s.commands.push(chroot(&["proxmox-boot-tool", "clean"]));
            s.commands.push(chroot(&["proxmox-boot-tool", "refresh"]));
            if firmware == FirmwareMode::Uefi {
                s.commands.push(chroot(&[render::boot::NETBOOT_FIRST]));
            }
        }
        Bootloader::Grub => {
            s.commands.push(chroot(&[render::boot::SYNC_SCRIPT, "install"]));
        }
    }

    // --- verify and finish
    b.step("verify.target", Group::Verify,
        "keel verify on the mounted target: pools, properties, datasets, boot loaders on every drive, files",
        "never skipped: runs every time");
    let s = b.step("finish.report", Group::Finish,
        "record the SSH host keys and the pool state for the report; the first-boot unit's registry credentials",
        "never skipped: runs every time");
    s.copies.push(FileCopy { from: FIRST_BOOT_CREDENTIALS.into(), to: INSTALLED_CREDENTIALS.into(), mode: 0o600 });
    let s = b.step("finish.export", Group::Finish, "unmount the target and export both pools cleanly",
        "neither pool is imported");
    s.commands = vec![
        cmd(&["sync"]),
        cmd(&["umount", "--recursive", TARGET_ROOT]),
        cmd(&["zpool", "export", "datapool"]),
        cmd(&["zpool", "export", "rpool"]),
    ];
    b.steps
}
