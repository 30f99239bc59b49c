//! keel as PID 1 of keel-live (`/init` is keel): mounts the kernel's file systems, starts
//! udev and loads ZFS, brings the rescue's uplink up on the NIC with the rescue's MAC, starts
//! sshd with the host keys the rescue made and announced, runs the keel command it was handed
//! (`keel install` or `keel disk replace`, with the consent given in the rescue) and, as PID 1 must, reaps every orphan. Booted by PXE (no
//! archive; the registry's link on the kernel command line) it takes the boot NIC up by DHCP
//! and runs `keel install --unattended` instead. When the command
//! ends it says so on the console and reboots, powers off or stays, as configured. It never
//! exits (the kernel would panic): what fails is printed and it stays up for a look over SSH.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use keel_installer::live::{self, After, Config};
use nix::mount::{mount, MsFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A line on the console. Never panics (println! would, and a panic of PID 1 is the kernel's).
fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

fn say(msg: &str) {
    line(&format!("keel-live: {msg}"));
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/uptime").ok().and_then(|u| u.split_whitespace().next().map(String::from)).unwrap_or_default()
}

/// Runs a command to its end (before the reaping loop starts: it waits for its own child).
fn run(argv: &[&str]) -> Result<()> {
    let st = Command::new(argv[0]).args(&argv[1..]).stdin(Stdio::null()).status().with_context(|| format!("starting {}", argv.join(" ")))?;
    if !st.success() {
        bail!("`{}` exited with {st}", argv.join(" "));
    }
    Ok(())
}

fn mounts() -> Result<()> {
    let none: Option<&str> = None;
    for (src, target, fs, flags) in [
        ("proc", "/proc", "proc", MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC),
        ("sysfs", "/sys", "sysfs", MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC),
        ("devtmpfs", "/dev", "devtmpfs", MsFlags::MS_NOSUID),
        ("devpts", "/dev/pts", "devpts", MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC),
        ("tmpfs", "/run", "tmpfs", MsFlags::MS_NOSUID | MsFlags::MS_NODEV),
        ("tmpfs", "/tmp", "tmpfs", MsFlags::MS_NOSUID | MsFlags::MS_NODEV),
    ] {
        std::fs::create_dir_all(target).ok();
        // devtmpfs may be mounted by the kernel already (CONFIG_DEVTMPFS_MOUNT)
        if let Err(e) = mount(Some(src), target, Some(fs), flags, none) {
            if !(target == "/dev" && e == nix::errno::Errno::EBUSY) {
                return Err(e).with_context(|| format!("mounting {fs} on {target}"));
            }
        }
    }
    Ok(())
}

/// The NIC with this MAC, once the kernel has it (drivers load through udev).
fn nic_with_mac(mac: &str) -> Result<String> {
    let t = Instant::now();
    loop {
        for e in std::fs::read_dir("/sys/class/net").context("reading /sys/class/net")?.flatten() {
            let a = std::fs::read_to_string(e.path().join("address")).unwrap_or_default();
            if a.trim().eq_ignore_ascii_case(mac) {
                return Ok(e.file_name().to_string_lossy().into_owned());
            }
        }
        if t.elapsed() > Duration::from_secs(60) {
            bail!("no network interface with the rescue's MAC {mac} after 60 s: the live kernel has no driver for this NIC, or it is another one");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn network(c: &Config) -> Result<String> {
    let dev = nic_with_mac(&c.uplink.mac)?;
    crate::live_net::apply(&dev, &c.uplink)?;
    let resolv: String = c.nameservers.iter().map(|n| format!("nameserver {n}\n")).collect();
    std::fs::write("/etc/resolv.conf", resolv).context("writing /etc/resolv.conf")?;
    Ok(dev)
}

/// What keel-live runs once it is up: keel's arguments (`install ...`, `disk replace ...`) and
/// what to do after it.
struct Job {
    hostname: String,
    keel: Vec<String>,
    after_success: After,
    after_failure: After,
}

/// The host name, udev (drivers, /dev/disk/by-id) and OpenZFS: both ways of starting.
fn base(hostname: &str) -> Result<()> {
    nix::unistd::sethostname(hostname).context("setting the host name")?;
    say(&format!("{hostname} starting (kernel {}, up {} s)", std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(), uptime()));
    run(&["/lib/systemd/systemd-udevd", "--daemon"])?;
    run(&["udevadm", "trigger", "--type=subsystems", "--action=add"])?;
    run(&["udevadm", "trigger", "--type=devices", "--action=add"])?;
    run(&["udevadm", "settle", "--timeout=60"])?;
    run(&["modprobe", "zfs"]).context("loading OpenZFS")
}

fn zfs_version() -> String {
    std::fs::read_to_string("/sys/module/zfs/version").unwrap_or_default().trim().to_string()
}

/// Everything before the install: from keel's archive (a switch from the rescue system), else
/// from the kernel command line (a PXE boot by the registry's iPXE script).
fn start() -> Result<Job> {
    mounts()?;
    std::env::set_var("PATH", PATH);
    let config = Path::new("/").join(live::CONFIG_PATH);
    if !config.exists() {
        let cmdline = std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?;
        return match live::pxe_from_cmdline(&cmdline).map_err(anyhow::Error::msg)? {
            Some(p) => start_pxe(p),
            None => bail!("no /{} (keel's archive, from a switch) and no keel.registry= on the kernel command line (a PXE boot by the registry): nothing to install", live::CONFIG_PATH),
        };
    }
    let text = std::fs::read_to_string(&config).with_context(|| format!("reading {}", config.display()))?;
    let c: Config = serde_json::from_str(&text).with_context(|| format!("reading /{}", live::CONFIG_PATH))?;
    if c.schema != live::SCHEMA {
        bail!("/{} has schema {}, this keel reads {}", live::CONFIG_PATH, c.schema, live::SCHEMA);
    }
    base(&c.hostname)?;
    let dev = network(&c)?;
    std::fs::create_dir_all("/run/sshd").ok();
    run(&["/usr/sbin/sshd"]).context("starting sshd")?;
    line(&format!(
        "{} (up {} s): {} on {dev} (the rescue's {}), sshd running, OpenZFS {}",
        live::READY_LINE,
        uptime(),
        c.uplink.addresses.iter().map(|a| a.cidr.as_str()).collect::<Vec<_>>().join(", "),
        c.uplink.rescue_name,
        zfs_version()
    ));
    Ok(Job { hostname: c.hostname, keel: c.keel, after_success: c.after_success, after_failure: c.after_failure })
}

/// A PXE boot: the NIC iPXE booted from (else every NIC) by DHCP; no sshd (no keys were
/// handed over: the install reports to the registry instead).
fn start_pxe(p: live::Pxe) -> Result<Job> {
    base(&p.hostname)?;
    say(&format!("PXE boot by the registry {} (no token: the registry knows this machine by its hardware)", p.registry));
    run(&["ip", "link", "set", "lo", "up"])?;
    let devs: Vec<String> = match &p.mac {
        Some(m) => vec![nic_with_mac(m)?],
        None => std::fs::read_dir("/sys/class/net")
            .context("reading /sys/class/net")?
            .flatten()
            .filter(|e| e.path().join("device").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
    };
    if devs.is_empty() {
        bail!("no network interface: the live kernel has no driver for this machine's NICs");
    }
    for d in &devs {
        run(&["ip", "link", "set", "dev", d, "up"])?;
    }
    // ISC's dhclient, one try (it exits 2 without a lease), then it stays to renew
    let mut argv = vec!["dhclient", "-4", "-1", "-pf", "/run/dhclient.pid", "-lf", "/run/dhclient.leases"];
    argv.extend(devs.iter().map(String::as_str));
    run(&argv).context("DHCP on the boot NIC")?;
    let out = Command::new("ip").args(["-4", "-o", "addr", "show", "scope", "global"]).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let addrs: Vec<String> = out.lines().filter_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.len() > 3).then(|| format!("{} on {}", w[3], w[1]))
    }).collect();
    line(&format!("{} (up {} s): {} (DHCP), no sshd in a PXE boot, OpenZFS {}", live::READY_LINE, uptime(), addrs.join(", "), zfs_version()));
    Ok(Job { hostname: p.hostname, keel: p.keel, after_success: p.after_success, after_failure: p.after_failure })
}

/// Reaps children until `watch` ends; returns its exit code (128+signal when killed).
fn reap_until(watch: Option<u32>) -> i32 {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(pid, code)) if Some(pid.as_raw() as u32) == watch => return code,
            Ok(WaitStatus::Signaled(pid, sig, _)) if Some(pid.as_raw() as u32) == watch => return 128 + sig as i32,
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_secs(1)), // no children right now
        }
    }
}

