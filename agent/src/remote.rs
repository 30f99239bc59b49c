//! `keel remote install` and `keel remote status`: the same install, run on a rescue system over
//! the operator's own OpenSSH (`ssh`, so ~/.ssh/config, the agent and known_hosts apply).
//!
//! install: look at the far side (a rescue system, not an installed node, unless --force),
//! upload keel and check its SHA-256 there, upload the profile with the files it names, run the
//! preflight there and show its disk table here, take the consent here (the serials come from
//! the far side's plan), start `keel install --detach` there, then follow its journal with the
//! same progress output as a local run. A dropped connection is retried; if it stays down, the
//! install goes on there and `keel remote status --host H --follow` re-attaches.

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use keel_installer::exec::journal::{Entry, Record};
use keel_installer::plan::display::shell_quote;
use keel_installer::profile::Profile;
use sha2::{Digest, Sha256};

use crate::cli::{ProgressFormat, RemoteArgs, RemoteInstallArgs};
use crate::progress::Progress;

/// Exit code when the connection is lost for good while the install goes on over there.
pub const DETACHED: u8 = 3;

/// The far side, reached with `ssh [options] HOST -- COMMAND`.
#[derive(Clone)]
pub struct Ssh {
    host: String,
    options: Vec<String>,
}

impl Ssh {
    pub fn new(args: &RemoteArgs) -> Ssh {
        Ssh::with_first(args, &[])
    }

    /// With `first` before every other option (ssh takes the first value given for an option,
    /// so these win over --ssh-option).
    fn with_first(args: &RemoteArgs, first: &[String]) -> Ssh {
        let mut options: Vec<String> = first.iter().flat_map(|o| ["-o".to_string(), o.clone()]).collect();
        options.extend(["-o".to_string(), "ServerAliveInterval=15".into(), "-o".into(), "ServerAliveCountMax=4".into()]);
        for o in &args.far.ssh_option {
            options.push("-o".into());
            options.push(o.clone());
        }
        Ssh { host: args.host.clone(), options }
    }

    fn command(&self, remote: &str) -> Command {
        let mut c = Command::new("ssh");
        c.args(&self.options).arg(&self.host).arg("--").arg(remote);
        c
    }

    /// Runs `remote` there; its output, or an error with the command, exit code and stderr.
    fn run(&self, what: &str, remote: &str, input: Option<&Path>) -> Result<String> {
        let mut c = self.command(remote);
        c.stdin(match input {
            Some(p) => Stdio::from(std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?),
            None => Stdio::null(),
        });
        let out = c.output().context("running ssh (OpenSSH's client must be installed)")?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
            bail!(
                "{what} on {} failed: `ssh {} -- {remote}` exited with code {}{}",
                self.host,
                self.host,
                out.status.code().unwrap_or(-1),
                if tail.is_empty() { String::new() } else { format!("; stderr ends with:\n  {}", tail[tail.len().saturating_sub(5)..].join("\n  ")) }
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// What the far side looks like.
#[derive(Debug, Default, PartialEq)]
pub struct FarSide {
    pub hostname: String,
    pub root_fs: String,
    pub keel_profile: bool,
    pub proxmox: bool,
}

impl FarSide {
    pub fn parse(text: &str) -> FarSide {
        let mut f = FarSide::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("hostname", v)) => f.hostname = v.to_string(),
                Some(("rootfs", v)) => f.root_fs = v.to_string(),
                Some(("keel", v)) => f.keel_profile = v == "yes",
                Some(("pve", v)) => f.proxmox = v == "yes",
                _ => {}
            }
        }
        f
    }

    /// Why this looks like an installed node rather than a rescue system (None: it does not).
    pub fn installed_node(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.keel_profile {
            why.push("it has /etc/keel/profile.toml (installed by keel)".to_string());
        }
        if self.proxmox {
            why.push("it has /etc/pve (a Proxmox VE node)".to_string());
        }
        if self.root_fs == "zfs" {
            why.push("its root file system is ZFS".to_string());
        }
        (!why.is_empty()).then(|| why.join(", "))
    }
}

