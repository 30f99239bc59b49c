//! Runs `keel disk replace` on the node through a [`Host`]: reads the pools and the survivor's
//! table, checks the new drive, then the steps of [`crate::replace::plan`] through a journal of
//! their own (`/var/lib/keel/disk-replace-SERIAL.jsonl`): a step recorded done is not run
//! again, a step not recorded is checked first (a power cut during the resilver leaves the new
//! drive in the pools: found, not replaced twice), and the resilver is followed to its end.
//!
//! In a rescue system (its root not on ZFS) the pools are found exported on the survivor's
//! partitions (`zpool import -d PART`, one partition at a time), imported read-only to read
//! who is who and exported again before anything is shown; the replace imports them by GUID,
//! mounts the node's root for the boot loader and the profile copy, and exports them at its end.

use std::path::Path;
use std::time::{Duration, Instant};

use super::checks::{fs_type, s, table_differs};
use super::engine::ExecError;
use super::host::{command_line, Host, HostError};
use super::journal::{Journal, Owner, Record};
use crate::hardware::{DiskKind, FirmwareMode, Inventory};
use crate::plan::{Step, POOLS, TARGET_ROOT};
use crate::profile::Profile;
use crate::replace::status::{self, PoolStatus, Scan};
use crate::replace::{self, import_command, ReplacePlan, RescuePool};
use super::pools::parse_scan;

const TIMEOUT: Duration = Duration::from_secs(120);

/// `zpool status -P` and `-g` of an imported pool, read together; None when it is not imported.
pub fn pool_status(host: &mut dyn Host, pool: &str) -> Result<Option<PoolStatus>, HostError> {
    let p = host.run(&s(&["zpool", "status", "-P", pool]), TIMEOUT)?;
    if !p.success() {
        return Ok(None);
    }
    let g = host.run(&s(&["zpool", "status", "-g", pool]), TIMEOUT)?;
    match status::parse(&p.stdout, &g.stdout) {
        Ok(st) => Ok(Some(st)),
        // the pool changed between the two listings (a resilver ended): once more
        Err(_) => {
            let p = host.run(&s(&["zpool", "status", "-P", pool]), TIMEOUT)?;
            let g = host.run(&s(&["zpool", "status", "-g", pool]), TIMEOUT)?;
            status::parse(&p.stdout, &g.stdout).map(Some).map_err(|e| HostError::Io { path: format!("zpool status {pool}"), err: std::io::Error::other(e) })
        }
    }
}

fn pools(host: &mut dyn Host) -> Result<Vec<PoolStatus>, HostError> {
    let mut v = Vec::new();
    for &(pool, _) in POOLS {
        if let Some(st) = pool_status(host, pool)? {
            v.push(st);
        }
    }
    Ok(v)
}

/// Whether this is a rescue system: its root is not on ZFS (on the node it is rpool's).
pub fn in_rescue(host: &mut dyn Host) -> Result<bool, HostError> {
    let out = host.run(&s(&["findmnt", "--noheadings", "--output", "FSTYPE", "--mountpoint", "/"]), TIMEOUT)?;
    Ok(out.stdout.trim() != "zfs")
}

/// The drives the survivor may be: the profile's pinned ones when it pins any, else every
/// NVMe drive with a by-id name (keel installs on NVMe drives only); never the new one.
fn survivor_candidates<'a>(inv: &'a Inventory, p: &Profile, new_serial: &str) -> Vec<&'a crate::hardware::Disk> {
    inv.disks
        .iter()
        .filter(|d| d.serial != new_serial && d.kind == DiskKind::Nvme && d.stable_id.is_some() && (p.disks.serials.is_empty() || p.disks.serials.contains(&d.serial)))
        .collect()
}

