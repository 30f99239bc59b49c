//! What the cluster's storage configuration lacks against the profile's `[storage]`, as the
//! commands that add it the way Proxmox VE does: `pvesm add|set` (pve-storage writes
//! /etc/pve/storage.cfg) and `pvesh create|set /cluster/backup` (pve-manager's API writes
//! /etc/pve/jobs.cfg). Pure: the files' texts in, commands out; the first boot runs them.
//!
//! Both files are Proxmox "section config" (pve-common SectionConfig.pm): a `TYPE: ID` line,
//! then one tab-indented `KEY VALUE` line per option (a key alone is a true boolean), a blank
//! line between sections. Options the profile does not name are left as they are.

use std::collections::BTreeMap;

use crate::profile::storage::{BackupJob, Entry, Storage};

pub const STORAGE_CFG: &str = "/etc/pve/storage.cfg";
pub const JOBS_CFG: &str = "/etc/pve/jobs.cfg";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: String,
    pub options: BTreeMap<String, String>,
}

/// Sections by id. Lines that are neither a header nor an option are skipped.
pub fn parse(text: &str) -> BTreeMap<String, Section> {
    let mut out: BTreeMap<String, Section> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            if line.trim().is_empty() {
                current = None;
            }
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            current = line.split_once(':').map(|(kind, id)| {
                let id = id.trim().to_string();
                out.insert(id.clone(), Section { kind: kind.trim().to_string(), options: BTreeMap::new() });
                id
            });
            continue;
        }
        if let Some(id) = &current {
            let t = line.trim();
            let (k, v) = t.split_once(char::is_whitespace).map(|(k, v)| (k, v.trim())).unwrap_or((t, "1"));
            if let Some(s) = out.get_mut(id) {
                s.options.insert(k.to_string(), v.to_string());
            }
        }
    }
    out
}

/// A value as Proxmox compares it: lists (content) as sets.
fn same(key: &str, want: &str, have: &str) -> bool {
    if key == "content" {
        let set = |s: &str| s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect::<std::collections::BTreeSet<_>>();
        set(want) == set(have)
    } else {
        want == have
    }
}

/// One command and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub what: String,
    pub argv: Vec<String>,
}

fn differing(want: &[(String, String)], have: &BTreeMap<String, String>) -> Vec<(String, String)> {
    want.iter().filter(|(k, v)| !have.get(k).is_some_and(|h| same(k, v, h))).cloned().collect()
}

fn flags(options: &[(String, String)]) -> Vec<String> {
    options.iter().flat_map(|(k, v)| [format!("--{k}"), v.clone()]).collect()
}

fn entry_change(e: &Entry, have: Option<&Section>) -> Result<Option<Change>, String> {
    match have {
        None => {
            let mut argv = vec!["pvesm".to_string(), "add".into(), e.kind.clone(), e.id.clone()];
            argv.extend(flags(&e.options));
            // pvesm activates a storage it adds and refuses it when that fails (pve-storage
            // API2/Storage/Config.pm create); a PBS storage needs its password for that, which
            // no profile holds: added disabled, enabled by the operator with the password
            let mut what = format!("storage {} ({}) is missing", e.id, e.kind);
            if e.kind == "pbs" {
                argv.extend(["--disable".to_string(), "1".into()]);
                what.push_str(&format!("; added disabled: enable it with `pvesm set {} --password --disable 0`", e.id));
            }
            Ok(Some(Change { what, argv }))
        }
        Some(s) if s.kind != e.kind => Err(format!(
            "storage {} exists as type {}, the profile says {}: keel does not remove a storage; remove it (`pvesm remove {}`) if nothing uses it, then run `keel first-boot` again",
            e.id, s.kind, e.kind, e.id
        )),
        Some(s) => {
            let diff = differing(&e.options, &s.options);
            if diff.is_empty() {
                return Ok(None);
            }
            let names: Vec<&str> = diff.iter().map(|(k, _)| k.as_str()).collect();
            let mut argv = vec!["pvesm".to_string(), "set".into(), e.id.clone()];
            argv.extend(flags(&diff));
            Ok(Some(Change { what: format!("storage {}: {} differ", e.id, names.join(", ")), argv }))
        }
    }
}

fn job_change(j: &BackupJob, have: Option<&Section>) -> Result<Option<Change>, String> {
    match have {
        None => {
            let mut argv = vec!["pvesh".to_string(), "create".into(), "/cluster/backup".into(), "--id".into(), j.id.clone()];
            argv.extend(flags(&j.options));
            Ok(Some(Change { what: format!("backup job {} is missing", j.id), argv }))
        }
        Some(s) if s.kind != "vzdump" => Err(format!("job {} exists as a {} job, the profile's is a backup (vzdump) job: remove it, then run `keel first-boot` again", j.id, s.kind)),
        Some(s) => {
            let diff = differing(&j.options, &s.options);
            if diff.is_empty() {
                return Ok(None);
            }
            let names: Vec<&str> = diff.iter().map(|(k, _)| k.as_str()).collect();
            let mut argv = vec!["pvesh".to_string(), "set".into(), format!("/cluster/backup/{}", j.id)];
            argv.extend(flags(&diff));
            Ok(Some(Change { what: format!("backup job {}: {} differ", j.id, names.join(", ")), argv }))
        }
    }
}

