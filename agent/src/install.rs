//! `keel install` and `keel status`: plan, preflight, consent, then the engine; and reading
//! the journal back.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use keel_installer::exec::confirm;
use keel_installer::exec::engine::{self, Options, Outcome};
use keel_installer::exec::journal::{self, Entry, Journal, Record};
use keel_installer::exec::preflight;
use keel_installer::hardware;
use keel_installer::plan::{Group, Step};

use crate::cli::InstallArgs;
use crate::logging_host::LoggingHost;
use crate::progress::Progress;
use crate::commands::build_plan;

fn journal_path(dir: &Path, hostname: &str) -> PathBuf {
    dir.join(format!("install-{hostname}.jsonl"))
}

/// Where the registry link comes from: the flags (token inline or from a file), else the
/// kernel command line. None: no registry.
fn registry_link(args: &InstallArgs) -> Result<Option<(String, String, Option<String>)>> {
    if let Some(url) = &args.registry {
        let token = match (&args.token, &args.token_file) {
            (Some(t), _) => t.clone(),
            (None, Some(f)) => std::fs::read_to_string(f).with_context(|| format!("reading the token file {}", f.display()))?.trim().to_string(),
            (None, None) => bail!("--registry {url} needs the node's enrollment token: --token T or --token-file FILE"),
        };
        return Ok(Some((url.clone(), token, args.registry_fingerprint.clone())));
    }
    Ok(std::fs::read_to_string(&args.cmdline).ok().and_then(|c| crate::phone_home::from_cmdline(&c)))
}

