//! The install journal: one JSON object per line, appended and synced as each step starts,
//! finishes or fails. It lives in the rescue system (`/var/lib/keel/`) and, once the root
//! file system exists, is mirrored into the target (`/mnt/keel/var/lib/keel/`), so a re-run
//! after a reboot of the rescue system still finds it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::host::{Host, HostError};
use crate::plan::Plan;

/// Where, inside the target root, the journal is mirrored.
pub const TARGET_JOURNAL: &str = "var/lib/keel/install.jsonl";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Record {
    /// First line: which install this journal belongs to.
    Begin { hostname: String, profile_sha256: String, plan_sha256: String, serials: Vec<String>, keel_version: String },
    Note { message: String },
    Start { step: String, n: usize, total: usize, title: String },
    Command { step: String, command: String },
    /// Found already done by its check (not run again).
    Skipped { step: String, why: String },
    Done { step: String, seconds: f64 },
    /// Recorded done earlier; its check still holds.
    Verified { step: String },
    Failed { step: String, error: String },
    /// A pool keel created (or found on exactly the plan's partitions): from now on this GUID
    /// is the pool, whatever else carries its name.
    Pool { pool: String, guid: String, members: Vec<String> },
    /// Stopped on request after this step (`--until`).
    Paused { after: String },
    Finished {
        seconds: f64,
        /// Of `seconds`: in the plan's own commands (what a plain script of the plan runs too).
        #[serde(default)]
        planned_seconds: f64,
        /// In the other commands keel runs (its checks, the image receive) and its waits;
        /// the rest is keel itself (journal, files, logs).
        #[serde(default)]
        other_seconds: f64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub ts: String,
    #[serde(flatten)]
    pub record: Record,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path} line {line} is damaged ({why}). keel will not guess what was done: look at the file; to start over (this wipes the target disks again) move it away or pass --restart")]
    Damaged { path: String, line: usize, why: String },
    #[error("journal {path} belongs to another install: {what}. Finish that one with its own profile, or pass --restart to start over with this plan (this wipes the target disks again)")]
    Mismatch { path: String, what: String },
    #[error("writing the journal: {0}")]
    Host(#[from] HostError),
}

/// What a journal belongs to (its begin record).
pub struct Owner<'a> {
    pub hostname: &'a str,
    pub serials: Vec<String>,
    pub profile_sha256: &'a str,
    pub plan_sha256: String,
}

pub struct Journal {
    pub path: PathBuf,
    /// Copy inside the target root, written once the target is mounted.
    pub mirror: Option<PathBuf>,
    pub entries: Vec<Entry>,
}

pub fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Parses journal text; every line must be a whole, known record, numbered in order.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Entry>, JournalError> {
    let damaged = |line: usize, why: String| JournalError::Damaged { path: path.display().to_string(), line, why };
    let mut entries = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if !line.ends_with('\n') {
            return Err(damaged(i + 1, "the last line is cut short (a write was interrupted)".into()));
        }
        let e: Entry = serde_json::from_str(line).map_err(|e| damaged(i + 1, e.to_string()))?;
        if e.seq != i as u64 {
            return Err(damaged(i + 1, format!("sequence number {} where {} was expected", e.seq, i)));
        }
        if (i == 0) != matches!(e.record, Record::Begin { .. }) {
            return Err(damaged(i + 1, "a journal starts with exactly one begin record".into()));
        }
        entries.push(e);
    }
    Ok(entries)
}

impl Journal {
    /// Opens the journal at `path` for `plan`: loads it if it exists and belongs to this
    /// install, or starts a new one. `restart` moves an existing journal aside first.
    pub fn open(host: &mut dyn Host, path: &Path, plan: &Plan, restart: bool) -> Result<Journal, JournalError> {
        Journal::open_for(host, path, &Owner { hostname: &plan.hostname, serials: plan.serials(), profile_sha256: &plan.profile.sha256, plan_sha256: plan.digest() }, restart)
    }