/// In a rescue system without ZFS, before the switch to keel-live (which reads the pools,
/// plans and checks everything again before it writes): what the drives alone show. The new
/// drive must be here by serial with a by-id name, not what this system booted from, and blank
/// (or `--wipe-existing`); a survivor candidate must be here. Returns what keel-live will do,
/// for the operator's consent.
pub fn live_handover(inv: &Inventory, p: &Profile, new_serial: &str, wipe_existing: bool) -> Result<String, String> {
    let new = inv.disks.iter().find(|d| d.serial == new_serial).ok_or_else(|| {
        format!("no drive with serial {new_serial} in this machine; drives found: {}. Give the new drive's serial (`keel detect` lists them); nothing was written", replace::names(inv))
    })?;
    let Some(id) = &new.stable_id else {
        return Err(format!("drive {new_serial} ({}) has no /dev/disk/by-id name: keel names drives by serial and will not write to it; nothing was written", new.name));
    };
    if inv.boot.disks.contains(&new.name) {
        return Err(format!("this system booted from {new_serial} ({}): keel will not write to the disk it runs from; nothing was written", new.name));
    }
    if (!new.partitions.is_empty() || new.in_use()) && !wipe_existing {
        return Err(format!(
            "the new drive {new_serial} is not blank ({}): if it may be destroyed, add --wipe-existing; nothing was written",
            if new.partitions.is_empty() { new.usage_summary() } else { format!("{} partition(s)", new.partitions.len()) }
        ));
    }
    let cands = survivor_candidates(inv, p, new_serial);
    if cands.is_empty() {
        return Err(format!("no drive here besides {new_serial} can hold the surviving copy{}; nothing was written", if p.disks.serials.is_empty() { String::new() } else { format!(" (the profile pins {})", p.disks.serials.join(", ")) }));
    }
    let about = |d: &crate::hardware::Disk| format!("{} ({}, {}, {})", d.serial, d.name, d.model, d.size_bytes);
    Ok(format!(
        "keel-live will import rpool and datapool from the surviving drive ({}), check that it is ONLINE in both and that {new_serial} is {}, print the plan, and only then partition the new drive {} (/dev/disk/by-id/{id}) like the survivor, replace the dead members, follow the resilver, put the boot loader on it and export both pools.\n",
        cands.iter().map(|d| about(d)).collect::<Vec<_>>().join(" or "),
        if wipe_existing { "not in a pool (its content is destroyed: --wipe-existing)" } else { "still blank" },
        about(new)
    ))
}

/// In a rescue system: each pool found exported on one candidate's partition (the listing of
/// `zpool import -d PART`, a partition at a time, never a directory). Two pools of one name
/// on the candidates are refused: which one is the node's is not for keel to guess.
fn exported_pools(host: &mut dyn Host, inv: &Inventory, p: &Profile, new_serial: &str) -> Result<Vec<RescuePool>, String> {
    let cands = survivor_candidates(inv, p, new_serial);
    let mut out = Vec::new();
    for &(pool, n) in POOLS {
        let mut found: Vec<(String, RescuePool)> = Vec::new();
        for d in &cands {
            let part = format!("/dev/disk/by-id/{}-part{n}", d.stable_id.as_deref().expect("candidates have one"));
            if !host.exists(Path::new(&part)) {
                continue;
            }
            let scan = host.run(&s(&["zpool", "import", "-d", &part]), TIMEOUT).map_err(|e| e.to_string())?;
            for f in parse_scan(&scan.stdout).into_iter().filter(|f| f.name == pool) {
                if !found.iter().any(|(_, r)| r.guid == f.guid) {
                    found.push((d.serial.clone(), RescuePool { pool: pool.to_string(), guid: f.guid, survivor_part: part.clone() }));
                }
            }
        }
        match found.len() {
            0 => return Err(format!(
                "no exported pool {pool} on partition {n} of {}: there is no survivor to copy from (is the pool imported elsewhere, or was this drive never keel's?); nothing was written",
                if cands.is_empty() { "any drive but the new one".to_string() } else { cands.iter().map(|d| d.serial.as_str()).collect::<Vec<_>>().join(", ") }
            )),
            1 => out.push(found.remove(0).1),
            _ => return Err(format!(
                "{} pools named {pool} on these drives: {}; keel will not guess which one is the node's: pin the survivor's serial in the profile's disks.serials; nothing was written",
                found.len(), found.iter().map(|(s, r)| format!("GUID {} on {s}", r.guid)).collect::<Vec<_>>().join(", ")
            )),
        }
    }
    Ok(out)
}