pub fn install(args: &InstallArgs) -> Result<ExitCode> {
    let creds_path = args.journal_dir.join("registry.json");
    let mut creds = registry_link(args)?.map(|(url, token, fp)| crate::phone_home::Credentials::load_or_new(&creds_path, &url, fp.as_deref(), &token));
    if let Some(c) = &creds {
        c.registry()?; // a bad URL or fingerprint stops here, before anything else
        c.save(&creds_path)?;
    }
    let profile_path = match (&args.profile, creds.as_mut()) {
        (Some(p), _) => p.clone(),
        (None, Some(c)) => {
            let live = hardware::probe(&args.root).with_context(|| format!("reading the live system under {}", args.root.display()))?;
            let inventory = serde_json::to_value(&live).context("the inventory as JSON")?;
            let p = crate::phone_home::fetch_profile(c, &creds_path, &inventory, &args.journal_dir.join("from-registry"), Duration::from_secs(args.registry_wait))
                .context("fetching this node's profile from the registry")?;
            eprintln!("keel: profile {} from the registry {}", p.display(), c.registry);
            p
        }
        (None, None) => bail!("no profile: give --profile FILE, or a registry to fetch it from (--registry URL --token T, or keel.registry= and keel.token= on the kernel command line)"),
    };
    let fingerprint = args.registry_fingerprint.clone().or_else(|| creds.as_ref().and_then(|c| c.fingerprint.clone()));
    let Some((profile, mut plan)) = build_plan(&profile_path, args.spec.as_deref(), &args.root, args.image.as_deref().map(|i| (i, fingerprint.as_deref())))? else { return Ok(ExitCode::from(1)) };
    if !args.clear_zfs_labels.is_empty() {
        let inv = hardware::probe(&args.root).with_context(|| format!("reading the live system under {}", args.root.display()))?;
        if let Err(e) = plan.clear_zfs_labels(&inv, &args.clear_zfs_labels) {
            eprintln!("keel: cannot plan {}: {e}", plan.hostname);
            return Ok(ExitCode::from(1));
        }
    }
    let path = journal_path(&args.journal_dir, &plan.hostname);
    let mut host = LoggingHost::new(&path.with_extension("log"));
    if !args.restart {
        match journal::recover_from_target(&mut host, &plan, &path) {
            Ok(Some(msg)) => eprintln!("keel: {msg}"),
            Ok(None) => {}
            Err(e) => eprintln!("keel: looking for a journal on the target disks: {e} (continuing without)"),
        }
    }
    // a journal made by this run: its first lines go to the registry too
    let fresh_journal = args.restart || !path.exists();
    let mut journal = match Journal::open(&mut host, &path, &plan, args.restart) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("keel: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    if journal.finished() && !args.preflight_only {
        println!("{} is already installed as far as this keel goes (journal {}): nothing to do", plan.hostname, path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let done = journal.done();
    // The steps this run may execute: not done yet, and not past --until.
    let last = args.until.as_ref().and_then(|u| plan.steps.iter().position(|s| &s.id == u)).unwrap_or(plan.steps.len());
    if let Some(u) = &args.until {
        if last == plan.steps.len() {
            bail!("--until {u}: no such step in the plan (`keel plan` lists them)");
        }
    }
    let steps: Vec<&Step> = plan.steps[..=last.min(plan.steps.len() - 1)].iter().filter(|s| !done.contains(&s.id)).collect();
    let wiped = plan.steps.iter().filter(|s| s.group == Group::Wipe).all(|s| done.contains(&s.id));
    let live = hardware::probe(&args.root).with_context(|| format!("reading the live system under {}", args.root.display()))?;
    // No usable ZFS here (Hetzner's rescue): with keel-live at hand, everything but ZFS is
    // checked here, the operator consents here, and the install continues in keel-live.
    let mut to_live = None;
    let first = preflight::run(&mut host, &plan, &live, &steps, wiped, args.wipe_existing, args.accept_foreign_pools);
    let live_files = match &first {
        Err(preflight::PreflightError::NoZfs { .. }) => crate::live::find(args.live.live.as_deref())?,
        _ => None,
    };
    let pre = match (first, live_files) {
        (Ok(p), _) => p,
        (Err(preflight::PreflightError::NoZfs { why }), Some(files)) => {
            // the disks only: keel-live runs every step with its own tools (and the full preflight)
            let pre = match preflight::run(&mut host, &plan, &live, &[], wiped, args.wipe_existing, args.accept_foreign_pools) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("keel: preflight refused: {e}");
                    return Ok(ExitCode::from(1));
                }
            };
            to_live = Some((files, why));
            pre
        }
        (Err(e), _) => {
            let hint = if matches!(e, preflight::PreflightError::NoZfs { .. }) { " (README: \"From the Hetzner rescue system\")" } else { "" };
            eprintln!("keel: preflight refused: {e}{hint}");
            return Ok(ExitCode::from(1));
        }
    };
    for v in &pre.versions {
        eprintln!("tool {v}");
    }
    if wiped {
        eprintln!("\nresuming the install of {} from its journal {} (the disks were wiped by it already):", plan.hostname, path.display());
    } else {
        eprintln!("\n{} will be installed on these disks; EVERYTHING ON THEM IS DESTROYED:", plan.hostname);
    }
    eprint!("{}", confirm::disks_to_destroy(&plan, &pre));
    if args.preflight_only {
        if let Some((files, why)) = &to_live {
            eprintln!("preflight passed for the disks; no usable ZFS here ({why}): the install switches to keel-live ({}) after the consent, and its preflight checks the rest there", files.dir.display());
        }
        eprintln!("preflight passed; --preflight-only: nothing was written");
        return Ok(ExitCode::SUCCESS);
    }

    // Consent, unless the wipe is behind us (then only keel's own work is on the disks).
    if !wiped {
        if args.unattended {
            if let Err(e) = confirm::check_pinned(&plan, &profile.disks.serials) {
                eprintln!("keel: {e}");
                return Ok(ExitCode::from(1));
            }
            eprintln!("unattended: the profile pins {}, the disks this plan destroys", profile.disks.serials.join(", "));
        } else if args.yes {
            if let Err(e) = confirm::check_serials(&plan, &args.confirm_serials) {
                eprintln!("keel: {e}");
                return Ok(ExitCode::from(1));
            }
        } else if !args.confirm_serials.is_empty() {
            eprintln!("keel: --confirm-serials only counts together with --yes; nothing was written");
            return Ok(ExitCode::from(1));
        } else {
            if !std::io::stdin().is_terminal() {
                eprintln!("keel: no terminal to ask for confirmation: run it interactively, or unattended with --yes --confirm-serials {}", plan.serials().join(","));
                return Ok(ExitCode::from(1));
            }
            if let Err(e) = crate::commands::ask_hostname("to destroy these disks", &plan.hostname)? {
                eprintln!("keel: {e}");
                return Ok(ExitCode::from(1));
            }
        }
    }

    if let Some((files, why)) = to_live {
        // the spec the plan used goes along (given, or the one the profile names)
        let spec = args.spec.clone().or_else(|| profile.hardware_spec.as_ref().map(|n| crate::commands::default_spec(&profile_path, n))).filter(|p| p.is_file());
        let live_profile = PathBuf::from("/").join(keel_installer::live::PROFILE_PATH);
        let live_spec = spec.as_ref().map(|_| PathBuf::from("/").join(keel_installer::live::SPEC_PATH));
        let mut keel = vec!["install".to_string()];
        keel.extend(consented_args(args, &live_profile, live_spec.as_deref(), &plan.written_serials(), Path::new(keel_installer::live::JOURNAL_DIR)));
        keel.extend(["--progress".into(), "plain".into()]);
        // a token file of the rescue is read here: the live system has only what is carried over
        if let (Some(f), Some(i)) = (&args.token_file, keel.iter().position(|a| a == "--token-file")) {
            keel[i] = "--token".into();
            keel[i + 1] = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?.trim().to_string();
        }
        let job = crate::live::Job {
            hostname: plan.hostname.clone(),
            keel,
            after_success: args.live.live_after_success,
            after_failure: args.live.live_after_failure,
            profile: &profile_path,
            spec: spec.as_deref(),
            journal_dir: &args.journal_dir,
            cmdline: &args.cmdline,
        };
        return crate::live::switch(job, &files, &format!("this system cannot create the pools ({why})"));
    }
    if args.detach {
        return detach(args, &profile_path, &plan.written_serials(), &path);
    }

    let opts = Options {
        until: args.until.clone(),
        command_timeout: Duration::from_secs(args.command_timeout),
        os_command_timeout: Duration::from_secs(args.os_command_timeout),
        crash_after: std::env::var("KEEL_TEST_CRASH_AFTER").ok(),
        zfs_checked: pre.needs_zfs,
        self_exe: std::env::current_exe().context("finding keel's own binary")?,
        first_boot_credentials: creds.as_ref().map(|_| creds_path.clone()),
        image_source: match &plan.image {
            Some(i) => Some(crate::image::source(&i.location, i.manifest.size, fingerprint.as_deref())?),
            None => None,
        },
    };
    let uplink = match creds {
        Some(c) => {
            let reg = c.registry()?;
            let inventory = serde_json::to_value(&live).context("the inventory as JSON")?;
            let spool = args.journal_dir.join(format!("spool-{}", plan.hostname));
            let u = crate::phone_home::Uplink::start(reg, c, creds_path.clone(), inventory, spool)?;
            if fresh_journal {
                for e in &journal.entries {
                    u.send(serde_json::to_value(e)?);
                }
            }
            Some(u)
        }
        None => None,
    };
    let mut progress = Progress::new(args.progress);
    let mut print = |e: &Entry| {
        progress.event(e);
        if let (Some(u), Ok(v)) = (&uplink, serde_json::to_value(e)) {
            u.send(v);
        }
    };
    let outcome = engine::execute(&mut host, &plan, &profile, &mut journal, &opts, &mut print);
    if let Some(u) = uplink {
        let result = if outcome.is_ok() { "ok" } else { "failed" };
        let report = serde_json::json!({
            "result": result,
            "hostname": plan.hostname,
            "plan_sha256": journal.entries.iter().find_map(|e| match &e.record { Record::Begin { plan_sha256, .. } => Some(plan_sha256.clone()), _ => None }),
            "inventory": serde_json::to_value(&live).unwrap_or_default(),
            "step_seconds": journal.entries.iter().filter_map(|e| match &e.record { Record::Done { step, seconds } => Some((step.clone(), *seconds)), _ => None }).collect::<std::collections::BTreeMap<_, _>>(),
            "versions": journal::version_notes(&journal.entries).next(),
            "ssh_host_keys": journal::notes(&journal.entries, engine::HOST_KEY_NOTE).collect::<Vec<_>>(),
            "pools": journal::notes(&journal.entries, engine::POOL_NOTE).collect::<Vec<_>>(),
            "error": outcome.as_ref().err().map(|e| e.to_string()),
        });
        let end = u.finish(Duration::from_secs(30), Some(report));
        match &end.last_error {
            None => eprintln!("registry: {} events delivered, report sent ({result})", end.delivered),
            Some(why) => eprintln!("registry: {} events delivered, {} waiting in the spool beside the journal ({why}); a later run delivers them", end.delivered, end.waiting),
        }
    }
    match outcome {
        Ok(Outcome::Finished) => {
            eprint!("{}", journal::step_times(&journal.entries, &plan));
            for v in journal::version_notes(&journal.entries) {
                eprintln!("installed: {v}");
            }
            eprintln!("{} is installed; journal {}", plan.hostname, path.display());
            Ok(ExitCode::SUCCESS)
        }
        Ok(Outcome::Paused { after }) => {
            eprintln!("stopped after {after} as asked (--until); run the same command without --until to continue");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Outcome::AlreadyFinished) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("keel: {e}\nThe journal ({}) records what was done; fix the cause and run the same command again to continue.", path.display());
            Ok(ExitCode::from(1))
        }
    }
}

