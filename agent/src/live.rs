//! The switch from a rescue system without ZFS to keel-live: after the operator's consent,
//! keel packs what the live system needs into a small archive appended to keel-live's
//! initramfs (itself as `/init`, the command to run with that consent (`keel install`,
//! `keel disk replace`), the profile and spec,
//! the rescue's uplink, the operator's SSH keys, host keys made here so the reconnect can be
//! checked), loads kernel and initramfs with `kexec_file_load` and restarts into them.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context, Result};
use keel_installer::hostkeys;
use keel_installer::live::{self, Config};

/// How the switch prints each of keel-live's public host keys (whole: `ALGO BASE64`).
pub const HOST_KEY_LINE: &str = "keel-live host key: ";

/// The host keys a switch announced, from its output.
pub fn announced_keys(output: &str) -> Vec<String> {
    output.lines().filter_map(|l| l.trim().strip_prefix(HOST_KEY_LINE)).filter(|k| hostkeys::fingerprint(k).is_some()).map(String::from).collect()
}

/// The live system's files: a kernel and an initramfs (the whole root), and the manifest the
/// build wrote beside them.
pub struct LiveFiles {
    pub dir: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// `kernel ...`, `zfs ...` lines of the manifest, for the messages.
    pub about: String,
}

/// keel-live as given (`--live DIR`), else `keel-live/` beside this binary; None if neither.
pub fn find(given: Option<&Path>) -> Result<Option<LiveFiles>> {
    let dir = match given {
        Some(d) => d.to_path_buf(),
        None => match std::env::current_exe().ok().and_then(|e| e.parent().map(|p| p.join("keel-live"))) {
            Some(d) if d.is_dir() => d,
            _ => return Ok(None),
        },
    };
    let (kernel, initrd) = (dir.join("vmlinuz"), dir.join("initrd.img"));
    for f in [&kernel, &initrd] {
        if !f.is_file() {
            bail!("{} is not keel-live: {} is missing (scripts/live/build.sh makes vmlinuz and initrd.img)", dir.display(), f.display());
        }
    }
    let about = std::fs::read_to_string(dir.join("manifest"))
        .map(|m| m.lines().filter(|l| l.starts_with("kernel ") || l.starts_with("zfs ")).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "no manifest".into());
    Ok(Some(LiveFiles { dir, kernel, initrd, about }))
}

