//! Renderers of the files an install writes on the node. Pure: profile in, text out. The same
//! functions serve `keel render`, `keel plan` (which lists each file with its digest) and the
//! installer.

mod apt;
pub mod boot;
pub mod corosync;
pub mod fail2ban;
pub mod firewall;
mod hosts;
mod interfaces;
pub mod metrics;
mod sshd;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::profile::{ClusterLink, Profile};

/// Names the installed system gives its NICs, pinned by MAC with systemd `.link` files, so the
/// interfaces file never depends on kernel names that can change (`enp35s0` vs `eno1`).
pub const UPLINK_IFNAME: &str = "nic0";
pub const CLUSTER_NIC_IFNAME: &str = "nic1";

#[derive(Debug, Clone, Serialize)]
pub struct RenderedFile {
    /// Absolute path on the installed node.
    pub path: String,
    pub mode: u32,
    #[serde(skip)]
    pub content: String,
    pub sha256: String,
}

/// A rendered file (digest computed).
pub fn file(path: &str, mode: u32, content: String) -> RenderedFile {
    RenderedFile::new(path, mode, content)
}

/// Answers for package questions during the install (postfix delivers locally only).
pub fn debconf_seed(p: &Profile) -> String {
    let mut s = format!(
        "postfix postfix/main_mailer_type select Local only\npostfix postfix/mailname string {}.{}\n",
        p.node.hostname, p.node.domain
    );
    if p.os.bootloader == crate::profile::Bootloader::ProxmoxBootTool {
        // grub-pc (legacy BIOS) installs onto no drive itself: proxmox-boot-tool puts GRUB on
        // every ESP's drive
        s.push_str("grub-pc grub-pc/install_devices multiselect \ngrub-pc grub-pc/install_devices_empty boolean true\n");
    }
    s
}

/// The kernel command line: the ZFS root, then the profile's extra arguments.
pub fn kernel_cmdline(p: &Profile) -> String {
    // the node's host id for OpenZFS (spl's module option, applied by modprobe from the command
    // line; OpenZFS spl-generic.c `zone_get_hostid` prefers it to /etc/hostid) and no resume
    // (initramfs-tools' `noresume`): an initramfs built on another node (the root image's)
    // then imports the pools as this node and does not wait for a resume device
    let mut c = format!("{ROOT_CMDLINE} spl.spl_hostid=0x{:08x} noresume", host_id(p));
    // the ARC cap as well as in /etc/modprobe.d/zfs.conf: the module loads in the initramfs,
    // and an image's initramfs carries the zfs.conf of the node it was built on (modprobe
    // applies the command line's options after the files')
    if let Some(arc) = p.zfs.arc_max_bytes() {
        c.push_str(&format!(" zfs.zfs_arc_max={arc}"));
    }
    for a in &p.os.kernel_args {
        c.push(' ');
        c.push_str(a);
    }
    c
}

impl RenderedFile {
    fn new(path: &str, mode: u32, content: String) -> RenderedFile {
        let sha256 = crate::profile::hex_digest(&Sha256::digest(content.as_bytes()));
        RenderedFile { path: path.to_string(), mode, content, sha256 }
    }
}

/// The comment every rendered file starts with (`#` syntax).
/// (No file name in it: the node keeps its profile as /etc/keel/profile.toml, and `keel verify`
/// there must render the same bytes as the install did.)
fn header(profile: &Profile, what: &str) -> String {
    format!(
        "# {what}\n# Written by keel for {} from its node profile (a copy is in /etc/keel/profile.toml).\n# Edits are overwritten by the next install; `keel verify` reports files that differ.\n",
        profile.node.hostname
    )
}


