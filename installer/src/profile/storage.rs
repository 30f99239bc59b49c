//! `[storage]`: the Proxmox VE storages and backup jobs the cluster gets once it formed
//! (`pvesm`, `/etc/pve/storage.cfg`; `pvesh create /cluster/backup`, `/etc/pve/jobs.cfg`).
//! Raw TOML shapes, the validated model and their checks.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::validate::Problems;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawStorage {
    #[serde(default)]
    pub entries: Vec<RawEntry>,
    #[serde(default)]
    pub backup_jobs: Vec<RawBackupJob>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawEntry {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub content: Vec<String>,
    /// zfspool
    #[serde(default)]
    pub pool: Option<String>,
    #[serde(default)]
    pub sparse: Option<bool>,
    /// dir
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub is_mountpoint: Option<bool>,
    /// pbs
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub datastore: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawBackupJob {
    pub id: String,
    pub storage: String,
    pub schedule: String,
    pub mode: String,
    pub compress: String,
    #[serde(default)]
    pub all: bool,
    #[serde(default)]
    pub mailnotification: Option<String>,
    #[serde(default)]
    pub mailto: Option<String>,
    pub prune_backups: String,
}

/// One storage as `pvesm add TYPE ID --KEY VALUE ...` takes it and storage.cfg keeps it: the
/// options in Proxmox's own names and value forms (booleans 0/1, lists comma-separated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub id: String,
    pub kind: String,
    /// (option, value), sorted by option.
    pub options: Vec<(String, String)>,
}

/// A vzdump job as `pvesh create /cluster/backup` takes it and jobs.cfg keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupJob {
    pub id: String,
    pub options: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Storage {
    pub entries: Vec<Entry>,
    pub backup_jobs: Vec<BackupJob>,
}

/// What each storage type may hold (pve-storage's plugins: ZFSPoolPlugin, DirPlugin, PBSPlugin).
fn contents(kind: &str) -> &'static [&'static str] {
    match kind {
        "zfspool" => &["images", "rootdir"],
        "dir" => &["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"],
        "pbs" => &["backup"],
        _ => &[],
    }
}

fn is_id(s: &str) -> bool {
    // pve-storage's `pve-storage-id`: a letter, then letters, digits, '-', '_', '.'
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn plain(p: &mut Problems, field: &str, v: &str) {
    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        p.err(field, format!("\"{v}\" is empty or has a space"), "one word, as pvesm takes it");
    }
}

