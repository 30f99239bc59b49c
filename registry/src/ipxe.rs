//! The iPXE script a PXE node boots: the live system's kernel and initrd, with keel's registry
//! (and its certificate's fingerprint) on the kernel command line (`keel install` without
//! `--registry` reads them from /proc/cmdline), and the NIC it booted from as pxelinux names
//! it (`BOOTIF=01-aa-bb-..`, iPXE's `${netX/mac:hexhyp}`: keel-live takes that NIC up by DHCP).
//! No token and no host name: anyone on the network can fetch the script, so it holds nothing
//! that enrolls; the node enrolls by its hardware (`api::enroll`).

/// The script for every MAC that has no install armed: back to the firmware, which boots the
/// next device (the installed system's disk).
pub const NEXT_DEVICE: &str = "#!ipxe\n# keel: no install is armed for this machine; booting the next device\nexit\n";

/// `initrds`: loaded in order (keel-live's initrd.img, then keel's archive); the kernel unpacks
/// them into one root. `extra`: kernel arguments the live system needs (the registry's
/// --boot-args), appended.
pub fn script(kernel: &str, initrds: &[String], registry: &str, fingerprint: Option<&str>, extra: Option<&str>) -> String {
    let pin = fingerprint.map(|f| format!(" keel.fingerprint={f}")).unwrap_or_default();
    let extra = extra.map(|a| format!(" {}", a.trim())).unwrap_or_default();
    // each initrd named, and named on the command line (what an EFI-stub kernel reads)
    let names: Vec<String> = (0..initrds.len()).map(|i| if i == 0 { "initrd.img".to_string() } else { format!("initrd{i}.img") }).collect();
    let on_cmdline: String = names.iter().map(|n| format!("initrd={n} ")).collect();
    let loads: String = initrds.iter().zip(&names).map(|(u, n)| format!("initrd --name {n} {u}\n")).collect();
    format!(
        "#!ipxe\n\
         # keel: unattended install\n\
         kernel {kernel} {on_cmdline}keel.registry={registry}{pin} BOOTIF=01-${{netX/mac:hexhyp}} console=tty0 console=ttyS0,115200{extra}\n\
         {loads}\
         boot\n"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_script_boots_the_live_kernel_with_registry_and_token() {
        let one = ["http://r/i".to_string()];
        let s = super::script("http://r/k", &one, "https://reg:8443", None, None);
        assert!(s.starts_with("#!ipxe\n"));
        assert!(s.contains("kernel http://r/k initrd=initrd.img keel.registry=https://reg:8443 BOOTIF=01-${netX/mac:hexhyp} "), "{s}");
        assert!(!s.contains("keel.token") && !s.contains("keel.node"), "nothing in the script enrolls or names the node: {s}");
        assert!(s.contains("\ninitrd --name initrd.img http://r/i\nboot\n"));
        // a registry with its own certificate: the node pins it
        let s = super::script("http://r/k", &one, "https://reg:8443", Some("sha256:00ff"), None);
        assert!(s.contains(" keel.registry=https://reg:8443 keel.fingerprint=sha256:00ff BOOTIF="), "{s}");
        // what the live system itself needs (the registry's --boot-args) comes last
        let s = super::script("http://r/k", &one, "http://reg", None, Some(" boot=live fetch=http://r/fs.squashfs "));
        assert!(s.contains("console=ttyS0,115200 boot=live fetch=http://r/fs.squashfs\n"), "{s}");
        // keel-live: its initrd, then keel's archive, both loaded and named in order
        let two = ["http://r/initrd.img".to_string(), "http://r/keel.cpio".to_string()];
        let s = super::script("http://r/vmlinuz", &two, "http://reg", None, None);
        assert!(s.contains("kernel http://r/vmlinuz initrd=initrd.img initrd=initrd1.img keel.registry="), "{s}");
        assert!(s.ends_with("\ninitrd --name initrd.img http://r/initrd.img\ninitrd --name initrd1.img http://r/keel.cpio\nboot\n"), "{s}");
    }
}
