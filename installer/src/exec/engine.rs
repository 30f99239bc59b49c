//! Runs the disk phase of a plan, step by step, through the journal:
//! a step recorded done is verified (its effect must still be there) and not run again; a step
//! not recorded is checked first (its effect may exist from a run that died before writing the
//! journal) and run only if needed. Any failure names the step, the command, its exit code and
//! the end of its stderr, and leaves the journal saying exactly what was done.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::checks::{command_done, created_pool, table_differs, Done};
use super::host::{command_line, Host, HostError};
use super::journal::{Entry, Journal, JournalError, Record};
use super::pools::{self, Found, Standing};
use crate::image::{self, ROOT_DATASET};
use crate::plan::{Group, Plan, Step, FIRST_BOOT_CREDENTIALS, SELF_EXE, TARGET_ROOT};
use crate::profile::Profile;
use crate::verify;

#[derive(Debug, Clone)]
pub struct Options {
    /// Stop after this step (journal records a pause).
    pub until: Option<String>,
    /// Limit for each command.
    pub command_timeout: Duration,
    /// Limit for the long OS commands: mmdebstrap, update-initramfs, boot loaders.
    pub os_command_timeout: Duration,
    /// Test hook: exit the process right after this step's commands ran, before the journal
    /// records it done (what a power cut at the worst moment leaves behind).
    pub crash_after: Option<String>,
    /// Whether preflight checked ZFS (it does when pool or dataset steps will run).
    pub zfs_checked: bool,
    /// keel's own executable (copied into the target).
    pub self_exe: PathBuf,
    /// The registry credentials for the first-boot unit (JSON written by the agent); None when
    /// the install runs without a registry.
    pub first_boot_credentials: Option<PathBuf>,
    /// Opens the root image of a plan with one (`keel install --image`): a file, or a download
    /// that resumes with range requests.
    pub image_source: Option<ImageSource>,
}

/// Opens the image's bytes from the start (a function, so a resumed install opens it afresh).
#[derive(Clone)]
pub struct ImageSource(pub std::sync::Arc<dyn Fn() -> std::io::Result<Box<dyn std::io::Read + Send>> + Send + Sync>);

impl std::fmt::Debug for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImageSource")
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            until: None,
            command_timeout: Duration::from_secs(600),
            os_command_timeout: Duration::from_secs(3600),
            crash_after: None,
            zfs_checked: true,
            self_exe: PathBuf::from("/proc/self/exe"),
            first_boot_credentials: None,
            image_source: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("step {step} failed: `{command}` exited with code {code}{}", fmt_tail(.stderr_tail))]
    Command { step: String, command: String, code: i32, stderr_tail: String },
    #[error("step {step} failed: {source}")]
    Host { step: String, source: HostError },
    #[error("step {step}: {message}")]
    Check { step: String, message: String },
    #[error("step {step} is recorded done in the journal, but {what}: the disks changed since. Run with --restart to start over (this wipes the target disks again)")]
    NoLongerHolds { step: String, what: String },
    #[error(transparent)]
    Journal(#[from] JournalError),
}

fn fmt_tail(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; stderr ends with:\n  {}", tail.replace('\n', "\n  "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    Paused { after: String },
    AlreadyFinished,
}


struct Run<'a> {
    host: &'a mut dyn Host,
    journal: &'a mut Journal,
    plan: &'a Plan,
    opts: &'a Options,
    progress: &'a mut dyn FnMut(&Entry),
    profile: &'a Profile,
    /// The target root is mounted (so an error must unmount it).
    mounted: bool,
    /// Wall time in the plan's own commands.
    planned: Duration,
}