/// The pools of a replace in this rescue system that are imported already (a run that got
/// that far): their GUIDs and the survivor's partitions, from their status.
fn imported_rescue_pools(host: &mut dyn Host, statuses: &[PoolStatus], inv: &Inventory, p: &Profile, new_serial: &str) -> Result<Vec<RescuePool>, String> {
    let cands = survivor_candidates(inv, p, new_serial);
    let mut out = Vec::new();
    for st in statuses {
        // the node's root would be mounted over this system's own: only under keel's altroot
        let altroot = host.run(&s(&["zpool", "get", "-H", "-o", "value", "altroot", &st.name]), TIMEOUT).map_err(|e| e.to_string())?.stdout.trim().to_string();
        if altroot != TARGET_ROOT {
            return Err(format!(
                "{} is imported in this rescue system with altroot {altroot:?}, not {TARGET_ROOT}: the node's root could be mounted over this system's. Export the pools (zpool export {}) and run again: keel imports them itself; nothing was written",
                st.name, statuses.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(" ")
            ));
        }
        let guid = host.run(&s(&["zpool", "list", "-H", "-o", "guid", &st.name]), TIMEOUT).map_err(|e| e.to_string())?.stdout.trim().to_string();
        let part = st.leaves.iter().filter_map(|l| l.path.clone()).find(|path| cands.iter().any(|d| d.stable_id.as_deref().is_some_and(|id| status::disk_of(path) == format!("/dev/disk/by-id/{id}"))));
        let part = part.ok_or_else(|| format!("{} is imported, but none of its members is on {}: not this replace's pool; export it first (zpool export {}); nothing was written", st.name,
            cands.iter().map(|d| d.serial.as_str()).collect::<Vec<_>>().join(", "), st.name))?;
        out.push(RescuePool { pool: st.name.clone(), guid, survivor_part: part });
    }
    Ok(out)
}

/// Finds who is who and plans the replace (reads only: in a rescue system the pools are
/// imported read-only for it and exported again).
pub fn load(host: &mut dyn Host, inv: &Inventory, p: &Profile, profile_text: &str, new_serial: &str, firmware: FirmwareMode, wipe_existing: bool) -> Result<ReplacePlan, String> {
    let herr = |e: HostError| e.to_string();
    if !host.exists(Path::new("/sys/module/zfs")) {
        return Err("this system has no ZFS module (/sys/module/zfs): a rescue system like Hetzner's offers only scripts that build OpenZFS, which keel never runs. Give keel-live (--live DIR, or keel-live/ beside keel): keel switches to it and replaces there; or boot the node degraded from its surviving drive and run keel disk replace there; nothing was written".into());
    }
    let rescue_system = in_rescue(host).map_err(herr)?;
    let mut statuses = pools(host).map_err(herr)?;
    let mut rescue = Vec::new();
    if rescue_system && statuses.is_empty() {
        rescue = exported_pools(host, inv, p, new_serial)?;
        let mut imported = Vec::new();
        let mut failed = None;
        for r in &rescue {
            match host.run(&import_command(r, true), TIMEOUT) {
                Ok(o) if o.success() => imported.push(r.pool.clone()),
                Ok(o) => { failed = Some(format!("`{}` failed: {}", command_line(&import_command(r, true)), o.stderr_tail(3))); break; }
                Err(e) => { failed = Some(e.to_string()); break; }
            }
        }
        let read = if failed.is_none() { pools(host).map_err(herr) } else { Ok(Vec::new()) };
        for pool in imported.iter().rev() {
            let out = host.run(&s(&["zpool", "export", pool]), TIMEOUT).map_err(herr)?;
            if !out.success() {
                return Err(format!("`zpool export {pool}` after reading it read-only failed: {}; export it before anything else", out.stderr_tail(3)));
            }
        }
        if let Some(f) = failed {
            return Err(format!("{f}; nothing was written"));
        }
        statuses = read?;
    } else if rescue_system {
        rescue = imported_rescue_pools(host, &statuses, inv, p, new_serial)?;
    }
    let m = replace::find(inv, p, &statuses, new_serial)?;
    let dev = host.resolve(Path::new(&m.survivor.by_id)).map_err(herr)?.display().to_string();
    let out = host.run(&s(&["sfdisk", "--json", &dev]), TIMEOUT).map_err(herr)?;
    if !out.success() {
        return Err(format!("`sfdisk --json {dev}` (the survivor {}) failed: {}", m.survivor.serial, out.stderr_tail(2)));
    }
    let layout = replace::survivor_layout(&out.stdout, &dev)?;
    replace::plan(m, layout, p, profile_text, firmware, wipe_existing, rescue)
}