    /// [`Journal::open`] for any run that names itself by host, disks, profile and plan
    /// digest (the install, `keel disk replace`).
    pub fn open_for(host: &mut dyn Host, path: &Path, plan: &Owner, restart: bool) -> Result<Journal, JournalError> {
        let mut j = Journal { path: path.to_path_buf(), mirror: None, entries: Vec::new() };
        if host.exists(path) {
            let text = host.read_file(path)?;
            if restart {
                let aside = path.with_extension(format!("jsonl.replaced-{}", std::process::id()));
                host.write_file(&aside, text.as_bytes(), 0o600)?;
                host.write_file(path, b"", 0o600)?;
            } else {
                j.entries = parse(path, &text)?;
            }
        }
        match j.entries.first().map(|e| &e.record) {
            Some(Record::Begin { hostname, profile_sha256, plan_sha256, serials, .. }) => {
                let mut what = Vec::new();
                if hostname != plan.hostname {
                    what.push(format!("host {hostname} (journal) vs {} (now)", plan.hostname));
                }
                if serials != &plan.serials {
                    what.push(format!("disks {} (journal) vs {} (now)", serials.join(","), plan.serials.join(",")));
                }
                if profile_sha256 != plan.profile_sha256 {
                    what.push(format!("profile sha256 {} (journal) vs {} (now)", &profile_sha256[..12.min(profile_sha256.len())], &plan.profile_sha256[..12.min(plan.profile_sha256.len())]));
                }
                if what.is_empty() && plan_sha256 != &plan.plan_sha256 {
                    what.push("the plan differs (layout or steps changed)".into());
                }
                if !what.is_empty() {
                    return Err(JournalError::Mismatch { path: path.display().to_string(), what: what.join("; ") });
                }
            }
            _ => {
                j.append(host, Record::Begin {
                    hostname: plan.hostname.to_string(),
                    profile_sha256: plan.profile_sha256.to_string(),
                    plan_sha256: plan.plan_sha256.clone(),
                    serials: plan.serials.clone(),
                    keel_version: env!("CARGO_PKG_VERSION").to_string(),
                })?;
            }
        }
        Ok(j)
    }

    pub fn append(&mut self, host: &mut dyn Host, record: Record) -> Result<&Entry, JournalError> {
        let entry = Entry { seq: self.entries.len() as u64, ts: now(), record };
        let mut line = serde_json::to_vec(&entry).expect("records serialize");
        line.push(b'\n');
        host.append_file(&self.path, &line)?;
        if let Some(m) = self.mirror.clone() {
            host.append_file(&m, &line)?;
        }
        self.entries.push(entry);
        Ok(self.entries.last().expect("just pushed"))
    }

    /// Starts mirroring into the target: writes the whole journal there, then every new line.
    pub fn mirror_into(&mut self, host: &mut dyn Host, target_root: &Path) -> Result<(), JournalError> {
        let m = target_root.join(TARGET_JOURNAL);
        if self.mirror.as_ref() == Some(&m) {
            return Ok(());
        }
        self.mirror = Some(m);
        self.mirror_again(host)
    }