/// The arguments of this install run again without asking (`keel install` follows them):
/// the consent given (`--yes --confirm-serials` with the plan's serials) and every flag that
/// changes what is done, with the profile, spec and journal folder given.
pub fn consented_args(args: &InstallArgs, profile: &Path, spec: Option<&Path>, serials: &[String], journal_dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = vec!["--profile".into(), profile.display().to_string(), "--root".into(), args.root.display().to_string()];
    if let Some(s) = spec {
        v.extend(["--spec".into(), s.display().to_string()]);
    }
    if let Some(i) = &args.image {
        v.extend(["--image".into(), i.clone()]);
    }
    v.extend(["--yes".into(), "--confirm-serials".into(), serials.join(",")]);
    for (on, flag) in [(args.wipe_existing, "--wipe-existing"), (args.accept_foreign_pools, "--accept-foreign-pools")] {
        if on {
            v.push(flag.into());
        }
    }
    if !args.clear_zfs_labels.is_empty() {
        v.extend(["--clear-zfs-labels".into(), args.clear_zfs_labels.join(",")]);
    }
    if let Some(u) = &args.until {
        v.extend(["--until".into(), u.clone()]);
    }
    // the registry link as this run got it (the credentials beside the journal carry the rest)
    if let Some(r) = &args.registry {
        v.extend(["--registry".into(), r.clone()]);
        if let Some(t) = &args.token {
            v.extend(["--token".into(), t.clone()]);
        } else if let Some(f) = &args.token_file {
            v.extend(["--token-file".into(), f.display().to_string()]);
        }
        if let Some(f) = &args.registry_fingerprint {
            v.extend(["--registry-fingerprint".into(), f.clone()]);
        }
    }
    v.extend(["--journal-dir".into(), journal_dir.display().to_string()]);
    v.extend(["--command-timeout".into(), args.command_timeout.to_string(), "--os-command-timeout".into(), args.os_command_timeout.to_string()]);
    v
}