/// Every change the two files need, in the profile's order (storages before the jobs that name
/// them). An entry that cannot be changed without removing something is an error.
pub fn changes(want: &Storage, storage_cfg: &str, jobs_cfg: &str) -> Result<Vec<Change>, Vec<String>> {
    let (storages, jobs) = (parse(storage_cfg), parse(jobs_cfg));
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for e in &want.entries {
        match entry_change(e, storages.get(&e.id)) {
            Ok(c) => out.extend(c),
            Err(m) => errors.push(m),
        }
    }
    for j in &want.backup_jobs {
        match job_change(j, jobs.get(&j.id)) {
            Ok(c) => out.extend(c),
            Err(m) => errors.push(m),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;

    fn seed() -> Storage {
        Profile::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/pve-node-01.toml")).unwrap().profile.storage.unwrap()
    }

    fn lines(c: &[Change]) -> Vec<String> {
        c.iter().map(|c| c.argv.join(" ")).collect()
    }

    /// A fresh cluster (the `local` storage only, no jobs): every storage and the job added
    /// with the profile's options, in Proxmox's option names.
    #[test]
    fn a_fresh_cluster_gets_every_storage_and_job() {
        let fresh = "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\n";
        let c = changes(&seed(), fresh, "").unwrap();
        assert_eq!(lines(&c), [
            "pvesm add zfspool datapool --content images,rootdir --pool datapool --sparse 1",
            "pvesm add dir backups --content backup --is_mountpoint 1 --path /datapool/backups",
            "pvesm add dir templates --content iso,vztmpl --is_mountpoint 1 --path /datapool/templates",
            "pvesm add pbs pbs-local --content backup --datastore datastore1 --fingerprint 00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00 --server 192.168.100.1 --username root@pam --disable 1",
            "pvesh create /cluster/backup --id daily-backup --all 1 --compress zstd --enabled 1 --mailnotification always --mailto admin@neurodatalab.ai --mode snapshot --prune-backups keep-daily=7,keep-weekly=4,keep-monthly=6 --schedule 02:00 --storage pbs-local",
        ]);
    }

    /// What Proxmox wrote back (section config, options sorted, content reordered, a boolean
    /// alone on its line, options of the operator's own) needs nothing; a changed value is set
    /// alone; another type under the same id is refused, never removed.
    #[test]
    fn what_is_there_is_detected_not_redone() {
        let storage_cfg = "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\nzfspool: datapool\n\tpool datapool\n\tcontent rootdir,images\n\tsparse\n\tnodes pve-node-01,pve-node-02\n\ndir: backups\n\tpath /datapool/backups\n\tcontent backup\n\tis_mountpoint 1\n\ndir: templates\n\tpath /datapool/templates\n\tcontent vztmpl,iso\n\tis_mountpoint 1\n\npbs: pbs-local\n\tdatastore datastore1\n\tserver 192.168.100.1\n\tcontent backup\n\tfingerprint 00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00\n\tprune-backups keep-all=1\n\tusername root@pam\n\n";
        // (the PBS storage as the operator left it: enabled, no `disable` line)
        let jobs_cfg = "vzdump: daily-backup\n\tschedule 02:00\n\tall 1\n\tcompress zstd\n\tenabled 1\n\tmailnotification always\n\tmailto admin@neurodatalab.ai\n\tmode snapshot\n\tprune-backups keep-daily=7,keep-weekly=4,keep-monthly=6\n\tstorage pbs-local\n\n";
        assert_eq!(changes(&seed(), storage_cfg, jobs_cfg).unwrap(), []);
        let c = changes(&seed(), &storage_cfg.replace("\tpool datapool\n", "\tpool datapool/vm\n"), &jobs_cfg.replace("mode snapshot", "mode stop")).unwrap();
        assert_eq!(lines(&c), ["pvesm set datapool --pool datapool", "pvesh set /cluster/backup/daily-backup --mode snapshot"]);
        assert_eq!(c[0].what, "storage datapool: pool differ");
        let e = changes(&seed(), &storage_cfg.replace("zfspool: datapool", "dir: datapool"), jobs_cfg).unwrap_err();
        assert!(e[0].starts_with("storage datapool exists as type dir, the profile says zfspool: keel does not remove a storage"), "{e:?}");
    }
}