fn after(what: After) -> ! {
    nix::unistd::sync();
    let mode = match what {
        After::Reboot => nix::sys::reboot::RebootMode::RB_AUTOBOOT,
        After::Poweroff => nix::sys::reboot::RebootMode::RB_POWER_OFF,
        After::Stay => {
            say("staying up: reach it over SSH");
            loop {
                reap_until(None);
            }
        }
    };
    say(&format!("{what:?}").to_lowercase());
    std::thread::sleep(Duration::from_secs(2));
    let _ = nix::sys::reboot::reboot(mode);
    loop {
        reap_until(None);
    }
}

/// PID 1 of keel-live.
pub fn run_as_init() -> ! {
    let c = match start() {
        Ok(c) => c,
        Err(e) => {
            say(&format!("cannot start: {e:#}"));
            after(After::Stay);
        }
    };
    let what = live::command_name(&c.keel);
    say(&format!("keel {}", c.keel.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.clone() }).collect::<Vec<_>>().join(" ")));
    std::fs::create_dir_all(live::JOURNAL_DIR).ok();
    // named as a detached install names them (`keel status --follow` reads both when the
    // install ends without finishing its journal)
    let log_path = Path::new(live::JOURNAL_DIR).join(format!("{}-{}.out", what.replace(' ', "-"), c.hostname));
    let child = Command::new(Path::new("/").join(live::KEEL_PATH)).args(&c.keel).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let mut child = match child {
        Ok(ch) => ch,
        Err(e) => {
            say(&format!("cannot start keel {what}: {e}"));
            after(c.after_failure);
        }
    };
    let _ = std::fs::write(log_path.with_extension("pid"), format!("{}\n", child.id()));
    // its output: to the console as it comes, and to a file beside the journal
    let log = std::sync::Arc::new(std::sync::Mutex::new(std::fs::File::create(&log_path).ok()));
    for stream in [child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>), child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>)].into_iter().flatten() {
        let log = log.clone();
        std::thread::spawn(move || {
            for text in BufReader::new(stream).lines().map_while(|l| l.ok()) {
                line(&text);
                if let Some(f) = log.lock().ok().as_mut().and_then(|g| g.as_mut()) {
                    let _ = writeln!(f, "{text}");
                }
            }
        });
    }
    let code = reap_until(Some(child.id()));
    std::thread::sleep(Duration::from_millis(300)); // the last lines of its output
    line(&format!("{} exit {code} (up {} s); output {}", live::finished_line(&c.keel), uptime(), log_path.display()));
    after(if code == 0 { c.after_success } else { c.after_failure })
}