/// Re-runs this command in the background, in its own process group, with consent given
/// (the serials) and output to a log file beside the journal.
fn detach(args: &InstallArgs, profile: &Path, serials: &[String], journal: &Path) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let log = journal.with_extension("out");
    std::fs::create_dir_all(journal.parent().unwrap_or(Path::new("/"))).ok();
    let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).with_context(|| format!("opening {}", log.display()))?;
    let exe = std::env::current_exe().context("finding keel's own binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("install").args(consented_args(args, profile, args.spec.as_deref(), serials, &args.journal_dir));
    cmd.arg("--cmdline").arg(&args.cmdline);
    cmd.stdin(std::process::Stdio::null()).stdout(out.try_clone()?).stderr(out).process_group(0);
    let child = cmd.spawn().context("starting the background install")?;
    // `keel status --follow` tells a finished journal from a process that died without one
    std::fs::write(journal.with_extension("pid"), format!("{}\n", child.id())).with_context(|| format!("writing {}", journal.with_extension("pid").display()))?;
    println!(
        "install running in the background (pid {}); output {}; journal {}\nfollow it with: keel status --follow --journal-dir {}",
        child.id(),
        log.display(),
        journal.display(),
        args.journal_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A detached install (pid file beside the journal) whose process is gone although its journal
/// has no end: what happened, with the end of its output.
fn detached_install_gone(journal: &Path) -> Option<String> {
    let pid: u32 = std::fs::read_to_string(journal.with_extension("pid")).ok()?.trim().parse().ok()?;
    if Path::new(&format!("/proc/{pid}")).exists() {
        return None;
    }
    // it may have written its last lines just before exiting
    let text = std::fs::read_to_string(journal).unwrap_or_default();
    if text.lines().last().is_some_and(|l| l.contains("\"event\":\"finished\"") || l.contains("\"event\":\"paused\"") || l.contains("\"event\":\"failed\"")) {
        return None;
    }
    let out = std::fs::read_to_string(journal.with_extension("out")).unwrap_or_default();
    let tail: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    Some(format!(
        "the install (pid {pid}) ended without finishing its journal {}; the end of its output ({}):\n  {}",
        journal.display(),
        journal.with_extension("out").display(),
        tail[tail.len().saturating_sub(8)..].join("\n  ")
    ))
}

pub fn status(dir: &Path, follow: bool, json: bool) -> Result<ExitCode> {
    let mut journals: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl") && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("install-")))
        .collect();
    journals.sort();
    let Some(path) = journals.last() else { bail!("no install journal in {} (keel install writes install-<host>.jsonl there)", dir.display()) };
    let mut shown = 0usize;
    loop {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        // While an install runs, its last line may be half written: show whole lines only.
        let whole = &text[..text.rfind('\n').map(|i| i + 1).unwrap_or(0)];
        let entries = journal::parse(path, whole)?;
        for e in &entries[shown.min(entries.len())..] {
            if json {
                println!("{}", serde_json::to_string(e)?);
            } else {
                print!("{}", journal::summary(std::slice::from_ref(e)));
            }
        }
        shown = entries.len();
        let ended = matches!(entries.last().map(|e| &e.record), Some(Record::Finished { .. } | Record::Paused { .. } | Record::Failed { .. }));
        if !follow || ended {
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(why) = detached_install_gone(path) {
            eprintln!("keel: {why}");
            return Ok(ExitCode::from(1));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn install_args(argv: &[&str]) -> InstallArgs {
        match crate::cli::Cli::try_parse_from(["keel", "install"].iter().chain(argv)).unwrap().command {
            crate::cli::Command::Install(a) => a,
            other => panic!("{other:?}"),
        }
    }

    /// What keel-live (and a detached run) is handed: the consent as given, for exactly the
    /// plan's serials, every flag that changes what is written, the registry link, and the
    /// files as they are where it runs.
    #[test]
    fn the_consent_and_the_flags_are_carried_exactly() {
        let a = install_args(&["--profile", "p.toml", "--image", "http://r/i.zfs.zst", "--wipe-existing", "--clear-zfs-labels", "OLD1", "--registry", "https://reg:8443", "--token", "t0k", "--live", "/root/keel-live"]);
        let v = consented_args(&a, Path::new("/etc/keel-live/profile.toml"), Some(Path::new("/etc/keel-live/spec.toml")), &["S1".into(), "S2".into(), "OLD1".into()], Path::new("/var/lib/keel"));
        let line = v.join(" ");
        assert_eq!(
            line,
            "--profile /etc/keel-live/profile.toml --root / --spec /etc/keel-live/spec.toml --image http://r/i.zfs.zst --yes --confirm-serials S1,S2,OLD1 --wipe-existing --clear-zfs-labels OLD1 --registry https://reg:8443 --token t0k --journal-dir /var/lib/keel --command-timeout 600 --os-command-timeout 3600"
        );
        // what was not given is not added (no wipe of existing data, no foreign pools accepted)
        let b = install_args(&["--profile", "p.toml"]);
        let w = consented_args(&b, Path::new("p.toml"), None, &["S1".into()], Path::new("/var/lib/keel")).join(" ");
        assert!(!w.contains("--wipe-existing") && !w.contains("--accept-foreign-pools") && !w.contains("--registry") && !w.contains("--spec"), "{w}");
        assert!(w.contains("--yes --confirm-serials S1 "), "{w}");
    }
}