pub(super) fn storage(p: &mut Problems, raw: &RawStorage, datasets: &[String]) -> Storage {
    let mut ids = BTreeSet::new();
    let mut entries = Vec::new();
    for (i, e) in raw.entries.iter().enumerate() {
        let f = |k: &str| format!("storage.entries[{i}].{k}");
        if !is_id(&e.id) {
            p.err(f("id"), format!("\"{}\" is not a storage id", e.id), "a letter, then letters, digits, '-', '_' or '.'");
        }
        if !ids.insert(e.id.clone()) {
            p.err(f("id"), format!("storage \"{}\" is listed twice", e.id), "list each storage once");
        }
        let allowed = contents(&e.kind);
        if allowed.is_empty() {
            p.err(f("type"), format!("\"{}\" is not a storage type keel registers", e.kind), "use zfspool, dir or pbs");
        }
        for c in &e.content {
            if !allowed.is_empty() && !allowed.contains(&c.as_str()) {
                p.err(f("content"), format!("a {} storage cannot hold \"{c}\"", e.kind), format!("use: {}", allowed.join(", ")));
            }
        }
        let mut options: Vec<(String, String)> = Vec::new();
        if !e.content.is_empty() {
            options.push(("content".into(), e.content.join(",")));
        }
        // the options each type takes, and those it needs
        let given = [
            ("pool", e.pool.clone()),
            ("sparse", e.sparse.map(|b| u8::from(b).to_string())),
            ("path", e.path.clone()),
            ("is_mountpoint", e.is_mountpoint.map(|b| u8::from(b).to_string())),
            ("server", e.server.clone()),
            ("datastore", e.datastore.clone()),
            ("username", e.username.clone()),
            ("fingerprint", e.fingerprint.clone()),
        ];
        let (takes, needs): (&[&str], &[&str]) = match e.kind.as_str() {
            "zfspool" => (&["pool", "sparse"], &["pool"]),
            "dir" => (&["path", "is_mountpoint"], &["path"]),
            "pbs" => (&["server", "datastore", "username", "fingerprint"], &["server", "datastore"]),
            _ => (&[], &[]),
        };
        for (k, v) in &given {
            let field = f(&k.replace('_', "-"));
            match v {
                Some(v) if !takes.contains(k) => p.err(field, format!("a {} storage has no {k}", e.kind), format!("{} takes: {}", e.kind, takes.join(", "))),
                Some(v) => {
                    plain(p, &field, v);
                    options.push((k.to_string(), v.clone()));
                }
                None if needs.contains(k) && !allowed.is_empty() => p.err(field, format!("a {} storage needs {k}", e.kind), "add it"),
                None => {}
            }
        }
        if let Some(pool) = &e.pool {
            let ds = pool.strip_prefix("datapool/");
            if pool != "datapool" && !ds.is_some_and(|d| datasets.iter().any(|x| x == d)) {
                p.err(f("pool"), format!("\"{pool}\" is not datapool or one of its datasets"), "keel makes datapool and zfs.datapool-datasets; use one of them");
            }
        }
        if let Some(path) = &e.path {
            if !path.starts_with('/') {
                p.err(f("path"), format!("\"{path}\" is not an absolute path"), "such as /datapool/backups");
            } else if let Some(ds) = path.strip_prefix("/datapool/") {
                if !datasets.iter().any(|x| x == ds) {
                    p.err(f("path"), format!("{path} is not the mount point of a datapool dataset"), format!("keel mounts zfs.datapool-datasets at /datapool/NAME ({})", datasets.join(", ")));
                }
            }
        }
        if let Some(fp) = &e.fingerprint {
            let ok = fp.split(':').count() == 32 && fp.split(':').all(|h| h.len() == 2 && h.chars().all(|c| c.is_ascii_hexdigit()));
            if !ok {
                p.err(f("fingerprint"), "not a SHA-256 certificate fingerprint", "32 hex pairs with colons, as `proxmox-backup-manager cert info` prints it");
            } else if fp.split(':').all(|h| h == "00") {
                p.warn(f("fingerprint"), "placeholder fingerprint (all zero)", "put the PBS server's certificate fingerprint here before installing");
            }
        }
        options.sort();
        entries.push(Entry { id: e.id.clone(), kind: e.kind.clone(), options });
    }

    let mut jobs = Vec::new();
    let mut job_ids = BTreeSet::new();
    for (i, j) in raw.backup_jobs.iter().enumerate() {
        let f = |k: &str| format!("storage.backup-jobs[{i}].{k}");
        if !is_id(&j.id) {
            p.err(f("id"), format!("\"{}\" is not a job id", j.id), "a letter, then letters, digits, '-', '_' or '.'");
        }
        if !job_ids.insert(j.id.clone()) {
            p.err(f("id"), format!("job \"{}\" is listed twice", j.id), "list each job once");
        }
        match raw.entries.iter().find(|e| e.id == j.storage) {
            Some(e) if e.kind == "pbs" || e.content.iter().any(|c| c == "backup") => {}
            Some(_) => p.err(f("storage"), format!("storage \"{}\" does not hold backups", j.storage), "add \"backup\" to its content, or name a pbs storage"),
            None => p.err(f("storage"), format!("\"{}\" is not a storage of [[storage.entries]]", j.storage), "name one of the profile's storages"),
        }
        if j.schedule.trim().is_empty() || j.schedule.contains(['\n', '"']) {
            p.err(f("schedule"), "empty, or a line break or quote in it", "a Proxmox calendar event, such as \"02:00\" (daily at 02:00)");
        }
        if !["snapshot", "suspend", "stop"].contains(&j.mode.as_str()) {
            p.err(f("mode"), format!("\"{}\" is not a backup mode", j.mode), "use snapshot, suspend or stop");
        }
        if !["0", "1", "gzip", "lzo", "zstd"].contains(&j.compress.as_str()) {
            p.err(f("compress"), format!("\"{}\" is not a vzdump compression", j.compress), "use zstd, gzip, lzo, 1 or 0");
        }
        for part in j.prune_backups.split(',') {
            let ok = part.split_once('=').is_some_and(|(k, n)| {
                ["keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly"].contains(&k) && n.parse::<u32>().is_ok()
            });
            if !ok {
                p.err(f("prune-backups"), format!("\"{part}\" is not a retention option"), "keep-daily=7,keep-weekly=4,keep-monthly=6 (keep-last/hourly/daily/weekly/monthly/yearly)");
                break;
            }
        }
        if let Some(m) = &j.mailnotification {
            if !["always", "failure"].contains(&m.as_str()) {
                p.err(f("mailnotification"), format!("\"{m}\" is not allowed"), "use always or failure");
            }
        }
        if let Some(m) = &j.mailto {
            plain(p, &f("mailto"), m);
        }
        let mut options: Vec<(String, String)> = vec![
            ("compress".into(), j.compress.clone()),
            ("enabled".into(), "1".into()),
            ("mode".into(), j.mode.clone()),
            ("prune-backups".into(), j.prune_backups.clone()),
            ("schedule".into(), j.schedule.clone()),
            ("storage".into(), j.storage.clone()),
        ];
        if j.all {
            options.push(("all".into(), "1".into()));
        }
        if let Some(m) = &j.mailnotification {
            options.push(("mailnotification".into(), m.clone()));
        }
        if let Some(m) = &j.mailto {
            options.push(("mailto".into(), m.clone()));
        }
        options.sort();
        jobs.push(BackupJob { id: j.id.clone(), options });
    }
    Storage { entries, backup_jobs: jobs }
}

