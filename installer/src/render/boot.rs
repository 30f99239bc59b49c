//! Boot from either drive. With `bootloader = "grub"` keel installs GRUB on every drive and
//! keeps each drive's ESP holding GRUB's configuration, the kernels and their initramfs
//! (`keel-boot-sync`, re-run by kernel and initramfs hooks): GRUB cannot read a pool with
//! `dnodesize=auto` (the large_dnode feature), so nothing it needs lives on ZFS. This is what
//! proxmox-boot-tool does on a Proxmox VE install; `proxmox-boot-tool` profiles use it instead.

use super::{header, kernel_cmdline, RenderedFile};
use crate::profile::{Bootloader, Profile};

/// The sync script's path on the node.
pub const SYNC_SCRIPT: &str = "/usr/local/sbin/keel-boot-sync";

/// The drives whose ESPs keel keeps in sync, one by-id path per line.
pub const BOOT_DISKS: &str = "/etc/keel/boot-disks";

/// Files for booting from every drive: the list of drives always (`keel verify` reads it);
/// the sync script and its hooks with GRUB.
pub fn files(p: &Profile, disks_by_id: &[String]) -> Vec<RenderedFile> {
    let mut list = header(p, "Drives that carry a boot loader and an ESP (partition 1), by id");
    for d in disks_by_id {
        list.push_str(d);
        list.push('\n');
    }
    let mut v = vec![RenderedFile::new(BOOT_DISKS, 0o644, list)];
    if p.os.bootloader == Bootloader::ProxmoxBootTool {
        // proxmox-boot-tool's GRUB mode (legacy BIOS) runs update-grub, which does not read
        // /etc/kernel/cmdline: the ZFS root goes in GRUB's own defaults, as the Proxmox VE
        // installer writes them (pve-installer Proxmox/Install.pm, /etc/default/grub.d/zfs.cfg)
        v.push(RenderedFile::new(GRUB_ZFS_CFG, 0o644, format!(
            "{}GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX {}\"\n",
            header(p, "the ZFS root for update-grub (proxmox-boot-tool on legacy BIOS)"),
            kernel_cmdline(p)
        )));
        v.push(RenderedFile::new(NETBOOT_FIRST, 0o755, netboot_first_script(p)));
    }
    if p.os.bootloader == Bootloader::Grub {
        v.push(RenderedFile::new(SYNC_SCRIPT, 0o755, sync_script(p)));
        let hook = format!("#!/bin/sh\n# keel: keep every drive's ESP in step with /boot\nexec {SYNC_SCRIPT} refresh\n");
        for path in ["/etc/kernel/postinst.d/zz-keel-boot-sync", "/etc/kernel/postrm.d/zz-keel-boot-sync", "/etc/initramfs/post-update.d/keel-boot-sync"] {
            v.push(RenderedFile::new(path, 0o755, hook.clone()));
        }
    }
    v
}

pub const GRUB_ZFS_CFG: &str = "/etc/default/grub.d/zfs.cfg";
pub const NETBOOT_FIRST: &str = "/usr/local/sbin/keel-netboot-first";

/// UEFI with proxmox-boot-tool: its `init` runs `bootctl install`, which puts "Linux Boot
/// Manager" first in the firmware's boot order; Hetzner's rescue system and `keel rebuild` need
/// network boot first. This puts every network entry (by its description) back in front,
/// in the order they had, and leaves the rest in theirs.
fn netboot_first_script(p: &Profile) -> String {
    format!(
        r##"#!/bin/sh
{header}set -eu
out=$(efibootmgr)
order=$(printf '%s\n' "$out" | sed -n 's/^BootOrder: //p')
[ -n "$order" ] || {{ echo "keel-netboot-first: efibootmgr shows no BootOrder" >&2; exit 1; }}
net=""
rest=""
for n in $(printf '%s' "$order" | tr ',' ' '); do
  if printf '%s\n' "$out" | grep -Eq "^Boot$n\*? .*(PXE|HTTP|[Nn]etwork)"; then net="$net,$n"; else rest="$rest,$n"; fi
done
if [ -z "$net" ]; then
  echo "keel-netboot-first: no network boot entry in BootOrder $order; left as it is" >&2
  exit 0
fi
new=$(printf '%s%s' "$net" "$rest" | sed 's/^,//')
[ "$new" = "$order" ] || efibootmgr -q -o "$new"
echo "keel-netboot-first: BootOrder $new (was $order)"
"##,
        header = header(p, "keel-netboot-first: network boot first in the firmware's boot order (after bootctl install)")
    )
}

fn sync_script(p: &Profile) -> String {
    format!(
        r##"#!/bin/sh
{header}#
# keel-boot-sync install   GRUB onto every drive in {BOOT_DISKS} (BIOS: the drive's BIOS boot
#                          partition; UEFI: the removable path on its ESP), then refresh
# keel-boot-sync refresh   copy every kernel and initramfs in /boot to every ESP and write
#                          grub.cfg there (the kernel command line is /etc/kernel/cmdline)
set -eu
mode=${{1:-refresh}}
case $mode in install|refresh) ;; *) echo "usage: keel-boot-sync install|refresh" >&2; exit 2 ;; esac
cmdline=$(cat /etc/kernel/cmdline 2>/dev/null || echo "{cmdline}")
kernels=$(cd /boot && ls vmlinuz-* 2>/dev/null | sed 's/^vmlinuz-//' | sort -r -V)
[ -n "$kernels" ] || {{ echo "keel-boot-sync: no kernel in /boot" >&2; exit 1; }}
mnt=$(mktemp -d /tmp/keel-esp.XXXXXX)
trap 'umount "$mnt" 2>/dev/null || true; rmdir "$mnt"' EXIT
n=0
for disk in $(grep -v '^#' {BOOT_DISKS}); do
  esp="$disk-part1"
  [ -e "$esp" ] || {{ echo "keel-boot-sync: $esp is missing (drive gone?): skipped" >&2; continue; }}
  mount -t vfat "$esp" "$mnt"
  if [ "$mode" = install ]; then
    if [ -d /usr/lib/grub/i386-pc ]; then
      grub-install --target=i386-pc --boot-directory="$mnt" "$disk"
    fi
    if [ -d /usr/lib/grub/x86_64-efi ]; then
      grub-install --target=x86_64-efi --efi-directory="$mnt" --boot-directory="$mnt" --removable --no-nvram
    fi
  fi
  mkdir -p "$mnt/grub"
  rm -f "$mnt"/vmlinuz-* "$mnt"/initrd.img-*
  {{
    echo "# written by keel-boot-sync: every drive carries the same file"
    echo "set default=0"
    echo "set timeout=3"
    echo "insmod part_gpt"
    echo "insmod fat"
    for k in $kernels; do
      [ -f "/boot/initrd.img-$k" ] || continue
      cp "/boot/vmlinuz-$k" "/boot/initrd.img-$k" "$mnt/"
      echo "menuentry 'Proxmox VE on ZFS, kernel $k' {{"
      echo "  linux /vmlinuz-$k $cmdline"
      echo "  initrd /initrd.img-$k"
      echo "}}"
    done
  }} >"$mnt/grub/grub.cfg.new"
  mv "$mnt/grub/grub.cfg.new" "$mnt/grub/grub.cfg"
  sync
  umount "$mnt"
  n=$((n + 1))
  echo "keel-boot-sync: $mode: $disk"
done
[ "$n" -gt 0 ] || {{ echo "keel-boot-sync: no ESP was found" >&2; exit 1; }}
"##,
        header = header(p, "keel-boot-sync: boot from either drive"),
        cmdline = kernel_cmdline(p),
    )
}