/// Every file keel writes on the node, in a fixed order.
pub fn node_files(profile: &Profile) -> Vec<RenderedFile> {
    let mut files = vec![
        RenderedFile::new("/etc/hostname", 0o644, format!("{}\n", profile.node.hostname)),
        RenderedFile::new("/etc/hosts", 0o644, hosts::render(profile)),
        RenderedFile::new("/etc/resolv.conf", 0o644, hosts::render_resolv(profile)),
        RenderedFile::new(&format!("/etc/systemd/network/10-keel-{UPLINK_IFNAME}.link"), 0o644, link_file(profile, "uplink", &profile.network.uplink.mac, UPLINK_IFNAME)),
    ];
    if let ClusterLink::Nic { mac } = &profile.network.cluster_bridge.link {
        files.push(RenderedFile::new(
            &format!("/etc/systemd/network/10-keel-{CLUSTER_NIC_IFNAME}.link"),
            0o644,
            link_file(profile, "cluster NIC", mac, CLUSTER_NIC_IFNAME),
        ));
    }
    files.extend([
        RenderedFile::new("/etc/network/interfaces", 0o644, interfaces::render(profile)),
        RenderedFile::new("/etc/ssh/sshd_config.d/50-keel-hardening.conf", 0o644, sshd::render(profile)),
        RenderedFile::new("/etc/apt/sources.list", 0o644, apt::render_debian(profile)),
        RenderedFile::new("/etc/apt/sources.list.d/pve.list", 0o644, apt::render_pve(profile)),
    ]);
    if let Some(proxy) = apt::render_proxy(profile) {
        files.push(RenderedFile::new("/etc/apt/apt.conf.d/90keel-proxy", 0o644, proxy));
    }
    files.extend(swap_files(profile));
    files.extend(host_files(profile));
    files.push(RenderedFile::new(FIRST_BOOT_UNIT_PATH, 0o644, first_boot_unit(profile)));
    // proxmox-boot-tool and keel-boot-sync (GRUB) both read the command line from here
    files.push(RenderedFile::new("/etc/kernel/cmdline", 0o644, format!("{}\n", kernel_cmdline(profile))));
    if !profile.root_ssh_keys.is_empty() {
        files.push(RenderedFile::new("/root/.ssh/authorized_keys", 0o600, authorized_keys(profile, &profile.root_ssh_keys)));
    }
    for user in &profile.users {
        files.push(RenderedFile::new(&format!("/home/{}/.ssh/authorized_keys", user.name), 0o600, authorized_keys(profile, &user.ssh_keys)));
    }
    files
}

/// The ZFS module's options (in every initramfs built after it is written).
pub const ZFS_MODPROBE_CONF: &str = "/etc/modprobe.d/zfs.conf";

/// The day-one node's protection and services, as far as the profile has them: the firewall
/// and its unit, fail2ban's jails, the metrics units, the ARC cap.
fn host_files(profile: &Profile) -> Vec<RenderedFile> {
    let mut files = Vec::new();
    if let Some(arc) = profile.zfs.arc_max_bytes() {
        files.push(RenderedFile::new(ZFS_MODPROBE_CONF, 0o644, format!(
            "{}options zfs zfs_arc_max={arc}\n",
            header(profile, &format!("ZFS module options: the ARC's upper limit (zfs.arc-max = {})", profile.zfs.arc_max.as_deref().unwrap_or_default()))
        )));
    }
    if let Some(f) = &profile.firewall {
        files.push(RenderedFile::new(firewall::RULES_PATH, 0o644, firewall::render(profile, f)));
        files.push(RenderedFile::new(firewall::UNIT_PATH, 0o644, firewall::unit(profile)));
    }
    if let Some(f) = &profile.fail2ban {
        files.push(RenderedFile::new(fail2ban::JAIL_LOCAL, 0o644, fail2ban::jail_local(profile, f)));
        for j in &f.jails {
            if let Some(text) = fail2ban::filter(profile, j) {
                files.push(RenderedFile::new(&fail2ban::filter_path(j), 0o644, text));
            }
        }
    }
    if let Some(m) = &profile.metrics {
        files.push(RenderedFile::new(metrics::NODE_EXPORTER_DROPIN, 0o644, metrics::node_exporter_dropin(profile, m)));
        if let Some(z) = m.zfs_exporter {
            files.push(RenderedFile::new(metrics::ZFS_EXPORTER_PATH, 0o644, metrics::zfs_exporter_unit(profile, z)));
        }
    }
    files
}

/// The units the configuration enables (the packages' own are enabled by their packages; keel
/// enables them again, which changes nothing when they are) and masks: rpcbind answers on port
/// 111 to every network unless the profile needs it for NFS.
pub fn units_enabled(profile: &Profile) -> Vec<&'static str> {
    let mut v = Vec::new();
    if profile.firewall.is_some() {
        v.push(firewall::UNIT);
    }
    if profile.fail2ban.is_some() {
        v.push("fail2ban.service");
    }
    if let Some(m) = &profile.metrics {
        v.push(metrics::NODE_EXPORTER_UNIT);
        if m.zfs_exporter.is_some() {
            v.push(metrics::ZFS_EXPORTER_UNIT);
        }
    }
    v
}

