//! `keel disk replace`: the command around `keel_installer::exec::replace` (which finds, plans,
//! checks and runs): the plan shown, the operator's consent, progress on stdout, the profile
//! line to change, and the registry told (`disk-replaced`).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use keel_installer::exec::replace as run;
use keel_installer::exec::journal::{self, Record};
use keel_installer::exec::SystemHost;
use keel_installer::hardware;
use keel_installer::plan::{INSTALLED_CREDENTIALS, TARGET_ROOT};
use serde_json::json;

use crate::cli::DiskReplaceArgs;
use crate::phone_home::Credentials;

pub fn replace(a: &DiskReplaceArgs) -> Result<ExitCode> {
    if !a.profile.exists() {
        eprintln!("keel: no profile at {}: on the node keel keeps its copy there; in a rescue system give the node's profile with --profile FILE; nothing was written", a.profile.display());
        return Ok(ExitCode::from(1));
    }
    let Some(loaded) = crate::commands::load_profile(&a.profile)? else { return Ok(ExitCode::from(1)) };
    let profile = loaded.profile;
    let text = std::fs::read_to_string(&a.profile).with_context(|| format!("reading {}", a.profile.display()))?;
    let inv = hardware::probe(Path::new("/")).context("detecting the drives")?;
    let mut host = SystemHost;
    // a rescue system without ZFS (Hetzner's): with keel-live, the replace runs there
    if !Path::new("/sys/module/zfs").exists() {
        if let Some(files) = crate::live::find(a.live.live.as_deref())? {
            return to_live(a, &profile, &inv, &files);
        }
    }
    let plan = match run::load(&mut host, &inv, &profile, &text, &a.new_serial, inv.firmware, a.wipe_existing) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("keel: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    print!("{}", plan.describe());
    if a.dry_run {
        // the checks the run makes before it writes (tools, the new drive, something to do),
        // with the journal read, not written
        let journal = run::read_journal(&mut host, &a.journal_dir, &plan);
        if let Err(e) = run::preflight(&mut host, &plan, &inv, &journal, a.wipe_existing) {
            eprintln!("keel: {e}");
            println!("dry run: nothing was done; the run would stop there");
            return Ok(ExitCode::from(1));
        }
        println!("dry run: nothing was done");
        return Ok(ExitCode::SUCCESS);
    }
    let mut journal = match run::journal(&mut host, &a.journal_dir, &plan, a.restart) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("keel: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    if let Err(e) = run::preflight(&mut host, &plan, &inv, &journal, a.wipe_existing) {
        eprintln!("keel: {e}");
        return Ok(ExitCode::from(1));
    }
    if journal.finished() {
        println!("this replace finished earlier ({}); checking that it still holds", journal.path.display());
    }
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            eprintln!("keel: no terminal to ask for confirmation: run it interactively, or with --yes (the new drive is named by --new {}); nothing was written", a.new_serial);
            return Ok(ExitCode::from(1));
        }
        if let Err(e) = crate::commands::ask_hostname(&format!("to write to the new drive {}", plan.members.new.serial), &plan.hostname)? {
            eprintln!("keel: {e}");
            return Ok(ExitCode::from(1));
        }
    }
    let started_at = journal.entries.first().map(|e| e.ts.clone()).unwrap_or_default();
    let t0 = std::time::Instant::now();
    // in a rescue system the node's root is mounted until the last step (the export): its
    // registry credentials are read before it
    let rescue = !plan.rescue.is_empty();
    let mut opts = run::Options::default();
    if rescue {
        opts.stop_before = Some(EXPORT_STEP.to_string());
    }
    let mut say = |line: &str| {
        println!("{line}");
        std::io::stdout().flush().ok();
    };
    let result = run::run(&mut host, &plan, &mut journal, &opts, run::Spent::default(), &mut say);
    let spent = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("keel: error: {e}");
            eprintln!("keel: the journal {} says what was done; run the same command again to continue", journal.path.display());
            return Ok(ExitCode::from(1));
        }
    };
    let m = &plan.members;
    // the event is fixed when the replace first finishes (kept in the journal): a re-run sends
    // the same one, which the registry stores once, and no more once it was recorded
    let event = match journal::notes(&journal.entries, EVENT_NOTE).last() {
        Some(kept) => serde_json::from_str(kept).context("the disk-replaced event kept in the journal")?,
        None => {
            let e = json!({
                "old_serial": m.old_serial,
                "new_serial": m.new.serial,
                "survivor_serial": m.survivor.serial,
                "started_at": started_at,
                "seconds": (t0.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            });
            journal.append(&mut host, Record::Note { message: format!("{EVENT_NOTE}{e}") })?;
            e
        }
    };
    let old = event["old_serial"].as_str().unwrap_or("the dead drive");
    println!("{old} replaced: rpool and datapool are mirrors of {} and {} again; both drives carry the boot loader", m.survivor.serial, m.new.serial);
    match &plan.profile_change {
        Some((line, before, after)) => {
            // in a rescue system the node's copy is in its root, not the file given
            let copy = if rescue { format!("{TARGET_ROOT}{}", keel_installer::plan::INSTALLED_PROFILE) } else { a.profile.display().to_string() };
            println!("the node's copy of its profile ({copy}) now pins {}; change the operator's copy (and the registry's) the same way:", m.new.serial);
            println!("  line {line}: {}", before.trim());
            println!("      becomes: {}", after.trim());
        }
        None => println!("the profile pins no drive serials (disks.serials): nothing to change in it"),
    }
    let credentials = if rescue { Path::new(TARGET_ROOT).join(INSTALLED_CREDENTIALS.trim_start_matches('/')) } else { PathBuf::from(INSTALLED_CREDENTIALS) };
    if journal::notes(&journal.entries, TOLD_NOTE).next().is_some() {
        println!("registry: disk-replaced was recorded earlier");
    } else if tell_registry(&event, &credentials) {
        journal.append(&mut host, Record::Note { message: TOLD_NOTE.to_string() })?;
    }
    if rescue {
        if let Err(e) = run::run(&mut host, &plan, &mut journal, &run::Options::default(), spent, &mut say) {
            eprintln!("keel: error: {e}");
            eprintln!("keel: the replace itself is done; the pools are still imported under {TARGET_ROOT}: run the same command again to export them (the node cannot import them at boot before that)");
            return Ok(ExitCode::from(1));
        }
        println!("both pools are exported: boot the node from its drives");
    }
    Ok(ExitCode::SUCCESS)
}