/// The new drive may be written: not used by this system, and blank unless the operator said
/// `--wipe-existing` or this replace (its journal, or the pools) already wrote it.
pub fn preflight(host: &mut dyn Host, plan: &ReplacePlan, inv: &Inventory, journal: &Journal, wipe_existing: bool) -> Result<(), String> {
    if !host.is_root() {
        return Err("keel disk replace must run as root".into());
    }
    let mut tools: Vec<String> = vec!["sfdisk".into(), "wipefs".into()];
    for st in &plan.steps {
        for c in &st.commands {
            if !tools.contains(&c[0]) {
                tools.push(c[0].clone());
            }
        }
    }
    let missing: Vec<&String> = tools.iter().filter(|t| !host.has_program(t)).collect();
    if !missing.is_empty() {
        let packages: std::collections::BTreeSet<&str> = missing.iter().map(|t| super::preflight::package_of(t)).collect();
        return Err(format!(
            "missing programs: {}; install them first (apt install {}) and run again; nothing was written",
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            packages.into_iter().collect::<Vec<_>>().join(" ")
        ));
    }
    let m = &plan.members;
    let disk = inv.disks.iter().find(|d| d.serial == m.new.serial).ok_or_else(|| format!("the new drive {} is gone", m.new.serial))?;
    if disk.in_use() {
        return Err(format!("the new drive {} ({}) is in use: {}; keel never writes to a drive the running system uses", m.new.serial, disk.name, disk.usage_summary()));
    }
    let journaled = !journal.entries.iter().all(|e| matches!(e.record, Record::Begin { .. } | Record::Note { .. }));
    // a drive that is a whole, healthy member of both pools with no replace of ours behind it
    // (the survivor named after a replace that finished, or a replace done by hand)
    if !journaled && m.pools.iter().all(|p| matches!(p.member, crate::replace::Member::Present { resilvering: false })) {
        return Err(format!(
            "{} is already an ONLINE member of {} and nothing is resilvering: there is nothing to replace. If a drive died, name the one put in for it; nothing was written",
            m.new.serial, m.pools.iter().map(|p| p.pool.as_str()).collect::<Vec<_>>().join(" and ")
        ));
    }
    let ours = m.started() || journaled;
    if ours || wipe_existing {
        return Ok(());
    }
    let dev = host.resolve(Path::new(&m.new.by_id)).map_err(|e| e.to_string())?.display().to_string();
    let sig = host.run(&s(&["wipefs", "--noheadings", &dev]), TIMEOUT).map_err(|e| e.to_string())?;
    let signatures: Vec<&str> = sig.stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    if !disk.partitions.is_empty() || !signatures.is_empty() {
        return Err(format!(
            "the new drive {} ({dev}) is not blank: {}{}. keel writes only to a blank drive unless told: if its contents may be destroyed, run again with --wipe-existing; nothing was written",
            m.new.serial,
            if disk.partitions.is_empty() { String::new() } else { format!("{} partition(s) ", disk.partitions.len()) },
            if signatures.is_empty() { String::new() } else { format!("signatures: {}", signatures.join("; ")) }
        ));
    }
    Ok(())
}

/// Opens (or continues) the replace's journal.
pub fn journal(host: &mut dyn Host, dir: &Path, plan: &ReplacePlan, restart: bool) -> Result<Journal, String> {
    let owner = Owner {
        hostname: &plan.hostname,
        serials: vec![plan.members.survivor.serial.clone(), plan.members.new.serial.clone()],
        // the profile copy changes in the last step: the plan's digest stands for both
        profile_sha256: "-",
        plan_sha256: plan.digest(),
    };
    Journal::open_for(host, &dir.join(replace::journal_name(&plan.members.new.serial)), &owner, restart).map_err(|e| e.to_string())
}

/// This replace's journal as it stands, for a dry run: read if it is there, never written
/// (an unreadable one reads as none; the run itself says what is wrong with it).
pub fn read_journal(host: &mut dyn Host, dir: &Path, plan: &ReplacePlan) -> Journal {
    let path = dir.join(replace::journal_name(&plan.members.new.serial));
    let entries = if host.exists(&path) { host.read_file(&path).ok().and_then(|t| super::journal::parse(&path, &t).ok()).unwrap_or_default() } else { Vec::new() };
    Journal { path, mirror: None, entries }
}