fn far_probe(root: &str) -> String {
    let r = shell_quote(root.trim_end_matches('/'));
    format!(
        "echo hostname=$(hostname); echo rootfs=$(findmnt -n -o FSTYPE / 2>/dev/null || stat -f -c %T /); \
         if [ -e {r}/etc/keel/profile.toml ]; then echo keel=yes; fi; if [ -d {r}/etc/pve ]; then echo pve=yes; fi"
    )
}

fn sha256_file(p: &Path) -> Result<String> {
    let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    Ok(keel_installer::profile::hex_digest(&Sha256::digest(&bytes)))
}

/// Uploads `local` to `remote` (0600, or 0755 when `exec`) and checks its SHA-256 there. A file
/// already there with that digest is left alone.
fn upload(ssh: &Ssh, local: &Path, remote: &str, exec: bool) -> Result<String> {
    let want = sha256_file(local)?;
    let q = shell_quote(remote);
    let have = ssh.run("checking an earlier upload", &format!("sha256sum {q} 2>/dev/null || true"), None)?;
    if have.split_whitespace().next() == Some(want.as_str()) {
        return Ok(want);
    }
    let part = shell_quote(&format!("{remote}.part"));
    let dir = shell_quote(Path::new(remote).parent().and_then(|p| p.to_str()).unwrap_or("/"));
    ssh.run(&format!("uploading {}", local.display()), &format!("mkdir -p {dir} && umask 077 && cat > {part}"), Some(local))?;
    let got = ssh.run("checking the upload", &format!("sha256sum {part}"), None)?;
    let got = got.split_whitespace().next().unwrap_or("");
    if got != want {
        bail!("the upload of {} to {}:{remote} arrived with SHA-256 {got}, not {want}: the connection corrupted it; run again", local.display(), ssh.host);
    }
    let mode = if exec { "755" } else { "600" };
    ssh.run("placing the upload", &format!("chmod {mode} {part} && mv -f {part} {q}"), None)?;
    Ok(want)
}

/// The far side's keel invocation: `DIR/keel SUBCOMMAND ...` with the hidden test root.
fn far_keel(args: &RemoteArgs, sub: &str, rest: &[String]) -> String {
    let mut words = vec![format!("{}/keel", args.far.far_dir.trim_end_matches('/')), sub.to_string()];
    words.extend(rest.iter().cloned());
    words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ")
}