impl Run<'_> {
    fn record(&mut self, r: Record) -> Result<(), ExecError> {
        let e = self.journal.append(self.host, r)?.clone();
        (self.progress)(&e);
        Ok(())
    }

    fn run_command(&mut self, step: &Step, argv: &[String]) -> Result<(), ExecError> {
        let limit = if matches!(step.group, Group::Os | Group::Boot) { self.opts.os_command_timeout } else { self.opts.command_timeout };
        let step = step.id.as_str();
        self.record(Record::Command { step: step.to_string(), command: command_line(argv) })?;
        let since = Instant::now();
        let out = self.host.run(argv, limit);
        self.planned += since.elapsed();
        let out = out.map_err(|source| ExecError::Host { step: step.to_string(), source })?;
        if !out.success() {
            // A partition without a ZFS label has nothing to clear: wipefs follows anyway.
            if argv.get(1).map(String::as_str) == Some("labelclear") {
                return self.record(Record::Note { message: format!("{step}: `{}` found no label to clear ({})", command_line(argv), out.stderr_tail(1)) });
            }
            return Err(ExecError::Command { step: step.to_string(), command: command_line(argv), code: out.code, stderr_tail: out.stderr_tail(5) });
        }
        Ok(())
    }

    /// Step-level check: for partition steps, the whole table.
    fn table_check(&mut self, step: &Step) -> Result<Option<String>, ExecError> {
        if !step.id.starts_with("partition.disk-") {
            return Ok(None);
        }
        let t = self.plan.targets.iter().find(|t| step.disks.first() == Some(&t.serial)).expect("partition steps name their disk");
        let dev = self.host.resolve(Path::new(&t.by_id)).map_err(|source| ExecError::Host { step: step.id.clone(), source })?;
        table_differs(self.host, &dev.display().to_string(), &self.plan.layout).map_err(|source| ExecError::Host { step: step.id.clone(), source })
    }

    /// The step's effect is still there (for a step the journal says is done).
    fn verify(&mut self, step: &Step) -> Result<(), ExecError> {
        if let Some(diff) = self.table_check(step)? {
            return Err(ExecError::NoLongerHolds { step: step.id.clone(), what: format!("the partition table differs ({diff})") });
        }
        if step.id == "partition.settle" {
            return self.wait_for_partitions(step, Duration::ZERO);
        }
        for c in &step.commands {
            // The pool the journal recorded, found by its members and GUID (imported again
            // from the plan's partitions after a reboot of the rescue system).
            if let Some(pool) = created_pool(c) {
                if let Done::No = self.pool_done(step, pool)? {
                    return Err(ExecError::NoLongerHolds { step: step.id.clone(), what: format!("pool {pool} is not on the plan's partitions ({})", pools::planned_members(self.plan, pool).join(", ")) });
                }
                continue;
            }
            if let Done::No = command_done(self.host, c).map_err(|source| ExecError::Host { step: step.id.clone(), source })? {
                // Mounts do not survive a reboot of the rescue system: made again.
                if is_mount(c) {
                    self.run_command(step, c)?;
                    continue;
                }
                return Err(ExecError::NoLongerHolds { step: step.id.clone(), what: format!("`{}` has no effect to show", command_line(c)) });
            }
        }
        self.check_checksums(step)?;
        self.write_files(step)?;
        Ok(())
    }

    /// Whether the plan's pool `pool` exists: imported (nothing to do), or exported on the
    /// plan's partitions (imported again by its GUID, searching only those partitions), or
    /// not there (`zpool create` must run). A pool of that name that is not the plan's stops
    /// the step: keel never imports, writes or exports it.
    fn pool_done(&mut self, step: &Step, pool: &str) -> Result<Done, ExecError> {
        let herr = |source| ExecError::Host { step: step.id.clone(), source };
        let guid = self.journal.pool_guid(pool);
        match pools::standing(self.host, self.plan, pool, guid.as_deref()).map_err(herr)? {
            Standing::Imported(f) => {
                self.record_pool(pool, &f)?;
                Ok(Done::Yes(format!("pool {pool} (GUID {}) is imported from the plan's partitions", f.guid)))
            }
            Standing::Exported(f) => {
                // the journal's own pool may carry the host id of the rescue system before its reboot
                let (argv, out) = pools::import_by_guid(self.host, self.plan, pool, &f.guid, guid.is_some(), false).map_err(herr)?;
                self.record(Record::Command { step: step.id.clone(), command: command_line(&argv) })?;
                if !out.success() {
                    return Err(ExecError::Command { step: step.id.clone(), command: command_line(&argv), code: out.code, stderr_tail: out.stderr_tail(5) });
                }
                self.record_pool(pool, &f)?;
                Ok(Done::Yes(format!("pool {pool} (GUID {}) was exported on the plan's partitions and is imported again by its GUID", f.guid)))
            }
            Standing::ForeignImported(f) => Err(ExecError::Check {
                step: step.id.clone(),
                message: format!(
                    "a pool named {pool} is imported, but it is not this plan's: {}. keel leaves it alone and cannot create its own {pool} beside it: check what it is, export it (`zpool export {pool}`), and run keel again",
                    f.describe()
                ),
            }),
            Standing::Other(f) => match guid {
                Some(g) => Err(ExecError::NoLongerHolds { step: step.id.clone(), what: format!("the journal recorded pool {pool} as GUID {g}, but the plan's partitions carry {}", f.describe()) }),
                // on the plan's partitions, but not exactly them: `zpool create -f` writes only there
                None => Ok(Done::No),
            },
            Standing::Absent => Ok(Done::No),
        }
    }

    /// Records the GUID of the pool just created (it must be on exactly the plan's partitions).
    fn created(&mut self, step: &Step, pool: &str) -> Result<(), ExecError> {
        match pools::standing(self.host, self.plan, pool, None).map_err(|source| ExecError::Host { step: step.id.clone(), source })? {
            Standing::Imported(f) => self.record_pool(pool, &f),
            other => Err(ExecError::Check { step: step.id.clone(), message: format!("after `zpool create` pool {pool} is not imported from exactly the plan's partitions ({other:?})") }),
        }
    }

    /// The journal learns a pool's GUID once (again only when it changed).
    fn record_pool(&mut self, pool: &str, f: &Found) -> Result<(), ExecError> {
        if self.journal.pool_guid(pool).as_deref() == Some(f.guid.as_str()) {
            return Ok(());
        }
        self.record(Record::Pool { pool: pool.to_string(), guid: f.guid.clone(), members: pools::planned_members(self.plan, pool) })
    }

    /// Files of the step: written unless already there with the planned content.
    fn write_files(&mut self, step: &Step) -> Result<(), ExecError> {
        let herr = |source| ExecError::Host { step: step.id.clone(), source };
        for f in &step.files {
            let path = PathBuf::from(format!("{TARGET_ROOT}{}", f.path));
            if self.host.exists(&path) && sha256_of(&self.host.read_bytes(&path).map_err(herr)?) == f.sha256 {
                continue;
            }
            self.host.write_file(&path, f.content.as_bytes(), f.mode).map_err(herr)?;
            self.record(Record::Note { message: format!("{}: wrote {} ({} bytes)", step.id, path.display(), f.content.len()) })?;
        }
        for c in &step.copies {
            let from = match c.from.as_str() {
                SELF_EXE => self.opts.self_exe.clone(),
                FIRST_BOOT_CREDENTIALS => match &self.opts.first_boot_credentials {
                    Some(p) => p.clone(),
                    None => {
                        self.record(Record::Note { message: format!("{}: no registry for this install: the first-boot unit will only run the cluster step, without reporting", step.id) })?;
                        continue;
                    }
                },
                other => PathBuf::from(other),
            };
            let to = PathBuf::from(format!("{TARGET_ROOT}{}", c.to));
            let bytes = self.host.read_bytes(&from).map_err(herr)?;
            if self.host.exists(&to) && self.host.read_bytes(&to).map_err(herr)? == bytes {
                continue;
            }
            self.host.write_file(&to, &bytes, c.mode).map_err(herr)?;
            self.record(Record::Note { message: format!("{}: copied {} to {}", step.id, from.display(), to.display()) })?;
        }
        Ok(())
    }

    /// Every fetched file has its pinned SHA-512; one that does not is removed.
    fn check_checksums(&mut self, step: &Step) -> Result<(), ExecError> {
        for c in &step.checksums {
            let path = PathBuf::from(&c.path);
            let bytes = self.host.read_bytes(&path).map_err(|source| ExecError::Host { step: step.id.clone(), source })?;
            let found = sha512_of(&bytes);
            if found != c.sha512 {
                let _ = self.host.run(&["rm".into(), "-f".into(), c.path.clone()], Duration::from_secs(10));
                return Err(ExecError::Check {
                    step: step.id.clone(),
                    message: format!(
                        "{} from {} has SHA-512 {found}, the profile pins {} (os.pve-key-sha512). The file was removed and nothing was installed: check the URL and the published checksum",
                        c.path, c.source, c.sha512
                    ),
                });
            }
        }
        Ok(())
    }

    /// Whether every checksum of the step already holds (the fetch need not run again).
    fn checksums_hold(&mut self, step: &Step) -> bool {
        !step.checksums.is_empty()
            && step.checksums.iter().all(|c| {
                let p = PathBuf::from(&c.path);
                self.host.exists(&p) && self.host.read_bytes(&p).map(|b| sha512_of(&b) == c.sha512).unwrap_or(false)
            })
    }

    /// After partitioning: every by-id partition link of the layout resolves to a device.
    fn wait_for_partitions(&mut self, step: &Step, patience: Duration) -> Result<(), ExecError> {
        let start = Instant::now();
        loop {
            let mut missing = Vec::new();
            for t in &self.plan.targets {
                for p in &self.plan.layout.partitions {
                    let link = t.part(p.number);
                    if !self.host.exists(Path::new(&link)) {
                        missing.push(link);
                    }
                }
            }
            if missing.is_empty() {
                return Ok(());
            }
            if start.elapsed() >= patience {
                return Err(ExecError::Check {
                    step: step.id.clone(),
                    message: format!("partition links did not appear: {} (is udev running? `udevadm trigger` may help)", missing.join(", ")),
                });
            }
            self.host.sleep(Duration::from_millis(250));
        }
    }

    fn step(&mut self, n: usize, total: usize, step: &Step) -> Result<(), ExecError> {
        let id = step.id.clone();
        if self.journal.done().contains(&id) && step.group != Group::Preflight && step.group != Group::Verify {
            self.verify(step)?;
            self.after_step(step)?;
            return self.record(Record::Verified { step: id });
        }
        let started = Instant::now();
        self.record(Record::Start { step: id.clone(), n, total, title: step.title.clone() })?;
        if step.id == "preflight.zfs-module" && !self.opts.zfs_checked {
            return self.record(Record::Skipped { step: id, why: "not needed: no pool step runs this time (--until)".into() });
        }
        if step.group == Group::Preflight {
            // run by preflight::run before the first step; recorded here
            return self.record(Record::Done { step: id, seconds: started.elapsed().as_secs_f64() });
        }
        if let (true, None) = (step.id.starts_with("partition.disk-"), self.table_check(step)?) {
            return self.record(Record::Skipped { step: id, why: "the partition table already matches the plan".into() });
        }
        if step.id == "verify.target" {
            return self.verify_target(step, started);
        }
        if step.id == "finish.report" {
            return self.report_facts(step, started);
        }
        if self.checksums_hold(step) {
            return self.record(Record::Skipped { step: id, why: "the fetched files are there with their pinned SHA-512".into() });
        }
        if step.id == "finish.export" {
            // The journal copy in the target is closed before the pools go away.
            self.journal.mirror = None;
        }
        if step.id == "os.image" {
            self.receive_image(step)?;
        }
        // files come first: the commands read them (debconf answers, policy-rc.d, keys to chown)
        self.write_files(step)?;
        for c in &step.commands {
            // Partitions of the old layout that are gone already need no wiping.
            if step.group == Group::Wipe && c.last().is_some_and(|p| p.contains("-part")) && !self.host.exists(Path::new(c.last().expect("checked"))) {
                continue;
            }
            let done = match created_pool(c) {
                Some(pool) => self.pool_done(step, pool)?,
                None => command_done(self.host, c).map_err(|source| ExecError::Host { step: id.clone(), source })?,
            };
            match done {
                Done::Yes(why) => {
                    self.record(Record::Note { message: format!("{id}: skipped `{}`: {why}", command_line(c)) })?;
                    continue;
                }
                Done::No | Done::Unknown => self.run_command(step, c)?,
            }
            if c.get(..2).is_some_and(|a| a == ["zfs", "rollback"]) {
                // the rollback took the journal's copy in the target back with it
                self.journal.mirror_again(self.host)?;
            }
            if let Some(pool) = created_pool(c) {
                self.created(step, pool)?;
            }
        }
        if step.id == "partition.settle" {
            self.wait_for_partitions(step, Duration::from_secs(30))?;
        }
        self.check_checksums(step)?;
        if self.opts.crash_after.as_deref() == Some(id.as_str()) {
            eprintln!("keel: KEEL_TEST_CRASH_AFTER={id}: exiting without recording the step (test hook)");
            std::process::exit(99);
        }
        self.after_step(step)?;
        if step.id == "os.packages" || step.id == "os.image" {
            self.record_versions()?;
        }
        if step.id == "finish.export" {
            self.mounted = false;
        }
        self.record(Record::Done { step: id, seconds: started.elapsed().as_secs_f64() })
    }

    /// What the package step installed, for the journal and the final summary.
    fn record_versions(&mut self) -> Result<(), ExecError> {
        let mut pkgs = crate::plan::steps_packages(self.profile, self.plan.firmware);
        pkgs.push("proxmox-kernel-*");
        if let Ok(list) = super::checks::installed(self.host, TARGET_ROOT, &pkgs) {
            let list: Vec<String> = list.iter().map(|(name, version)| format!("{name} {version}")).collect();
            self.record(Record::Note { message: format!("{VERSIONS_NOTE}{}", list.join(", ")) })?;
        }
        Ok(())
    }

    /// Receives the plan's root image into rpool/ROOT/pve-1 (the step's commands then set its
    /// properties and mount it). Already received (the snapshot with the manifest's GUID): not
    /// fetched again.
    fn receive_image(&mut self, step: &Step) -> Result<(), ExecError> {
        let img = self.plan.image.as_ref().expect("os.image is planned with an image");
        let m = &img.manifest;
        let id = step.id.clone();
        let herr = |source| ExecError::Host { step: step.id.clone(), source };
        let check = |message: String| ExecError::Check { step: step.id.clone(), message };
        let t = self.opts.command_timeout;
        let argv = super::checks::s;
        let snap = m.received_snapshot();
        // asked before the receive (already here?) and after it (the right one arrived?)
        let guid_query = argv(&["zfs", "get", "-H", "-p", "-o", "value", "guid", &snap]);
        let guid = self.host.run(&guid_query, t).map_err(herr)?;
        if guid.success() {
            if guid.stdout.trim() == m.snapshot_guid {
                return self.record(Record::Note { message: format!("{id}: {snap} is here with the image's GUID {}: not received again", m.snapshot_guid) });
            }
            return Err(check(format!(
                "{snap} exists with GUID {}, the image {} has {}: another image's root. Run with --restart to install afresh",
                guid.stdout.trim(), m.name, m.snapshot_guid
            )));
        }
        if self.host.run(&argv(&["zfs", "list", "-H", "-o", "name", ROOT_DATASET]), t).map_err(herr)?.success() {
            // created by this install's own earlier run (the disks were wiped by it): no snapshot, so not a whole image
            self.record(Record::Note { message: format!("{id}: {ROOT_DATASET} exists without {snap}: left from an interrupted receive, destroyed") })?;
            self.run_command(step, &argv(&["zfs", "destroy", "-r", ROOT_DATASET]))?;
        }
        let here = self.host.read_file(Path::new(ZFS_VERSION_FILE)).map_err(herr)?;
        image::check_zfs(m, &here).map_err(|e| check(e.to_string()))?;
        let Some(open) = self.opts.image_source.clone() else {
            return Err(check(format!("the plan names the image {} but this run has no way to read it (keel install --image)", img.location)));
        };
        let reader = (open.0)().map_err(|e| check(format!("opening the image {}: {e}", img.location)))?;
        self.record(Record::Command { step: id.clone(), command: format!("<{}> | zstd -d | zfs receive -u {ROOT_DATASET}", img.location) })?;
        let r = image::receive(self.host, reader, m, ROOT_DATASET, self.opts.os_command_timeout).map_err(|e| check(e.to_string()))?;
        let got = self.host.run(&guid_query, t).map_err(herr)?;
        if got.stdout.trim() != m.snapshot_guid {
            return Err(check(format!("after the receive {snap} has GUID \"{}\", the manifest says {}", got.stdout.trim(), m.snapshot_guid)));
        }
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let peak = image::peak_memory_kib().map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "unknown".into());
        self.record(Record::Note {
            message: format!(
                "{IMAGE_NOTE}{} ({:.1} MiB, stream {:.1} MiB) in {:.1} s, {:.1} MiB/s; SHA-256 {} matches the manifest; keel's peak memory {peak}",
                m.name, mib(r.bytes), mib(r.stream_bytes), r.seconds, mib(r.bytes) / r.seconds.max(0.001), r.sha256
            ),
        })
    }

    /// `keel verify` on the mounted target: every check must pass.
    fn verify_target(&mut self, step: &Step, started: Instant) -> Result<(), ExecError> {
        let opts = verify::Options { root: PathBuf::from(TARGET_ROOT), ..Default::default() };
        let checks = verify::run(self.host, self.profile, &opts);
        for c in &checks {
            self.record(Record::Note { message: format!("verify: {} {}: {}", c.status.word(), c.name, c.detail) })?;
        }
        let failed: Vec<String> = checks.iter().filter(|c| c.status == verify::Status::Fail).map(|c| format!("{}: {}", c.name, c.detail)).collect();
        if !failed.is_empty() {
            return Err(ExecError::Check { step: step.id.clone(), message: format!("{} check(s) failed:\n  {}", failed.len(), failed.join("\n  ")) });
        }
        self.record(Record::Done { step: step.id.clone(), seconds: started.elapsed().as_secs_f64() })
    }

    /// The facts the final report carries that only the mounted target knows: the SSH host key
    /// fingerprints and the pool state (journal notes); then the first-boot credentials.
    fn report_facts(&mut self, step: &Step, started: Instant) -> Result<(), ExecError> {
        let herr = |source| ExecError::Host { step: step.id.clone(), source };
        let host = &mut *self.host;
        let keys = crate::hostkeys::host_keys(Path::new(TARGET_ROOT), |p| host.read_bytes(p).ok().map(|b| String::from_utf8_lossy(&b).into_owned()));
        if keys.is_empty() {
            self.record(Record::Note { message: format!("{}: no SSH host keys under {TARGET_ROOT}/etc/ssh (openssh-server makes them when it is installed)", step.id) })?;
        }
        for k in keys {
            self.record(Record::Note { message: format!("{HOST_KEY_NOTE}{k}") })?;
        }
        let argv: Vec<String> = ["zpool", "list", "-H", "-o", "name,health,size,allocated,free"].iter().map(|s| s.to_string()).chain(["rpool".to_string(), "datapool".to_string()]).collect();
        // for the report only: a failed query is noted, the install goes on
        let out = self.host.run(&argv, self.opts.command_timeout).map_err(herr)?;
        if !out.success() {
            self.record(Record::Note { message: format!("{}: `{}` exited with code {}: {} (the report has no pool state)", step.id, command_line(&argv), out.code, out.stderr_tail(2)) })?;
        }
        for line in out.stdout.lines().filter(|l| !l.trim().is_empty() && out.success()) {
            let f: Vec<&str> = line.split('\t').collect();
            let message = match f.as_slice() {
                [name, health, size, alloc, free] => format!("{POOL_NOTE}{name} {health} size {size} allocated {alloc} free {free}"),
                _ => format!("{POOL_NOTE}{line}"),
            };
            self.record(Record::Note { message })?;
        }
        self.write_files(step)?;
        self.record(Record::Done { step: step.id.clone(), seconds: started.elapsed().as_secs_f64() })
    }

    /// Once the root file system is mounted, the journal is mirrored into it.
    fn after_step(&mut self, step: &Step) -> Result<(), ExecError> {
        // the root file system is mounted by datasets.root, or with an image by os.image
        let mounts_root = if self.plan.image.is_some() { "os.image" } else { "datasets.root" };
        if step.id == mounts_root {
            self.mounted = true;
            self.journal.mirror_into(self.host, Path::new(TARGET_ROOT))?;
        }
        Ok(())
    }
}