/// No ZFS here, keel-live at hand: what the drives show, the operator's consent, then the
/// switch; keel-live runs `keel disk replace --new SERIAL --yes` with the node's profile.
fn to_live(a: &DiskReplaceArgs, profile: &keel_installer::profile::Profile, inv: &hardware::Inventory, files: &crate::live::LiveFiles) -> Result<ExitCode> {
    let about = match run::live_handover(inv, profile, &a.new_serial, a.wipe_existing) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("keel: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    println!("{}: replace a failed drive from a rescue system without ZFS (no /sys/module/zfs)", profile.node.hostname);
    print!("{about}");
    if a.dry_run {
        println!("dry run: nothing was done (keel-live was not started)");
        return Ok(ExitCode::SUCCESS);
    }
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            eprintln!("keel: no terminal to ask for confirmation: run it interactively, or with --yes (the new drive is named by --new {}); nothing was written", a.new_serial);
            return Ok(ExitCode::from(1));
        }
        if let Err(e) = crate::commands::ask_hostname(&format!("to switch to keel-live and write to the new drive {}", a.new_serial), &profile.node.hostname)? {
            eprintln!("keel: {e}");
            return Ok(ExitCode::from(1));
        }
    }
    let live_profile = Path::new("/").join(keel_installer::live::PROFILE_PATH);
    let mut keel: Vec<String> = ["disk", "replace", "--new", &a.new_serial, "--profile", &live_profile.display().to_string(), "--yes", "--journal-dir", keel_installer::live::JOURNAL_DIR].map(String::from).to_vec();
    if a.wipe_existing {
        keel.push("--wipe-existing".into());
    }
    let job = crate::live::Job {
        hostname: profile.node.hostname.clone(),
        keel,
        after_success: a.live.live_after_success,
        after_failure: a.live.live_after_failure,
        profile: &a.profile,
        spec: None,
        journal_dir: &a.journal_dir,
        cmdline: Path::new("/proc/cmdline"),
    };
    crate::live::switch(job, files, "this system cannot import the pools (no ZFS module: /sys/module/zfs is missing)")
}

const EXPORT_STEP: &str = "replace.export";

const EVENT_NOTE: &str = "disk-replaced event: ";
const TOLD_NOTE: &str = "registry: disk-replaced recorded";

/// The registry the node enrolled with learns of the replace; without one, said and skipped.
/// Whether the registry has it.
fn tell_registry(event: &serde_json::Value, path: &Path) -> bool {
    let creds = match Credentials::load(path) {
        Ok(c) => c,
        Err(_) => {
            println!("registry: no credentials on this node ({}): not told", path.display());
            return false;
        }
    };
    let Some(node) = creds.enrollment.clone() else {
        println!("registry: this node never enrolled ({}): not told", path.display());
        return false;
    };
    let mut last = String::new();
    for attempt in 0..3 {
        match creds.registry().and_then(|r| r.disk_replaced(&node, event)) {
            Ok(()) => {
                println!("registry: disk-replaced recorded for {} at {}", node.hostname, creds.registry);
                return true;
            }
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(Duration::from_secs(2 << attempt));
    }
    eprintln!("keel: the registry was not told ({last}); the replace itself is done (the same command again tries once more)");
    false
}