    /// Writes the copy in the target whole again (after something replaced it, such as a
    /// rollback of the root dataset); nothing when the journal is not mirrored.
    pub fn mirror_again(&mut self, host: &mut dyn Host) -> Result<(), JournalError> {
        match self.mirror.take() {
            Some(m) => {
                let text: String = self.entries.iter().map(|e| serde_json::to_string(e).expect("serialize") + "\n").collect();
                host.write_file(&m, text.as_bytes(), 0o600)?;
                self.mirror = Some(m);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Steps recorded as done (or found done) and not failed since.
    pub fn done(&self) -> BTreeSet<String> {
        let mut done = BTreeSet::new();
        for e in &self.entries {
            match &e.record {
                Record::Done { step, .. } | Record::Skipped { step, .. } | Record::Verified { step } => {
                    done.insert(step.clone());
                }
                Record::Start { step, .. } | Record::Failed { step, .. } => {
                    done.remove(step);
                }
                _ => {}
            }
        }
        done
    }

    /// The GUID recorded for `pool` (the last one: a restart records a new pool).
    pub fn pool_guid(&self, pool: &str) -> Option<String> {
        pool_guid(&self.entries, pool)
    }

    pub fn finished(&self) -> bool {
        matches!(self.entries.last().map(|e| &e.record), Some(Record::Finished { .. }))
    }
}

impl Record {
    /// One line for people: `keel status` and the progress output of `keel install`.
    pub fn describe(&self) -> String {
        match self {
            Record::Begin { hostname, serials, keel_version, .. } => format!("begin install of {hostname} on {} (keel {keel_version})", serials.join(", ")),
            Record::Note { message } => format!("      note: {message}"),
            Record::Start { step, n, total, title } => format!("[{n}/{total}] {step}: {title}"),
            Record::Command { command, .. } => format!("      $ {command}"),
            Record::Skipped { why, .. } => format!("      skipped: {why}"),
            Record::Done { seconds, .. } => format!("      done ({seconds:.1}s)"),
            Record::Verified { step } => format!("      {step}: done earlier, still holds"),
            Record::Failed { step, error } => format!("      {step} FAILED: {}", error.replace('\n', "\n        ")),
            Record::Pool { pool, guid, members } => format!("      pool {pool} is GUID {guid} on {}", members.join(", ")),
            Record::Paused { after } => format!("paused after {after} (--until)"),
            Record::Finished { seconds, planned_seconds, other_seconds } => format!("finished in {seconds:.1}s ({})", time_split(*seconds, *planned_seconds, *other_seconds)),
        }
    }
}

/// The GUID the entries record for `pool` (the last one).
pub fn pool_guid(entries: &[Entry], pool: &str) -> Option<String> {
    entries.iter().rev().find_map(|e| match &e.record {
        Record::Pool { pool: p, guid, .. } if p == pool => Some(guid.clone()),
        _ => None,
    })
}

/// Where an install's time went: the plan's commands, keel's other commands and waits, keel
/// itself (what is left), with keel's own share of the whole.
pub fn time_split(seconds: f64, planned: f64, other: f64) -> String {
    let own = (seconds - planned - other).max(0.0);
    let share = if seconds > 0.0 { own / seconds * 100.0 } else { 0.0 };
    format!("the plan's commands {planned:.1}s, keel's checks and waits {other:.1}s, keel itself {own:.1}s = {share:.2} %")
}

/// Human summary of a journal for `keel status`: each record with its time.
pub fn summary(entries: &[Entry]) -> String {
    entries.iter().map(|e| format!("{}  {}\n", e.ts, e.record.describe())).collect()
}

/// The installed package versions the package step noted (one note per run of that step).
pub fn version_notes(entries: &[Entry]) -> impl Iterator<Item = &str> {
    notes(entries, super::engine::VERSIONS_NOTE)
}

/// The journal notes that start with `prefix` (without it), in order.
pub fn notes<'a>(entries: &'a [Entry], prefix: &'a str) -> impl Iterator<Item = &'a str> {
    entries.iter().filter_map(move |e| match &e.record {
        Record::Note { message } => message.strip_prefix(prefix),
        _ => None,
    })
}

/// Seconds per step (the last run of each step that did work) and per group, in plan order:
/// the table `keel install` prints at the end. Steps found done are listed with 0.
pub fn step_times(entries: &[Entry], plan: &Plan) -> String {
    let mut secs: std::collections::BTreeMap<&str, f64> = Default::default();
    for e in entries {
        match &e.record {
            Record::Done { step, seconds } => {
                secs.insert(step, *seconds);
            }
            Record::Skipped { step, .. } => {
                secs.entry(step).or_insert(0.0);
            }
            _ => {}
        }
    }
    let mut rows = Vec::new();
    let mut groups: Vec<(&str, f64)> = Vec::new();
    for step in &plan.steps {
        let Some(t) = secs.get(step.id.as_str()) else { continue };
        rows.push([step.id.clone(), step.group.name().to_string(), format!("{t:.1}")]);
        // a phase's steps need not be next to each other (with an image, os.image comes
        // among the dataset steps): summed per phase, in order of first appearance
        match groups.iter_mut().find(|(g, _)| *g == step.group.name()) {
            Some((_, total)) => *total += t,
            None => groups.push((step.group.name(), *t)),
        }
    }
    let mut out = String::from("step times (seconds):\n");
    let split = entries.iter().rev().find_map(|e| match &e.record {
        Record::Finished { seconds, planned_seconds, other_seconds } => Some(time_split(*seconds, *planned_seconds, *other_seconds)),
        _ => None,
    });
    out.push_str(&crate::table::indent(&crate::table::render(&["STEP", "PHASE", "SECONDS"], &rows)));
    let total: f64 = groups.iter().map(|(_, t)| t).sum();
    out.push_str("phase times (seconds):\n");
    let rows: Vec<[String; 2]> = groups.iter().map(|(g, t)| [g.to_string(), format!("{t:.1}")]).chain([["total".to_string(), format!("{total:.1}")]]).collect();
    out.push_str(&crate::table::indent(&crate::table::render(&["PHASE", "SECONDS"], &rows)));
    if let Some(split) = split {
        out.push_str(&format!("time of this run: {split}\n"));
    }
    out
}

/// After a reboot of the rescue system its journal is gone, but the target keeps a copy once
/// the root file system exists. If `path` is missing and the plan's own rpool is there (on
/// exactly the plan's partitions, searched only there: `pools::standing`), the copy is read
/// and put back. An exported rpool is looked at through a read-only import by its GUID (nothing
/// is written to any disk) and exported again; the engine then imports it by that GUID.
/// Returns what was done, or `None` when there was nothing to recover.
pub fn recover_from_target(host: &mut dyn Host, plan: &Plan, path: &Path) -> Result<Option<String>, HostError> {
    use super::pools::{self, Standing};
    use crate::plan::TARGET_ROOT;
    use std::time::Duration;
    let t = Duration::from_secs(120);
    let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    if host.exists(path) || plan.targets.is_empty() || !pools::zfs_ready(host) {
        return Ok(None);
    }
    let (found, looked) = match pools::standing(host, plan, "rpool", None)? {
        Standing::Imported(f) => (f, false),
        Standing::Exported(f) => {
            // last imported by this rescue system before its reboot (another host id): -f
            let (_, out) = pools::import_by_guid(host, plan, "rpool", &f.guid, true, true)?;
            if !out.success() {
                return Ok(None);
            }
            (f, true)
        }
        // not the plan's pool (or none): never imported, never touched
        _ => return Ok(None),
    };
    let leave = |host: &mut dyn Host| -> Result<(), HostError> {
        if looked {
            host.run(&argv(&["umount", "--recursive", TARGET_ROOT]), t)?;
            host.run(&argv(&["zpool", "export", "rpool"]), t)?;
        }
        Ok(())
    };
    host.run(&argv(&["zfs", "mount", "rpool/ROOT/pve-1"]), t)?;
    let copy = Path::new(TARGET_ROOT).join(TARGET_JOURNAL);
    if !host.exists(&copy) {
        leave(host)?;
        return Ok(None);
    }
    let text = host.read_file(&copy)?;
    // A root received from an image carries the journal of the node the image was made on
    // until this install's own replaces it: another node's journal is not ours to resume.
    let ours = text.lines().next().is_some_and(|l| l.contains(&format!("\"hostname\":\"{}\"", plan.hostname)));
    // A journal that recorded another GUID for rpool belongs to another pool of that name.
    let entries = parse(&copy, &text).unwrap_or_default();
    let same_pool = pool_guid(&entries, "rpool").is_none_or(|g| g == found.guid);
    // An install that reached its export is complete (the copy is closed right there): the
    // disks hold a finished system, not an install to resume. Leave the pool as found.
    let complete = text.contains("\"event\":\"start\",\"step\":\"finish.export\"");
    if !ours || !same_pool || complete {
        if !looked {
            host.run(&argv(&["umount", "--recursive", TARGET_ROOT]), t)?;
        }
        leave(host)?;
        return Ok(None);
    }
    host.write_file(path, text.as_bytes(), 0o600)?;
    leave(host)?;
    Ok(Some(format!("the journal was missing here; recovered it from {} on the target's rpool (GUID {}, on {})", copy.display(), found.guid, found.members.join(", "))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, rec: &str) -> String {
        format!("{{\"seq\":{seq},\"ts\":\"2026-11-27T00:00:00.000Z\",{rec}}}\n")
    }

    const BEGIN: &str = "\"event\":\"begin\",\"hostname\":\"h\",\"profile_sha256\":\"p\",\"plan_sha256\":\"d\",\"serials\":[\"A\"],\"keel_version\":\"0\"";

    #[test]
    fn parses_and_tracks_done_steps() {
        let text = line(0, BEGIN)
            + &line(1, "\"event\":\"start\",\"step\":\"wipe.disk-a\",\"n\":1,\"total\":2,\"title\":\"t\"")
            + &line(2, "\"event\":\"done\",\"step\":\"wipe.disk-a\",\"seconds\":0.5")
            + &line(3, "\"event\":\"start\",\"step\":\"partition.disk-a\",\"n\":2,\"total\":2,\"title\":\"t\"");
        let entries = parse(Path::new("j"), &text).unwrap();
        let j = Journal { path: "j".into(), mirror: None, entries };
        assert_eq!(j.done().into_iter().collect::<Vec<_>>(), ["wipe.disk-a"]);
        assert!(!j.finished());
    }

    #[test]
    fn damaged_journals_are_refused_with_the_line() {
        let cut = line(0, BEGIN) + &line(1, "\"event\":\"done\",\"step\":\"x\",\"seconds\":1").trim_end()[..20];
        let e = parse(Path::new("j"), &cut).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("cut short"), "{e}");
        let edited = line(0, BEGIN) + &line(1, "\"event\":\"done\",\"step\":\"x\",\"seconds\":\"fast\"");
        let e = parse(Path::new("j"), &edited).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        let reordered = line(0, BEGIN) + &line(5, "\"event\":\"note\",\"message\":\"m\"");
        assert!(parse(Path::new("j"), &reordered).unwrap_err().to_string().contains("sequence number 5"));
        let unknown = line(0, BEGIN) + &line(1, "\"event\":\"teleport\"");
        assert!(parse(Path::new("j"), &unknown).unwrap_err().to_string().contains("line 2"));
        let headless = line(0, "\"event\":\"note\",\"message\":\"m\"");
        assert!(parse(Path::new("j"), &headless).unwrap_err().to_string().contains("begin record"));
    }
}