/// Executes the disk phase of `plan`. Preflight and confirmation must have passed.
pub fn execute(host: &mut dyn Host, plan: &Plan, profile: &Profile, journal: &mut Journal, opts: &Options, progress: &mut dyn FnMut(&Entry)) -> Result<Outcome, ExecError> {
    if journal.finished() {
        return Ok(Outcome::AlreadyFinished);
    }
    let steps: Vec<&Step> = plan.steps.iter().collect();
    let started = Instant::now();
    let (mut timed, in_commands) = super::host::Timed::new(host);
    let mut run = Run { host: &mut timed, journal, plan, opts, progress, profile, mounted: false, planned: Duration::ZERO };
    let result = (|| {
        for (i, step) in steps.iter().enumerate() {
            run.step(i + 1, steps.len(), step)?;
            if run.opts.until.as_deref() == Some(step.id.as_str()) {
                run.record(Record::Paused { after: step.id.clone() })?;
                return Ok(Outcome::Paused { after: step.id.clone() });
            }
        }
        let (planned, all) = (run.planned.as_secs_f64(), in_commands.get().as_secs_f64());
        run.record(Record::Finished { seconds: started.elapsed().as_secs_f64(), planned_seconds: planned, other_seconds: (all - planned).max(0.0) })?;
        Ok(Outcome::Finished)
    })();
    if let Err(e) = &result {
        let step = match e {
            ExecError::Command { step, .. } | ExecError::Host { step, .. } | ExecError::Check { step, .. } | ExecError::NoLongerHolds { step, .. } => step.clone(),
            ExecError::Journal(_) => String::new(),
        };
        if !step.is_empty() {
            let _ = run.record(Record::Failed { step, error: e.to_string() });
        }
        // Leave nothing mounted: pools stay imported so a re-run continues.
        if run.mounted {
            let _ = run.host.run(&["umount".into(), "--recursive".into(), TARGET_ROOT.into()], Duration::from_secs(60));
        }
    }
    result
}

/// How the journal note with the installed package versions starts.
pub const VERSIONS_NOTE: &str = "installed versions: ";
/// How the journal notes with the target's SSH host keys start.
pub const HOST_KEY_NOTE: &str = "ssh host key: ";
/// How the journal note of a received root image starts.
pub const IMAGE_NOTE: &str = "received image ";
/// The loaded OpenZFS module's version.
pub const ZFS_VERSION_FILE: &str = "/sys/module/zfs/version";
/// How the journal notes with the pool state at the end of the install start.
pub const POOL_NOTE: &str = "pool: ";

/// Commands that establish a mount: repeated when a resumed install finds them gone.
fn is_mount(argv: &[String]) -> bool {
    matches!(argv.first().map(String::as_str), Some("mount")) || argv.get(..2).is_some_and(|a| a == ["zfs", "mount"])
}

fn sha256_of(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    crate::profile::hex_digest(&Sha256::digest(bytes))
}

fn sha512_of(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha512};
    crate::profile::hex_digest(&Sha512::digest(bytes))
}
