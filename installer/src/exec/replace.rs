//! Runs `keel disk replace` on the node through a [`Host`]: reads the pools and the survivor's
//! table, checks the new drive, then the steps of [`crate::replace::plan`] through a journal of
//! their own (`/var/lib/keel/disk-replace-SERIAL.jsonl`): a step recorded done is not run
//! again, a step not recorded is checked first (a power cut during the resilver leaves the new
//! drive in the pools: found, not replaced twice), and the resilver is followed to its end.

use std::path::Path;
use std::time::{Duration, Instant};

use super::checks::{fs_type, s, table_differs};
use super::engine::ExecError;
use super::host::{command_line, Host, HostError};
use super::journal::{Journal, Owner, Record};
use crate::hardware::{FirmwareMode, Inventory};
use crate::plan::Step;
use crate::profile::Profile;
use crate::replace::status::{self, PoolStatus, Scan};
use crate::replace::{self, ReplacePlan};

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
    for &(pool, _) in crate::plan::POOLS {
        if let Some(st) = pool_status(host, pool)? {
            v.push(st);
        }
    }
    Ok(v)
}

/// Finds who is who and plans the replace (reads only).
pub fn load(host: &mut dyn Host, inv: &Inventory, p: &Profile, profile_text: &str, new_serial: &str, firmware: FirmwareMode, wipe_existing: bool) -> Result<ReplacePlan, String> {
    let herr = |e: HostError| e.to_string();
    let pools = pools(host).map_err(herr)?;
    let m = replace::find(inv, p, &pools, new_serial)?;
    let dev = host.resolve(Path::new(&m.survivor.by_id)).map_err(herr)?.display().to_string();
    let out = host.run(&s(&["sfdisk", "--json", &dev]), TIMEOUT).map_err(herr)?;
    if !out.success() {
        return Err(format!("`sfdisk --json {dev}` (the survivor {}) failed: {}", m.survivor.serial, out.stderr_tail(2)));
    }
    let layout = replace::survivor_layout(&out.stdout, &dev)?;
    replace::plan(m, layout, p, profile_text, firmware, wipe_existing)
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

pub struct Options {
    pub command_timeout: Duration,
    /// Between two looks at the resilver.
    pub poll: Duration,
    /// At least this long between two progress lines of the same figure.
    pub report_every: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options { command_timeout: Duration::from_secs(1800), poll: Duration::from_secs(2), report_every: Duration::from_secs(10) }
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
        if self.journal.done().contains(&id) {
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

/// Runs every step not done yet; `say` gets each line of progress.
pub fn run(host: &mut dyn Host, plan: &ReplacePlan, journal: &mut Journal, opts: &Options, say: &mut dyn FnMut(&str)) -> Result<(), ExecError> {
    let started = Instant::now();
    let total = plan.steps.len();
    let mut r = Run { host, journal, plan, opts, say, planned: Duration::ZERO, other: Duration::ZERO };
    for (i, step) in plan.steps.iter().enumerate() {
        if let Err(e) = r.step(i + 1, total, step) {
            let _ = r.record(Record::Failed { step: step.id.clone(), error: e.to_string() });
            return Err(e);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let (planned, other) = (r.planned.as_secs_f64(), r.other.as_secs_f64());
    r.record(Record::Finished { seconds: secs, planned_seconds: planned, other_seconds: other })
}

#[cfg(test)]
mod tests;