pub fn install(a: &RemoteInstallArgs) -> Result<ExitCode> {
    // keel-live's announced keys, for this run only (a re-attach is `keel remote status`)
    let known = std::env::temp_dir().join(format!("keel-live-{}.known_hosts", std::process::id()));
    let _remove = RemoveOnDrop(known.clone());
    match start(a, &known)? {
        Started::Stopped(code) => Ok(code),
        Started::Running(ssh, args) | Started::Switched(ssh, args, _) => follow(&ssh, &args, a.choices.progress),
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// How `start` left the far side.
pub enum Started {
    /// It stopped before the install ran (a refusal, already printed).
    Stopped(ExitCode),
    /// The install runs there, in the rescue system: follow it through this connection.
    Running(Ssh, RemoteArgs),
    /// The far side switched to keel-live, which answers with the host keys it announced
    /// (these, as `ssh-keygen -y` prints them): follow it through this connection.
    Switched(Ssh, RemoteArgs, Vec<String>),
}

/// After a switch: the far side is keel-live, reached as the same host but only with one of
/// the host keys the switch announced (written to `known`, a known_hosts file of its own,
/// under an alias), with keel in /usr/local/sbin and the journal in /var/lib/keel.
pub fn live_side(args: &RemoteArgs, hostname: &str, keys: &[String], known: &Path) -> Result<(Ssh, RemoteArgs)> {
    let alias = format!("keel-live-{hostname}");
    if let Some(d) = known.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    std::fs::write(known, keys.iter().map(|k| format!("{alias} {k}\n")).collect::<String>()).with_context(|| format!("writing {}", known.display()))?;
    let first = [format!("HostKeyAlias={alias}"), format!("UserKnownHostsFile={}", known.display()), "StrictHostKeyChecking=yes".into(), "BatchMode=yes".into(), "ConnectTimeout=10".into()];
    let mut live_args = args.clone();
    live_args.far.far_dir = "/usr/local/sbin".into();
    live_args.far.far_journal_dir = keel_installer::live::JOURNAL_DIR.into();
    live_args.far.far_root = None;
    Ok((Ssh::with_first(args, &first), live_args))
}

/// keel-live was not seen after a switch (the error says which way and what to do).
#[derive(Debug)]
pub struct SwitchNotSeen(pub String);

impl std::fmt::Display for SwitchNotSeen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SwitchNotSeen {}

/// Waits until keel-live answers with one of its announced keys. A host that answers with
/// another key (the rescue, when the switch did not happen) is not keel-live.
fn wait_for_live(ssh: &Ssh, host: &str, timeout: Duration) -> Result<()> {
    let started = std::time::Instant::now();
    let mut other_key = false;
    let mut last = String::new();
    eprintln!("keel: waiting for keel-live on {host} (up to {} s)", timeout.as_secs());
    loop {
        let out = ssh.command("true").stdin(Stdio::null()).output().context("running ssh")?;
        if out.status.success() {
            eprintln!("keel: keel-live answers on {host} with its announced host key (after {} s of waiting here)", started.elapsed().as_secs());
            return Ok(());
        }
        last = String::from_utf8_lossy(&out.stderr).lines().filter(|l| !l.trim().is_empty()).last().unwrap_or(&last).to_string();
        if last.contains("Host key verification failed") || last.contains("IDENTIFICATION HAS CHANGED") {
            other_key = true;
        }
        if started.elapsed() > timeout {
            if other_key {
                return Err(SwitchNotSeen(format!("{host} still answers with another host key than keel-live's after {} s: the switch did not happen (the rescue system is still running, or kexec returned to it). Look there (`keel install` prints why), or boot keel-live by PXE", timeout.as_secs())).into());
            }
            return Err(SwitchNotSeen(format!("keel-live did not answer on {host} within {} s ({last}): the kexec may have failed, or its kernel has no driver for the NIC. Reset the server into the rescue system (keel robot reset) and look at its console", timeout.as_secs())).into());
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// Everything up to the install running over there (in the rescue system, or in keel-live
/// after a switch, whose host keys are then pinned in `live_known_hosts`).
pub fn start(a: &RemoteInstallArgs, live_known_hosts: &Path) -> Result<Started> {
    let args = &a.remote;
    let ssh = Ssh::new(args);
    // the profile must be valid here before anything happens there
    let loaded = Profile::load(&a.profile).map_err(|e| anyhow!("{e}\nkeel: {} has errors; nothing was done", a.profile.display()))?;
    let profile = loaded.profile;
    let far_root = args.far.far_root.clone().unwrap_or_else(|| "/".into());

    let far = FarSide::parse(&ssh.run("looking at the far side", &far_probe(&far_root), None)?);
    eprintln!("{}: host {}, root file system {}", args.host, far.hostname, far.root_fs);
    if let Some(why) = far.installed_node() {
        if !a.force {
            bail!("{} does not look like a rescue system: {why}. Boot it into the rescue system first (keel robot rescue, then reset), or pass --force if you are sure; nothing was done", args.host);
        }
        eprintln!("{}: {why}; going on because of --force", args.host);
    }

    // keel itself, then the profile with what it names, in the same folder layout as here
    let dir = args.far.far_dir.trim_end_matches('/').to_string();
    let exe = std::env::current_exe().context("finding keel's own binary")?;
    let sum = upload(&ssh, &exe, &format!("{dir}/keel"), true)?;
    eprintln!("{}: keel uploaded, sha256 {sum} verified there", args.host);
    let profile_remote = format!("{dir}/profiles/{}", a.profile.file_name().and_then(|n| n.to_str()).unwrap_or("profile.toml"));
    upload(&ssh, &a.profile, &profile_remote, false)?;
    let mut install_args = vec!["--profile".to_string(), profile_remote];
    let spec = match (&a.choices.spec, &profile.hardware_spec) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(name)) => Some(a.profile.parent().unwrap_or(Path::new(".")).join("../hardware-specs").join(format!("{name}.toml"))),
        (None, None) => None,
    };
    if let Some(s) = spec {
        let remote = format!("{dir}/spec.toml");
        upload(&ssh, &s, &remote, false).with_context(|| format!("the hardware spec {}", s.display()))?;
        install_args.extend(["--spec".into(), remote]);
    }
    if let Some(f) = &a.token_file {
        let remote = format!("{dir}/token");
        upload(&ssh, f, &remote, false)?;
        install_args.extend(["--token-file".into(), remote]);
    }
    if let Some(r) = &a.registry {
        install_args.extend(["--registry".into(), r.clone()]);
    }
    if let Some(fp) = &a.registry_fingerprint {
        install_args.extend(["--registry-fingerprint".into(), fp.clone()]);
    }
    if let Some(r) = &args.far.far_root {
        install_args.extend(["--root".into(), r.clone()]);
    }
    install_args.extend(["--journal-dir".into(), args.far.far_journal_dir.clone()]);
    if a.choices.wipe_existing {
        install_args.push("--wipe-existing".into());
    }
    if !a.choices.clear_zfs_labels.is_empty() {
        install_args.extend(["--clear-zfs-labels".into(), a.choices.clear_zfs_labels.join(",")]);
    }
    if a.choices.accept_foreign_pools {
        install_args.push("--accept-foreign-pools".into());
    }
    if let Some(u) = &a.choices.until {
        install_args.extend(["--until".into(), u.clone()]);
    }
    if let Some(i) = &a.choices.image {
        install_args.extend(["--image".into(), i.clone()]);
    }
    // keel-live, for a far side without ZFS
    if let Some(live) = &a.choices.live {
        let files = crate::live::find(Some(live))?.context("--live")?;
        let far_live = format!("{dir}/keel-live");
        for (f, name) in [(&files.kernel, "vmlinuz"), (&files.initrd, "initrd.img")] {
            upload(&ssh, f, &format!("{far_live}/{name}"), false)?;
        }
        if files.dir.join("manifest").is_file() {
            upload(&ssh, &files.dir.join("manifest"), &format!("{far_live}/manifest"), false)?;
        }
        eprintln!("{}: keel-live uploaded ({}), checked there", args.host, files.about);
        install_args.extend(["--live".into(), far_live]);
    }

    // the far side's own view of the disks, shown here; then consent here
    let mut pre = ssh.command(&far_keel(args, "install", &[install_args.clone(), vec!["--preflight-only".into()]].concat()));
    let status = pre.stdin(Stdio::null()).status().context("running ssh")?;
    if !status.success() {
        eprintln!("keel: the preflight on {} refused (above); nothing was written", args.host);
        return Ok(Started::Stopped(ExitCode::from(1)));
    }
    let mut serials = far_serials(&ssh, args, &install_args)?;
    // disks whose ZFS labels the far side clears are confirmed like its targets
    serials.extend(a.choices.clear_zfs_labels.iter().map(|s| s.trim().to_string()));
    if a.choices.yes {
        let given: Vec<String> = a.choices.confirm_serials.iter().map(|s| s.trim().to_string()).collect();
        let (mut g, mut w) = (given.clone(), serials.clone());
        g.sort();
        w.sort();
        if g != w {
            bail!("--confirm-serials {} does not match the disks the plan on {} would destroy ({}); nothing was written", given.join(","), args.host, serials.join(","));
        }
    } else {
        if !std::io::stdin().is_terminal() {
            bail!("no terminal to ask for confirmation: run it interactively, or with --yes --confirm-serials {}", serials.join(","));
        }
        if let Err(e) = crate::commands::ask_hostname(&format!("to destroy these disks on {}", args.host), &profile.node.hostname)? {
            bail!("{e}");
        }
    }
    let start = [install_args, vec!["--yes".into(), "--confirm-serials".into(), serials.join(","), "--detach".into()]].concat();
    let remote = far_keel(args, "install", &start);
    let out = ssh.command(&remote).stdin(Stdio::null()).output().context("running ssh")?;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // a switch to keel-live ends this connection: its output names the live system's keys
    let keys = crate::live::announced_keys(&stderr);
    if !keys.is_empty() {
        for l in stderr.lines().filter(|l| !l.starts_with(crate::live::HOST_KEY_LINE)) {
            eprintln!("{}: {l}", args.host);
        }
        let (live_ssh, live_args) = live_side(args, &profile.node.hostname, &keys, live_known_hosts)?;
        wait_for_live(&live_ssh, &args.host, Duration::from_secs(a.choices.live_timeout))?;
        return Ok(Started::Switched(live_ssh, live_args, keys));
    }
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        bail!("starting the install on {} failed: `ssh {} -- {remote}` exited with code {}; stderr ends with:\n  {}", args.host, args.host, out.status.code().unwrap_or(-1), tail[tail.len().saturating_sub(5)..].join("\n  "));
    }
    eprint!("{}: {stdout}", args.host);
    Ok(Started::Running(ssh, args.clone()))
}

/// The serials the far side's plan would destroy (from `keel plan --json` there).
fn far_serials(ssh: &Ssh, args: &RemoteArgs, install_args: &[String]) -> Result<Vec<String>> {
    let mut plan_args: Vec<String> = Vec::new();
    let mut it = install_args.iter();
    while let Some(w) = it.next() {
        if ["--profile", "--spec", "--root", "--image"].contains(&w.as_str()) {
            plan_args.push(w.clone());
            plan_args.extend(it.next().cloned());
        } else if ["--journal-dir", "--until", "--token-file", "--registry", "--registry-fingerprint"].contains(&w.as_str()) {
            it.next();
        }
    }
    plan_args.push("--json".into());
    let text = ssh.run("reading the plan", &format!("{} 2>/dev/null", far_keel(args, "plan", &plan_args)), None)?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("the plan from {} is not JSON", args.host))?;
    let serials: Vec<String> = v["targets"].as_array().map(|a| a.iter().filter_map(|t| t["serial"].as_str().map(String::from)).collect()).unwrap_or_default();
    if serials.is_empty() {
        bail!("the plan from {} names no target disks", args.host);
    }
    Ok(serials)
}

pub fn status(args: &RemoteArgs, follow_it: bool, progress: ProgressFormat) -> Result<ExitCode> {
    let ssh = Ssh::new(args);
    if follow_it {
        return follow(&ssh, args, progress);
    }
    let cmd = far_keel(args, "status", &["--journal-dir".into(), args.far.far_journal_dir.clone()]);
    print!("{}", ssh.run("reading the install's status", &cmd, None)?);
    Ok(ExitCode::SUCCESS)
}

/// Follows the far side's journal (`keel status --follow --json` there) with local progress
/// output; reconnects when the connection drops.
pub fn follow(ssh: &Ssh, args: &RemoteArgs, format: ProgressFormat) -> Result<ExitCode> {
    let mut progress = Progress::new(format);
    let mut shown = 0u64;
    let drop_after: Option<u64> = std::env::var("KEEL_TEST_DROP_AFTER").ok().and_then(|v| v.parse().ok());
    let cmd = far_keel(args, "status", &["--follow".into(), "--json".into(), "--journal-dir".into(), args.far.far_journal_dir.clone()]);
    let mut tries = 0;
    loop {
        let mut child = ssh.command(&cmd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().context("running ssh")?;
        let out = child.stdout.take().expect("piped");
        let mut last: Option<Record> = None;
        let mut this_time = 0;
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let Ok(e) = serde_json::from_str::<Entry>(&line) else { continue };
            if e.seq <= shown {
                continue;
            }
            shown = e.seq;
            this_time += 1;
            progress.event(&e);
            last = Some(e.record.clone());
            if drop_after.is_some_and(|n| shown >= n) {
                // test hook: the connection dies here and stays down
                let _ = child.kill();
                let _ = child.wait();
                eprintln!("keel: lost the connection to {} (KEEL_TEST_DROP_AFTER); the install goes on there. Re-attach: keel remote status --host {} --follow", args.host, args.host);
                return Ok(ExitCode::from(DETACHED));
            }
        }
        let status = child.wait().context("waiting for ssh")?;
        match last {
            Some(Record::Finished { .. }) | Some(Record::Paused { .. }) => return Ok(ExitCode::SUCCESS),
            Some(Record::Failed { .. }) => return Ok(ExitCode::from(1)),
            _ => {}
        }
        if status.success() {
            // status --follow ended by itself: the journal was already at its end
            return Ok(ExitCode::SUCCESS);
        }
        if status.code() != Some(255) {
            // ssh itself is fine (it exits 255 when the connection fails): keel over there said no
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            eprint!("{}: {err}", args.host);
            return Ok(ExitCode::from(1));
        }
        if this_time > 0 {
            tries = 0;
        }
        tries += 1;
        if tries > args.far.reconnect_tries {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            eprintln!(
                "keel: lost the connection to {} ({}); the install goes on there. Re-attach: keel remote status --host {} --follow",
                args.host,
                err.lines().last().unwrap_or("ssh failed"),
                args.host
            );
            return Ok(ExitCode::from(DETACHED));
        }
        let wait = Duration::from_secs(2u64.pow(tries.min(5)));
        eprintln!("keel: the connection to {} dropped; reconnecting in {} s ({tries}/{})", args.host, wait.as_secs(), args.far.reconnect_tries);
        std::thread::sleep(wait);
    }
}

/// Where `keel remote` keeps things on the far side by default.
pub const FAR_DIR: &str = "/root/keel-remote";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::FarSideArgs;

    #[test]
    fn keel_live_is_reached_only_with_its_announced_keys_wherever_the_caller_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let known = dir.path().join("state/known_hosts-lab-node-01-keel-live");
        let args = RemoteArgs {
            host: "root@203.0.113.10".into(),
            far: FarSideArgs {
                ssh_option: vec!["UserKnownHostsFile=/home/op/.local/state/keel/known_hosts-lab-node-01".into(), "StrictHostKeyChecking=yes".into(), "Port=2222".into()],
                far_dir: FAR_DIR.into(),
                far_journal_dir: "/root/keel-journal".into(),
                far_root: Some("/mnt/x".into()),
                reconnect_tries: 5,
            },
        };
        let keys = vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ7fakekeyfakekeyfakekeyfakekeyfakekeyfake".to_string()];
        let (ssh, live) = live_side(&args, "lab-node-01", &keys, &known).unwrap();
        assert_eq!(std::fs::read_to_string(&known).unwrap(), format!("keel-live-lab-node-01 {}\n", keys[0]));
        // its own file and alias come before the rescue's pinned file (ssh takes the first value)
        let o = ssh.options.join(" ");
        let first = o.find(&format!("UserKnownHostsFile={}", known.display())).unwrap();
        assert!(o.starts_with("-o HostKeyAlias=keel-live-lab-node-01 "), "{o}");
        assert!(first < o.find("known_hosts-lab-node-01 ").unwrap_or(usize::MAX).min(o.find("/home/op").unwrap()), "{o}");
        assert!(o.contains("-o Port=2222"), "the operator's other options stay: {o}");
        assert_eq!(ssh.host, "root@203.0.113.10");
        assert_eq!((live.far.far_dir.as_str(), live.far.far_journal_dir.as_str(), live.far.far_root.as_deref()), ("/usr/local/sbin", keel_installer::live::JOURNAL_DIR, None));
    }
}