fn output(argv: &[&str]) -> Result<String> {
    let out = Command::new(argv[0]).args(&argv[1..]).stdin(Stdio::null()).output().with_context(|| format!("running {}", argv.join(" ")))?;
    if !out.status.success() {
        bail!("`{}` exited with {}: {}", argv.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One file of the appended archive.
struct Entry {
    path: String,
    mode: u32,
    data: Vec<u8>,
    rdev: Option<(u32, u32)>,
}

fn dir(path: &str, mode: u32) -> Entry {
    Entry { path: path.into(), mode: 0o040000 | mode, data: Vec::new(), rdev: None }
}

fn file(path: &str, mode: u32, data: Vec<u8>) -> Entry {
    Entry { path: path.into(), mode: 0o100000 | mode, data, rdev: None }
}

/// A character device node (`/dev/console`: the kernel opens it for PID 1 before `/init` runs).
fn char_device(path: &str, mode: u32, major: u32, minor: u32) -> Entry {
    Entry { path: path.into(), mode: 0o020000 | mode, data: Vec::new(), rdev: Some((major, minor)) }
}

fn symlink(path: &str, target: &str) -> Entry {
    Entry { path: path.into(), mode: 0o120777, data: target.as_bytes().to_vec(), rdev: None }
}

/// The entries as a newc cpio archive (what the kernel unpacks over the initramfs before it).
fn cpio(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let mut b = cpio::newc::Builder::new(&e.path).ino(i as u32 + 1).mode(e.mode).nlink(1);
        if let Some((major, minor)) = e.rdev {
            b = b.rdev_major(major).rdev_minor(minor);
        }
        let mut w = b.write(&mut out, e.data.len() as u32);
        w.write_all(&e.data)?;
        w.finish()?;
    }
    cpio::newc::trailer(&mut out)?;
    Ok(out)
}

/// Host keys for the live system, made here (ssh-keygen of the rescue), so their fingerprints
/// are known before the switch: (private, public) per type.
fn host_keys(tmp: &Path) -> Result<Vec<(String, Vec<u8>, Vec<u8>)>> {
    let mut keys = Vec::new();
    for t in ["ed25519", "ecdsa"] {
        let f = tmp.join(format!("ssh_host_{t}_key"));
        let _ = std::fs::remove_file(&f);
        output(&["ssh-keygen", "-q", "-t", t, "-N", "", "-C", "root@keel-live", "-f", &f.display().to_string()])?;
        keys.push((t.to_string(), std::fs::read(&f)?, std::fs::read(f.with_extension("pub"))?));
        let _ = std::fs::remove_file(&f);
    }
    Ok(keys)
}

/// keel itself as keel-live's init (`/init` a link to it), with the console device and the
/// journal folder: the part of the archive a PXE boot needs as much as a switch.
fn keel_entries() -> Result<Vec<Entry>> {
    let exe = std::fs::read("/proc/self/exe").context("reading keel's own binary")?;
    Ok(vec![
        dir("dev", 0o755),
        char_device("dev/console", 0o600, 5, 1),
        dir("etc", 0o755),
        dir("usr", 0o755),
        dir("usr/local", 0o755),
        dir("usr/local/sbin", 0o755),
        dir("var", 0o755),
        dir("var/lib", 0o755),
        dir("var/lib/keel", 0o700),
        file(live::KEEL_PATH, 0o755, exe),
        symlink("init", &format!("/{}", live::KEEL_PATH)),
    ])
}

/// `keel live-archive OUT`: this keel as keel-live's init, a newc archive for a PXE boot (the
/// iPXE script loads it as a second initrd after keel-live's `initrd.img`; the kernel unpacks
/// both into one root). Nothing node-specific is in it: the registry's script carries the rest.
pub fn write_archive(out: &Path) -> Result<ExitCode> {
    let bytes = cpio(&keel_entries()?)?;
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("{}: keel {} as keel-live's /init ({} bytes); serve it beside keel-live's initrd.img and give the registry both (--boot-initrd twice)", out.display(), env!("CARGO_PKG_VERSION"), bytes.len());
    Ok(ExitCode::SUCCESS)
}

/// What the switch hands keel-live: the command to run there with the consent given here.
pub struct Job<'a> {
    pub hostname: String,
    /// keel's arguments in keel-live (`install ...`, `disk replace ...`), paths as keel-live
    /// sees them (`/etc/keel-live/profile.toml`).
    pub keel: Vec<String>,
    pub after_success: live::After,
    pub after_failure: live::After,
    /// The node's profile here (copied to keel-live's `PROFILE_PATH`), and the spec if any.
    pub profile: &'a Path,
    pub spec: Option<&'a Path>,
    /// Where this rescue keeps journals (an enrolled node's `registry.json` goes along).
    pub journal_dir: &'a Path,
    /// The kernel command line to carry over (`console=` etc.).
    pub cmdline: &'a Path,
}

/// Everything for the switch, then the switch. Returns only when it could not happen.
/// `why`: what this system cannot do, as a sentence's start ("this system cannot create the
/// pools (...)").
pub fn switch(job: Job, files: &LiveFiles, why: &str) -> Result<ExitCode> {
    let what = live::command_name(&job.keel);
    eprintln!("\nkeel: {why}.\nkeel: switching to keel-live ({}; {}) by kexec: keel {what} continues there with the consent given here.", files.dir.display(), files.about);
    let uplink = live::rescue_uplink(&output(&["ip", "-j", "addr", "show"])?, &output(&["ip", "-j", "route", "show"])?, &output(&["ip", "-j", "-6", "route", "show"]).unwrap_or_default())?;
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let config = Config {
        schema: live::SCHEMA.into(),
        hostname: job.hostname.clone(),
        uplink,
        nameservers: live::nameservers(&resolv),
        keel: job.keel.clone(),
        after_success: job.after_success,
        after_failure: job.after_failure,
    };

    let tmp = PathBuf::from("/run/keel-live");
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let keys = host_keys(&tmp)?;
    // the operator's way in: the rescue's authorized keys (how they reached this shell) and
    // the profile's root keys
    let mut authorized = std::fs::read_to_string("/root/.ssh/authorized_keys").unwrap_or_default();
    let profile_text = std::fs::read_to_string(job.profile).with_context(|| format!("reading {}", job.profile.display()))?;
    if let Ok(v) = profile_text.parse::<toml::Table>() {
        for k in v.get("root-ssh-keys").and_then(|k| k.as_array()).into_iter().flatten().filter_map(|k| k.as_str()) {
            if !authorized.contains(k) {
                authorized.push_str(k);
                authorized.push('\n');
            }
        }
    }
    let mut entries = keel_entries()?;
    entries.extend([
        dir("etc/keel-live", 0o700),
        dir("etc/ssh", 0o755),
        dir("root", 0o700),
        dir("root/.ssh", 0o700),
        file(live::CONFIG_PATH, 0o600, serde_json::to_vec_pretty(&config)?),
        file(live::PROFILE_PATH, 0o600, profile_text.into_bytes()),
        file("root/.ssh/authorized_keys", 0o600, authorized.into_bytes()),
    ]);
    if let Some(s) = job.spec {
        entries.push(file(live::SPEC_PATH, 0o600, std::fs::read(s).with_context(|| format!("reading {}", s.display()))?));
    }
    // registry credentials this rescue already holds (an enrolled node's secret)
    if let Ok(c) = std::fs::read(job.journal_dir.join("registry.json")) {
        entries.push(file("var/lib/keel/registry.json", 0o600, c));
    }
    let mut fingerprints = Vec::new();
    let mut public_keys = Vec::new();
    for (t, private, public) in keys {
        public_keys.push(String::from_utf8_lossy(&public).split_whitespace().take(2).collect::<Vec<_>>().join(" "));
        entries.push(file(&format!("etc/ssh/ssh_host_{t}_key"), 0o600, private));
        if let Some(fp) = hostkeys::fingerprint(String::from_utf8_lossy(&public).trim()) {
            fingerprints.push(fp);
        }
        entries.push(file(&format!("etc/ssh/ssh_host_{t}_key.pub"), 0o644, public));
    }
    // the whole initramfs: keel-live's, padded to 4 bytes (where the kernel looks for the next
    // archive), then this one
    let initrd_path = tmp.join("initrd.img");
    {
        let mut out = std::fs::File::create(&initrd_path).with_context(|| format!("creating {}", initrd_path.display()))?;
        let mut base = std::fs::File::open(&files.initrd).with_context(|| format!("opening {}", files.initrd.display()))?;
        let n = std::io::copy(&mut base, &mut out).with_context(|| format!("copying {}", files.initrd.display()))?;
        out.write_all(&vec![0u8; ((4 - n % 4) % 4) as usize])?;
        out.write_all(&cpio(&entries)?)?;
        out.sync_all()?;
    }
    let cmdline = live::kernel_cmdline(&std::fs::read_to_string(job.cmdline).unwrap_or_default());
    load(&files.kernel, &initrd_path, &cmdline)?;

    // keel status reads an install's journal; another command's output is in its log
    let follow = if what == "install" { "`keel status --follow`".to_string() } else { format!("`tail -f {}/{}-{}.out`", live::JOURNAL_DIR, what.replace(' ', "-"), job.hostname) };
    let addr = config.uplink.addresses.first().map(|a| a.cidr.split('/').next().unwrap_or_default().to_string()).unwrap_or_default();
    eprintln!("keel: keel-live is loaded (command line: {cmdline}). Its SSH host keys (pin them; the rescue's keys no longer answer):");
    for fp in &fingerprints {
        eprintln!("  {fp}");
    }
    // the same, whole, for `keel remote install` and `keel rebuild` (they pin them)
    for k in &public_keys {
        eprintln!("{HOST_KEY_LINE}{k}");
    }
    eprintln!(
        "keel: this session ends now. Reconnect with `ssh root@{addr}` and follow keel {what} with {follow}; if the rescue's host key answers instead, the switch did not happen: run keel {what} again there, or boot keel-live by PXE."
    );
    let _ = std::fs::write(tmp.join("fingerprints"), fingerprints.iter().map(|f| format!("{f}\n")).collect::<String>());
    std::io::stderr().flush().ok();
    std::thread::sleep(std::time::Duration::from_secs(1));
    restart()
}

/// `kexec_file_load(2)`: the kernel checks and places both files itself (no kexec-tools).
fn load(kernel: &Path, initrd: &Path, cmdline: &str) -> Result<()> {
    let k = std::fs::File::open(kernel).with_context(|| format!("opening {}", kernel.display()))?;
    let i = std::fs::File::open(initrd).with_context(|| format!("opening {}", initrd.display()))?;
    let c = std::ffi::CString::new(cmdline).context("the kernel command line has a NUL byte")?;
    // SAFETY: the descriptors are open files, the command line a NUL-terminated string whose
    // length with the NUL is passed; the call reads them and returns.
    let r = unsafe { libc::syscall(libc::SYS_kexec_file_load, k.as_raw_fd(), i.as_raw_fd(), c.as_bytes_with_nul().len(), c.as_ptr(), 0 as libc::c_ulong) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        let hint = match e.raw_os_error() {
            Some(libc::ENOSYS) => "this kernel has no kexec_file_load (CONFIG_KEXEC_FILE)",
            Some(libc::EPERM) => "kexec is not allowed here (not root, kexec_load_disabled, or a locked-down kernel)",
            Some(libc::EKEYREJECTED) | Some(libc::EBADMSG) => "the kernel requires signed kexec images and refused keel-live's",
            Some(libc::ENOEXEC) => "the kernel file is not a bzImage this kernel can load",
            _ => "the kernel refused it",
        };
        bail!("kexec_file_load of {} failed: {e} ({hint}). keel-live cannot be reached by kexec from this system: boot it by PXE (the registry's --boot-kernel/--boot-initrd) and run keel there", kernel.display());
    }
    Ok(())
}

/// Into the loaded kernel: through systemd when it runs this system (a clean stop), else at once.
fn restart() -> Result<ExitCode> {
    if Path::new("/run/systemd/system").is_dir() {
        let st = Command::new("systemctl").arg("kexec").status().context("running systemctl kexec")?;
        if st.success() {
            // systemd stops everything, this process too
            std::thread::sleep(std::time::Duration::from_secs(120));
        }
        eprintln!("keel: `systemctl kexec` did not restart the system ({st}); restarting directly");
    }
    nix::unistd::sync();
    let e = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_KEXEC).unwrap_err();
    bail!("reboot(RB_KEXEC) failed: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(bytes: Vec<u8>) -> Vec<(String, u32, u32, Vec<u8>)> {
        let mut r = std::io::Cursor::new(bytes);
        let mut seen = Vec::new();
        loop {
            let rd = cpio::newc::Reader::new(&mut r).unwrap();
            if rd.entry().is_trailer() {
                break;
            }
            let (name, mode, size) = (rd.entry().name().to_string(), rd.entry().mode(), rd.entry().file_size());
            let mut data = Vec::new();
            let mut rd = rd;
            std::io::Read::read_to_end(&mut rd, &mut data).unwrap();
            seen.push((name, mode, size, data));
            rd.finish().unwrap();
        }
        seen
    }

    /// `keel live-archive`: this very binary as /usr/local/sbin/keel, /init a link to it, the
    /// console device, and nothing node-specific.
    #[test]
    fn the_pxe_archive_is_keel_as_init() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("keel.cpio");
        write_archive(&out).unwrap();
        let seen = read_back(std::fs::read(&out).unwrap());
        let me = std::fs::read("/proc/self/exe").unwrap();
        let keel = seen.iter().find(|e| e.0 == "usr/local/sbin/keel").expect("keel in it");
        assert_eq!((keel.1, keel.3 == me), (0o100755, true));
        assert!(seen.iter().any(|e| e.0 == "init" && e.1 == 0o120777 && e.3 == b"/usr/local/sbin/keel"));
        assert!(seen.iter().any(|e| e.0 == "dev/console" && e.1 == 0o020600));
        assert!(!seen.iter().any(|e| e.0.starts_with("etc/keel-live") || e.0.starts_with("root")), "nothing node-specific: {:?}", seen.iter().map(|e| &e.0).collect::<Vec<_>>());
        assert!(!dir.path().join("keel.tmp").exists());
    }

    /// The archive reads back as the kernel would unpack it: every entry with its mode and data.
    #[test]
    fn the_appended_archive_is_newc_with_every_entry() {
        let entries = vec![dir("etc", 0o755), file("etc/keel-live/config.json", 0o600, b"{}".to_vec()), symlink("init", "/usr/local/sbin/keel")];
        let seen = read_back(cpio(&entries).unwrap());
        assert_eq!(seen, [
            ("etc".to_string(), 0o040755, 0, vec![]),
            ("etc/keel-live/config.json".to_string(), 0o100600, 2, b"{}".to_vec()),
            ("init".to_string(), 0o120777, 20, b"/usr/local/sbin/keel".to_vec()),
        ]);
    }
}
