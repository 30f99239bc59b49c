//! The first boot's storage step, after the cluster step: the profile's `[storage]` registered
//! the way Proxmox VE does it (`pvesm add|set`, `pvesh create|set /cluster/backup`), from what
//! `/etc/pve/storage.cfg` and `/etc/pve/jobs.cfg` lack (`keel_installer::pve_storage`). Judged by
//! the files afterwards, never by a command's exit code alone: a storage the other node added
//! a moment earlier ("already defined") is as good as one added here.

use std::path::Path;

use keel_installer::profile::Profile;
use keel_installer::pve_storage::{self, JOBS_CFG, STORAGE_CFG};
use serde::Serialize;

use crate::cluster_step::{tail, Tools};

#[derive(Debug, Clone, Serialize)]
pub struct StorageResult {
    pub ok: bool,
    /// The commands run, each with its outcome.
    pub commands: Vec<String>,
    pub detail: String,
}

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path.trim_start_matches('/'))).unwrap_or_default()
}

pub fn run(profile: &Profile, root: &Path, tools: &Tools) -> StorageResult {
    let Some(want) = &profile.storage else {
        return StorageResult { ok: true, commands: vec![], detail: "the profile has no [storage]".into() };
    };
    let todo = match pve_storage::changes(want, &read(root, STORAGE_CFG), &read(root, JOBS_CFG)) {
        Ok(c) => c,
        Err(errors) => return StorageResult { ok: false, commands: vec![], detail: errors.join("; ") },
    };
    let count = want.entries.len() + want.backup_jobs.len();
    if todo.is_empty() {
        return StorageResult { ok: true, commands: vec![], detail: format!("{count} storages and jobs as the profile says, nothing changed") };
    }
    let mut commands = Vec::new();
    for c in &todo {
        let (name, args) = (&c.argv[0], &c.argv[1..]);
        let (ok, code, out) = tools.run(name, args);
        let said = tail(&out, 2);
        eprintln!("first boot: storage: {}: `{}` exit {code}{}", c.what, c.argv.join(" "), if said.is_empty() { String::new() } else { format!(": {said}") });
        commands.push(format!("{} -> {}", c.argv.join(" "), if ok { "ok".to_string() } else { format!("exit {code}: {said}") }));
    }
    // what the files say now
    match pve_storage::changes(want, &read(root, STORAGE_CFG), &read(root, JOBS_CFG)) {
        Ok(left) if left.is_empty() => StorageResult { ok: true, detail: format!("{count} storages and jobs as the profile says ({} changed)", todo.len()), commands },
        Ok(left) => StorageResult { ok: false, detail: format!("still not as the profile says: {}", left.iter().map(|c| c.what.as_str()).collect::<Vec<_>>().join("; ")), commands },
        Err(errors) => StorageResult { ok: false, detail: errors.join("; "), commands },
    }
}