#[cfg(test)]
mod tests {
    use crate::profile::tests::seed_with;


    #[test]
    fn storage_entries_and_jobs_are_checked_at_their_fields() {
        let s = seed_with("", "").unwrap().storage.unwrap();
        assert_eq!(s.entries[0].options, [("content".to_string(), "images,rootdir".to_string()), ("pool".into(), "datapool".into()), ("sparse".into(), "1".into())]);
        for (from, to, field, says) in [
            ("content = [\"images\", \"rootdir\"]", "content = [\"images\", \"backup\"]", "storage.entries[0].content", "a zfspool storage cannot hold \"backup\""),
            ("pool = \"datapool\"\ncontent", "pool = \"rpool/data\"\ncontent", "storage.entries[0].pool", "not datapool or one of its datasets"),
            ("pool = \"datapool\"\ncontent", "content", "storage.entries[0].pool", "a zfspool storage needs pool"),
            ("path = \"/datapool/backups\"", "path = \"/datapool/backup\"", "storage.entries[1].path", "not the mount point of a datapool dataset"),
            ("id = \"templates\"", "id = \"backups\"", "storage.entries[2].id", "listed twice"),
            ("type = \"pbs\"", "type = \"nfs\"", "storage.entries[3].type", "not a storage type keel registers"),
            ("datastore = \"datastore1\"", "datastore = \"datastore 1\"", "storage.entries[3].datastore", "has a space"),
            ("fingerprint = \"00:00", "fingerprint = \"0:00", "storage.entries[3].fingerprint", "not a SHA-256 certificate fingerprint"),
            ("storage = \"pbs-local\"", "storage = \"templates\"", "storage.backup-jobs[0].storage", "does not hold backups"),
            ("storage = \"pbs-local\"", "storage = \"nowhere\"", "storage.backup-jobs[0].storage", "not a storage of [[storage.entries]]"),
            ("keep-daily=7,", "keep-dayly=7,", "storage.backup-jobs[0].prune-backups", "not a retention option"),
            ("mode = \"snapshot\"", "mode = \"live\"", "storage.backup-jobs[0].mode", "not a backup mode"),
        ] {
            let e = seed_with(from, to).expect_err(field);
            assert!(e.contains(&format!("{field}:")) && e.contains(says), "{field}: {e}");
        }
    }
}