pub const RPCBIND_UNITS: [&str; 2] = ["rpcbind.service", "rpcbind.socket"];

/// The swap zvol (made by `datasets.swap`, with the properties OpenZFS's FAQ gives for swap on
/// a zvol) is switched on at boot through fstab. Swapping is kept for real memory pressure
/// (a low vm.swappiness). RESUME=none: hibernation cannot resume from a zvol (the pool is not
/// imported yet when the initramfs's resume script runs) and without it that script waits for
/// the device (OpenZFS's Debian root-on-ZFS guide); it is read by update-initramfs, so it is
/// written before the packages build the first initramfs.
pub const FSTAB: &str = "/etc/fstab";
pub const SWAP_DEVICE: &str = "/dev/zvol/rpool/swap";
pub const SWAPPINESS: u32 = 10;
pub const RESUME_CONF: &str = "/etc/initramfs-tools/conf.d/resume";

fn swap_files(profile: &Profile) -> Vec<RenderedFile> {
    vec![
        RenderedFile::new(FSTAB, 0o644, format!(
            "{}# ZFS mounts the root (rpool/ROOT/pve-1, from the boot command line) and every other\n# dataset itself (zfs-mount.service): only the swap zvol is listed here.\n{SWAP_DEVICE} none swap discard 0 0\n",
            header(profile, "fstab")
        )),
        RenderedFile::new("/etc/sysctl.d/80-keel-swap.conf", 0o644, format!("{}vm.swappiness = {SWAPPINESS}\n", header(profile, "swap: used under memory pressure only"))),
        RenderedFile::new(RESUME_CONF, 0o644, format!("{}RESUME=none\n", header(profile, "no resume from hibernation: the swap zvol is not there yet when the initramfs looks"))),
    ]
}

/// The first-boot unit: `keel first-boot` reports "booted" with the host keys to the registry,
/// runs the cluster step, reports its result and then disables itself. Type=exec, so boot never
/// waits for it; systemd restarts it on failure (it also retries inside, with backoff).
pub const FIRST_BOOT_UNIT: &str = "keel-first-boot.service";
pub const FIRST_BOOT_UNIT_PATH: &str = "/etc/systemd/system/keel-first-boot.service";
/// Written when the first boot's work is done; the unit does not start again once it exists.
pub const FIRST_BOOT_DONE: &str = "/var/lib/keel/first-boot.done";

fn first_boot_unit(profile: &Profile) -> String {
    format!(
        "{}\n[Unit]\nDescription=keel first boot: report to the registry, join the cluster\nWants=network-online.target\nAfter=network-online.target corosync.service pve-cluster.service pveproxy.service\nConditionPathExists=!{FIRST_BOOT_DONE}\n\n[Service]\nType=exec\nEnvironment=HOME=/root\nExecStart=/usr/local/sbin/keel first-boot\nRestart=on-failure\nRestartSec=60\n\n[Install]\nWantedBy=multi-user.target\n",
        header(profile, "keel first boot (runs once; see `journalctl -u keel-first-boot`).")
    )
}

/// The node's OpenZFS host id: the first four bytes of SHA-256("keel host id " + host name), so
/// a pure function of the profile (the kernel command line carries it; a rebuilt node keeps
/// its id), different for every node of a cluster (`keel validate` checks), never 0 (which
/// OpenZFS reads as "not set").
pub fn host_id(p: &Profile) -> u32 {
    host_id_of(&p.node.hostname)
}

pub fn host_id_of(hostname: &str) -> u32 {
    let d = Sha256::digest(format!("keel host id {hostname}").as_bytes());
    match u32::from_be_bytes([d[0], d[1], d[2], d[3]]) {
        0 => 1,
        id => id,
    }
}

/// Kernel command line for the ZFS root (`proxmox-boot-tool` reads `/etc/kernel/cmdline`).
pub const ROOT_CMDLINE: &str = "root=ZFS=rpool/ROOT/pve-1 boot=zfs";

fn authorized_keys(profile: &Profile, keys: &[String]) -> String {
    let mut out = header(profile, "authorized_keys");
    for k in keys {
        out.push_str(k);
        out.push('\n');
    }
    out
}

fn link_file(profile: &Profile, role: &str, mac: &str, name: &str) -> String {
    format!(
        "{}\n[Match]\nMACAddress={mac}\nType=ether\n\n[Link]\nName={name}\n",
        header(profile, &format!("Pins the {role} ({mac}) to the name {name}."))
    )
}

#[cfg(test)]
mod tests;