pub struct Options {
    pub command_timeout: Duration,
    /// Between two looks at the resilver.
    pub poll: Duration,
    /// At least this long between two progress lines of the same figure.
    pub report_every: Duration,
    /// Stop (successfully) before this step: the rescue system's caller reads the node's
    /// registry credentials while its root is mounted, before the export.
    pub stop_before: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options { command_timeout: Duration::from_secs(1800), poll: Duration::from_secs(2), report_every: Duration::from_secs(10), stop_before: None }
    }
}

struct Run<'a> {
    host: &'a mut dyn Host,
    journal: &'a mut Journal,
    plan: &'a ReplacePlan,
    opts: &'a Options,
    say: &'a mut dyn FnMut(&str),
    /// Wall time in the steps' own commands.
    planned: Duration,
    /// In keel's checks and in following the resilver.
    other: Duration,
}

impl Run<'_> {
    fn record(&mut self, r: Record) -> Result<(), ExecError> {
        let line = r.describe();
        self.journal.append(self.host, r)?;
        (self.say)(&line);
        Ok(())
    }

    fn herr(step: &Step) -> impl Fn(HostError) -> ExecError + '_ {
        move |source| ExecError::Host { step: step.id.clone(), source }
    }

    /// Whether the step's effect is there already.
    fn done(&mut self, step: &Step) -> Result<Option<String>, ExecError> {
        let since = Instant::now();
        let r = self.check(step);
        self.other += since.elapsed();
        r
    }

    fn check(&mut self, step: &Step) -> Result<Option<String>, ExecError> {
        let m = &self.plan.members;
        let herr = Self::herr(step);
        Ok(match step.id.as_str() {
            "replace.partition" => {
                let dev = self.host.resolve(Path::new(&m.new.by_id)).map_err(&herr)?.display().to_string();
                table_differs(self.host, &dev, &self.plan.layout).map_err(&herr)?.is_none().then(|| "its table equals the survivor's".to_string())
            }
            "replace.settle" => {
                let missing: Vec<String> = self.plan.layout.partitions.iter().map(|p| m.new.part(p.number)).filter(|l| !self.host.exists(Path::new(l))).collect();
                missing.is_empty().then(|| "every partition link exists".to_string())
            }
            "replace.format-esp" => {
                let esp = m.new.part(1);
                (fs_type(self.host, &esp).map_err(&herr)? == "vfat").then(|| format!("{esp} holds vfat"))
            }
            "replace.rpool" | "replace.datapool" => {
                let pool = step.id.trim_start_matches("replace.");
                let pp = m.pools.iter().find(|p| p.pool == pool).expect("a pool step names a planned pool");
                let part = m.new.part(pp.partition);
                let st = pool_status(self.host, pool).map_err(&herr)?;
                st.filter(|st| st.leaves.iter().any(|l| l.path.as_deref() == Some(part.as_str()))).map(|_| format!("{part} is a member of {pool}"))
            }
            "replace.resilver" => {
                let all = pools(self.host).map_err(&herr)?;
                let settled = all.len() == crate::plan::POOLS.len() && all.iter().all(|p| !p.resilvering() && p.leaves.iter().all(|l| l.state == "ONLINE"));
                settled.then(|| "no resilver runs; every member ONLINE".to_string())
            }
            "replace.import" => {
                let mut ok = true;
                for r in &self.plan.rescue {
                    let out = self.host.run(&s(&["zpool", "get", "-H", "-p", "-o", "value", "guid,readonly", &r.pool]), TIMEOUT).map_err(&herr)?;
                    let v: Vec<&str> = out.stdout.lines().map(str::trim).collect();
                    ok &= out.success() && v == [r.guid.as_str(), "off"];
                }
                ok.then(|| "both pools are imported with their GUIDs, writable".to_string())
            }
            "replace.mount" => {
                let root = self.host.run(&s(&["findmnt", "--noheadings", "--output", "SOURCE", "--mountpoint", TARGET_ROOT]), TIMEOUT).map_err(&herr)?;
                let dev = self.host.run(&s(&["findmnt", "--noheadings", "--output", "TARGET", "--mountpoint", &format!("{TARGET_ROOT}/dev")]), TIMEOUT).map_err(&herr)?;
                (root.stdout.lines().any(|l| l.trim() == crate::image::ROOT_DATASET) && dev.success()).then(|| format!("{} is mounted at {TARGET_ROOT}", crate::image::ROOT_DATASET))
            }
            "replace.export" => {
                let mut imported = Vec::new();
                for r in &self.plan.rescue {
                    let out = self.host.run(&s(&["zpool", "list", "-H", "-o", "guid", &r.pool]), TIMEOUT).map_err(&herr)?;
                    if out.success() && out.stdout.trim() == r.guid {
                        imported.push(r.pool.as_str());
                    }
                }
                imported.is_empty().then(|| "neither pool is imported".to_string())
            }
            "replace.profile" => {
                let f = &step.files[0];
                let have = self.host.read_bytes(Path::new(&f.path)).ok();
                (have.as_deref() == Some(f.content.as_bytes())).then(|| format!("{} pins the new drive", f.path))
            }
            _ => None,
        })
    }

    fn command(&mut self, step: &Step, argv: &[String]) -> Result<(), ExecError> {
        self.record(Record::Command { step: step.id.clone(), command: command_line(argv) })?;
        let since = Instant::now();
        let out = self.host.run(argv, self.opts.command_timeout);
        self.planned += since.elapsed();
        let out = out.map_err(Self::herr(step))?;
        if !out.success() {
            // wipefs on a partition link that does not exist: nothing there to clear
            if argv[0] == "wipefs" && !self.host.exists(Path::new(argv.last().expect("argv"))) {
                return Ok(());
            }
            // nothing mounted there (a rescue system rebooted since the mount): nothing to unmount
            if argv[0] == "umount" && !self.host.run(&s(&["findmnt", "--mountpoint", argv.last().expect("argv")]), TIMEOUT).map_err(Self::herr(step))?.success() {
                return Ok(());
            }
            return Err(ExecError::Command { step: step.id.clone(), command: command_line(argv), code: out.code, stderr_tail: out.stderr_tail(5) });
        }
        Ok(())
    }

    /// Follows the resilver of both pools until it ends, a line of progress at a time.
    fn resilver(&mut self, step: &Step) -> Result<(), ExecError> {
        let start = Instant::now();
        let r = self.follow(step, start);
        self.other += start.elapsed();
        r
    }

    fn follow(&mut self, step: &Step, start: Instant) -> Result<(), ExecError> {
        let mut last_said = String::new();
        let mut said_at = Instant::now();
        loop {
            let all = pools(self.host).map_err(Self::herr(step))?;
            let mut figures = Vec::new();
            let mut running = false;
            for p in &all {
                match &p.scan {
                    Scan::Resilvering { detail, percent } => {
                        running = true;
                        figures.push(format!("{} {}{}", p.name, percent.map(|x| format!("{x:.1}% ")).unwrap_or_default(), detail));
                    }
                    Scan::Idle(s) if p.resilvering() => {
                        running = true;
                        figures.push(format!("{} waiting ({})", p.name, s));
                    }
                    Scan::Idle(s) => figures.push(format!("{} {}", p.name, if s.is_empty() { "idle" } else { s })),
                }
            }
            if !running {
                let bad: Vec<String> = all.iter().flat_map(|p| p.leaves.iter().filter(|l| l.state != "ONLINE").map(move |l| format!("{} {} {}", p.name, l.any_path().unwrap_or(&l.guid), l.state))).collect();
                if !bad.is_empty() {
                    return Err(ExecError::Check { step: step.id.clone(), message: format!("the resilver ended, but not every member is ONLINE: {} (see `zpool status -v`)", bad.join(", ")) });
                }
                return self.record(Record::Note { message: format!("resilver finished after {:.0}s: {}", start.elapsed().as_secs_f64(), figures.join("; ")) });
            }
            let line = figures.join("; ");
            if line != last_said && said_at.elapsed() >= self.opts.report_every || last_said.is_empty() {
                (self.say)(&format!("      resilver: {line}"));
                last_said = line;
                said_at = Instant::now();
            }
            self.host.sleep(self.opts.poll);
        }
    }

    fn step(&mut self, n: usize, total: usize, step: &Step) -> Result<(), ExecError> {
        let id = step.id.clone();
        // the pools imported, the root mounted and the pools exported again in a rescue system:
        // state of this system, not of a disk, made again when it is not so (the rescue
        // rebooted between two runs, or a run after the end imports them to check)
        let remade = matches!(id.as_str(), "replace.import" | "replace.mount" | "replace.export");
        if self.journal.done().contains(&id) && !(remade && self.done(step)?.is_none()) {
            // what a recorded step did must still be there (the journal is not taken on trust)
            if step.id != "replace.wipe" && step.id != "replace.boot" && self.done(step)?.is_none() && step.id != "replace.resilver" {
                return Err(ExecError::NoLongerHolds { step: id, what: format!("its effect is gone ({})", step.done_when) });
            }
            if step.id == "replace.resilver" {
                // a resilver can start again (a member came back): followed again
                self.resilver(step)?;
            }
            return self.record(Record::Verified { step: id });
        }
        let started = Instant::now();
        self.record(Record::Start { step: id.clone(), n, total, title: step.title.clone() })?;
        if let Some(why) = self.done(step)? {
            if step.id != "replace.resilver" {
                return self.record(Record::Skipped { step: id, why });
            }
        }
        for f in &step.files {
            self.host.write_file(Path::new(&f.path), f.content.as_bytes(), f.mode).map_err(Self::herr(step))?;
            self.record(Record::Note { message: format!("{id}: wrote {} ({} bytes)", f.path, f.content.len()) })?;
        }
        for c in &step.commands {
            self.command(step, c)?;
        }
        if step.id == "replace.settle" {
            let deadline = Instant::now() + Duration::from_secs(30);
            while self.done(step)?.is_none() {
                if Instant::now() >= deadline {
                    return Err(ExecError::Check { step: id, message: format!("the new drive's partition links did not appear under /dev/disk/by-id ({}-partN)", self.plan.members.new.by_id) });
                }
                self.host.sleep(Duration::from_millis(250));
            }
        }
        if step.id == "replace.resilver" {
            self.resilver(step)?;
        }
        if step.id == "replace.partition" {
            if let Some(diff) = {
                let dev = self.host.resolve(Path::new(&self.plan.members.new.by_id)).map_err(Self::herr(step))?.display().to_string();
                table_differs(self.host, &dev, &self.plan.layout).map_err(Self::herr(step))?
            } {
                return Err(ExecError::Check { step: id, message: format!("after sgdisk the new drive's table is not the survivor's: {diff}") });
            }
        }
        self.record(Record::Done { step: id, seconds: started.elapsed().as_secs_f64() })
    }
}

/// Time a run spent: in all, in the steps' own commands, in keel's checks and waits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spent {
    pub wall: Duration,
    pub planned: Duration,
    pub other: Duration,
}

/// Runs every step not done yet (up to `opts.stop_before`); `say` gets each line of progress.
/// `earlier`: what a call of this run that stopped before a step spent, counted into the
/// finish. Returns what this call spent.
pub fn run(host: &mut dyn Host, plan: &ReplacePlan, journal: &mut Journal, opts: &Options, earlier: Spent, say: &mut dyn FnMut(&str)) -> Result<Spent, ExecError> {
    let started = Instant::now();
    let total = plan.steps.len();
    let mut r = Run { host, journal, plan, opts, say, planned: Duration::ZERO, other: Duration::ZERO };
    for (i, step) in plan.steps.iter().enumerate() {
        if opts.stop_before.as_deref() == Some(step.id.as_str()) {
            return Ok(Spent { wall: started.elapsed(), planned: r.planned, other: r.other });
        }
        if let Err(e) = r.step(i + 1, total, step) {
            let _ = r.record(Record::Failed { step: step.id.clone(), error: e.to_string() });
            return Err(e);
        }
    }
    let spent = Spent { wall: started.elapsed(), planned: r.planned, other: r.other };
    let (secs, planned, other) = ((earlier.wall + spent.wall).as_secs_f64(), (earlier.planned + spent.planned).as_secs_f64(), (earlier.other + spent.other).as_secs_f64());
    r.record(Record::Finished { seconds: secs, planned_seconds: planned, other_seconds: other })?;
    Ok(spent)
}

#[cfg(test)]
mod tests;
