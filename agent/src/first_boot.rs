//! `keel first-boot`: what the installed node does once, started by its keel-first-boot unit
//! (Type=exec, so boot never waits for it; ordered after pve-cluster and pveproxy):
//! 1. report "booted" to the registry, with the new SSH host key fingerprints;
//! 2. the cluster step (`cluster_step`): the cluster formed with `pvecm` as Proxmox VE forms it,
//!    judged by membership and quorum, never by pvecm's exit code;
//! 3. the storage step (`storage_step`): the profile's Proxmox VE storages and backup job;
//! 4. report "ready" (or "failed" with the steps' output), then mark itself done and disable
//!    the unit. A failure exits 1: systemd starts it again a minute later.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use keel_installer::hostkeys::{self, HostKey};
use keel_installer::plan::{INSTALLED_CREDENTIALS, INSTALLED_PROFILE};
use keel_installer::profile::Profile;
use keel_installer::render::{FIRST_BOOT_DONE, FIRST_BOOT_UNIT};
use keel_installer::source::SourceFile;
use serde_json::{json, Value};

use crate::cluster_step::{ClusterResult, Directory, Member, Step, Tools};
use crate::phone_home::{Credentials, Enrolled, Refused, Registry};
use crate::storage_step;

/// How long membership and quorum may take to show after a pvecm run
/// (`KEEL_CLUSTER_SETTLE_SECS`, default 180; pvecm's own join waits for quorum without limit).
fn settle() -> Duration {
    Duration::from_secs(std::env::var("KEEL_CLUSTER_SETTLE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(180))
}

/// Sends the first boot's reports: the node's base body (host name, host keys, kernel) with a
/// phase and extra fields, retried until `deadline`.
struct Reporter {
    registry: Registry,
    node: Enrolled,
    base: Value,
    backoff: Duration,
}

impl Reporter {
    fn send(&self, phase: &str, extra: Value, deadline: Instant) {
        let mut body = self.base.clone();
        body["phase"] = json!(phase);
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        if let Err(e) = retry(deadline, self.backoff, &format!("reporting {phase} to the registry"), || self.registry.boot(&self.node, &body)) {
            eprintln!("first boot: {e:#}");
        }
    }
}

/// The registry as the cluster step's directory.
struct RegistryDirectory<'a> {
    reporter: &'a Reporter,
    deadline: Instant,
}

impl Directory for RegistryDirectory<'_> {
    fn members(&self) -> Result<Vec<Member>> {
        Ok(Member::from_view(&self.reporter.registry.cluster(&self.reporter.node)?))
    }

    fn cluster_key(&self) -> Result<String> {
        self.reporter.registry.cluster_key(&self.reporter.node)
    }

    fn cluster_created(&self, result: &ClusterResult) {
        self.reporter.send("cluster-created", json!({ "cluster": result }), self.deadline);
    }
}

pub fn run(root: &Path, give_up_after: Duration) -> Result<ExitCode> {
    let path: Vec<PathBuf> = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    let ok = first_boot(root, &path, give_up_after, Duration::from_secs(5), settle())?;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The whole first boot; `search` is where `pvecm` is looked for (PATH), `settle` how long
/// membership and quorum may take after a pvecm run. Returns whether everything is done (then
/// the unit is disabled).
pub fn first_boot(root: &Path, search: &[PathBuf], give_up_after: Duration, first_backoff: Duration, settle: Duration) -> Result<bool> {
    let deadline = Instant::now() + give_up_after;
    let profile_path = root.join(INSTALLED_PROFILE.trim_start_matches('/'));
    let text = std::fs::read_to_string(&profile_path).with_context(|| format!("reading the installed profile {}", profile_path.display()))?;
    let profile = Profile::from_source(&SourceFile::from_text(&profile_path, text))
        .map_err(|e| anyhow::anyhow!("the installed profile does not load: {e}"))?
        .profile;
    let keys = hostkeys::host_keys(root, |p| std::fs::read_to_string(p).ok());
    for k in &keys {
        eprintln!("first boot: ssh host key {k}");
    }

    let creds_path = root.join(INSTALLED_CREDENTIALS.trim_start_matches('/'));
    let mut link = match Credentials::load(&creds_path) {
        Ok(c) => Some(c),
        Err(_) => {
            eprintln!("first boot: no registry credentials ({}): nothing is reported", creds_path.display());
            None
        }
    };
    // the cluster step must not wait long on an unreachable registry: two minutes for the
    // enrollment and the "booted" report, the full time only for the final one
    let early = deadline.min(Instant::now() + Duration::from_secs(120));
    let node = link.as_mut().and_then(|c| enrolled(c, &creds_path, root, early));
    let base = json!({
        "hostname": profile.node.hostname,
        "ssh_host_keys": keys.iter().map(HostKey::to_string).collect::<Vec<_>>(),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default(),
    });
    let reporter = match (&link, &node) {
        (Some(c), Some(n)) => match c.registry() {
            Ok(registry) => Some(Reporter { registry, node: n.clone(), base, backoff: first_backoff }),
            Err(e) => {
                eprintln!("first boot: the registry: {e:#}: nothing is reported");
                None
            }
        },
        _ => None,
    };
    let report = |phase: &str, extra: Value, deadline: Instant| {
        if let Some(r) = &reporter {
            r.send(phase, extra, deadline);
        }
    };
    report("booted", json!({}), early);

    let directory = reporter.as_ref().map(|reporter| RegistryDirectory { reporter, deadline });
    let step = Step { profile: &profile, root, tools: &Tools { search: search.to_vec() }, settle, first_backoff };
    let cluster = step.run(directory.as_ref().map(|d| d as &dyn Directory), deadline);
    let command = cluster.command.as_deref().map(|c| format!(" `{c}`")).unwrap_or_default();
    eprintln!("first boot: cluster step {}{command}: {} ({})", cluster.action, if cluster.ok { "ok" } else { "FAILED" }, cluster.detail);
    // the storages need the cluster's /etc/pve: only after a cluster step that succeeded
    let storage = cluster.ok.then(|| storage_step::run(&profile, root, &Tools { search: search.to_vec() }));
    if let Some(s) = &storage {
        eprintln!("first boot: storage step: {} ({})", if s.ok { "ok" } else { "FAILED" }, s.detail);
    }
    let ok = cluster.ok && storage.as_ref().is_none_or(|s| s.ok);
    report(if ok { "ready" } else { "failed" }, json!({ "cluster": cluster, "storage": storage }), deadline);
    if ok {
        let done = root.join(FIRST_BOOT_DONE.trim_start_matches('/'));
        if let Some(d) = done.parent() {
            std::fs::create_dir_all(d).ok();
        }
        std::fs::write(&done, format!("{}\n", humantime::format_rfc3339_seconds(std::time::SystemTime::now())))
            .with_context(|| format!("writing {}", done.display()))?;
        if root == Path::new("/") {
            let _ = std::process::Command::new("systemctl").args(["disable", FIRST_BOOT_UNIT]).status();
        }
    }
    Ok(ok)
}

/// The node's enrollment: saved by the install, or made now with the token when the
/// registry was not reachable during the install.
fn enrolled(c: &mut Credentials, path: &Path, root: &Path, deadline: Instant) -> Option<Enrolled> {
    if let Some(n) = &c.enrollment {
        return Some(n.clone());
    }
    let inventory = keel_installer::hardware::probe(root).ok().and_then(|i| serde_json::to_value(i).ok()).unwrap_or(Value::Null);
    let reg = c.registry().ok()?;
    match retry(deadline, Duration::from_secs(5), "enrolling", || reg.enroll(&c.token, &inventory)) {
        Ok(n) => {
            c.enrollment = Some(n.clone());
            let _ = c.save(path);
            Some(n)
        }
        Err(e) => {
            eprintln!("first boot: {e:#}: nothing is reported");
            None
        }
    }
}

/// Runs `f` until it succeeds, the registry refuses, or the deadline passes.
fn retry<T>(deadline: Instant, first: Duration, what: &str, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut backoff = first;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if e.downcast_ref::<Refused>().is_some() || Instant::now() + backoff > deadline => return Err(e.context(what.to_string())),
            Err(e) => {
                eprintln!("first boot: {what}: {e:#}; again in {} s", backoff.as_secs());
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster_step::tests::{key_pair, stand_ins};
    use crate::phone_home::tests::{free_port, start_registry};
    use keel_registry::{secret, store::NewNode};

    fn ws(path: &str) -> PathBuf {
        PathBuf::from(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR")))
    }

    /// An installed root: the profile, a host key, optionally the registry credentials.
    fn installed_root(dir: &Path, profile: &str, creds: Option<&Credentials>) -> PathBuf {
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("etc/keel")).unwrap();
        std::fs::create_dir_all(root.join("etc/ssh")).unwrap();
        std::fs::copy(ws(&format!("profiles/{profile}.toml")), root.join("etc/keel/profile.toml")).unwrap();
        std::fs::write(root.join("etc/ssh/ssh_host_ed25519_key.pub"), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIKcYzqY/1ZJNwedqKmChCephDC3p/mfMrHcaHJmgH60 root@lab\n").unwrap();
        if let Some(c) = creds {
            c.save(&root.join("etc/keel/first-boot.json")).unwrap();
        }
        root
    }

    /// Both lab nodes at a fresh registry with the cluster's root key; lab-node-02 enrolled
    /// (its credentials), lab-node-01 enrolled and, if `created`, reported "cluster-created"
    /// with `peer_keys`.
    fn registry(dir: &Path, key: &str, created: Option<&[&str]>) -> (Credentials, keel_registry::Store) {
        let port = free_port();
        let store = start_registry(port, &dir.join("registry.db"));
        let url = format!("http://127.0.0.1:{port}");
        let mut creds = Vec::new();
        for (n, mac) in [("lab-node-01", "52:54:00:a4:41:01"), ("lab-node-02", "52:54:00:a4:41:02")] {
            let token = secret::generate();
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                store.put_document("profile", n, &std::fs::read_to_string(ws(&format!("profiles/{n}.toml"))).unwrap(), "x").await.unwrap();
                store.put_document("cluster-key", "lab-cluster", key, "x").await.unwrap();
                let node = NewNode { hostname: n.into(), profile: n.into(), mac: Some(mac.into()), dmi_serial: None, disk_serials: vec![], pxe: false };
                store.arm_node(&node, Some(&secret::hash(&token)), keel_registry::store::now() + 600).await.unwrap();
            });
            let mut c = Credentials::load_or_new(&dir.join(format!("{n}.json")), &url, None, &token);
            c.enrollment = Some(c.registry().unwrap().enroll(&token, &json!({ "nics": [{ "mac": mac }] })).unwrap());
            creds.push(c);
        }
        if let Some(keys) = created {
            let c = &creds[0];
            let body = json!({ "phase": "cluster-created", "ssh_host_keys": keys, "cluster": { "action": "create", "ok": true } });
            c.registry().unwrap().boot(c.enrollment.as_ref().unwrap(), &body).unwrap();
        }
        (creds.remove(1), store)
    }

    /// The second node, end to end through the registry: the first node reported the cluster
    /// created with its host key; node 2 installs the root key, pins that host key, joins with
    /// pvecm add, is a member with quorum, adds two_node/crypto, reports ready, marks itself done.
    #[test]
    fn the_second_node_joins_the_cluster_the_registry_names_and_reports_ready() {
        let dir = tempfile::tempdir().unwrap();
        let (private, peer_key) = key_pair(dir.path());
        let peer_fp = keel_installer::hostkeys::fingerprint(&peer_key).unwrap().to_string();
        let (creds, store) = registry(dir.path(), &private, Some(&[&peer_fp]));
        let root = installed_root(dir.path(), "lab-node-02", Some(&creds));
        let bin = stand_ins(dir.path(), &root, &peer_key, "ok");
        assert!(first_boot(&root, &[bin], Duration::from_secs(30), Duration::from_millis(50), Duration::from_secs(5)).unwrap());
        let log = std::fs::read_to_string(dir.path().join("pvecm.log")).unwrap();
        assert_eq!(log, "add 192.168.100.1 --link0 192.168.100.2 --nodeid 2 --use_ssh\nupdatecerts\n");
        let rt = tokio::runtime::Runtime::new().unwrap();
        assert_eq!(rt.block_on(store.node("lab-node-02")).unwrap().unwrap().state, "ready");
        let report: Value = serde_json::from_str(&rt.block_on(store.boot_report("lab-node-02")).unwrap().unwrap()).unwrap();
        assert_eq!((report["phase"].as_str(), report["cluster"]["action"].as_str(), report["cluster"]["ok"].as_bool()), (Some("ready"), Some("join"), Some(true)), "{report}");
        assert!(report["cluster"]["detail"].as_str().unwrap().contains("two_node/crypto added, config_version 3"), "{report}");
        assert!(root.join("var/lib/keel/first-boot.done").exists());
        let known = std::fs::read_to_string(root.join("root/.ssh/known_hosts")).unwrap();
        assert_eq!(known, format!("192.168.100.1 {peer_key}\n"));
        let auth = std::fs::read_to_string(root.join("root/.ssh/authorized_keys")).unwrap();
        assert!(auth.lines().any(|l| l.starts_with("from=\"192.168.100.0/24\" ssh-ed25519 ")), "{auth}");
        // the storage step: the profile's four storages and its backup job, added with pvesm
        // and pvesh, and in the report
        let calls = std::fs::read_to_string(dir.path().join("pve-config.log")).unwrap();
        assert_eq!(calls.lines().map(|l| l.split(' ').take(4).collect::<Vec<_>>().join(" ")).collect::<Vec<_>>(),
            ["pvesm add zfspool datapool", "pvesm add dir backups", "pvesm add dir templates", "pvesm add pbs pbs-local", "pvesh create /cluster/backup --id"]);
        assert_eq!((report["storage"]["ok"].as_bool(), report["storage"]["detail"].as_str()), (Some(true), Some("5 storages and jobs as the profile says (5 changed)")), "{report}");
        let cfg = std::fs::read_to_string(root.join("etc/pve/storage.cfg")).unwrap();
        assert!(cfg.starts_with("zfspool: datapool\n\tcontent images,rootdir\n\tpool datapool\n\tsparse 1\n\n"), "{cfg}");
        // run again (the other node registered them, or a restart): found, nothing run
        std::fs::remove_file(root.join("var/lib/keel/first-boot.done")).unwrap();
        let s = crate::storage_step::run(&profile_of(&root), &root, &crate::cluster_step::Tools { search: vec![dir.path().join("bin")] });
        assert_eq!((s.ok, s.detail.as_str(), s.commands.len()), (true, "5 storages and jobs as the profile says, nothing changed", 0));
        assert_eq!(std::fs::read_to_string(dir.path().join("pve-config.log")).unwrap(), calls);
    }

    fn profile_of(root: &Path) -> Profile {
        Profile::load(&root.join("etc/keel/profile.toml")).unwrap().profile
    }

    /// pvecm exits 0 but its worker failed (no trust on the peer): keel reports "failed" with
    /// pvecm's words, not "ready", and the unit stays enabled.
    #[test]
    fn a_join_that_pvecm_reports_as_success_but_did_not_happen_is_failed() {
        let dir = tempfile::tempdir().unwrap();
        let (private, peer_key) = key_pair(dir.path());
        let peer_fp = keel_installer::hostkeys::fingerprint(&peer_key).unwrap().to_string();
        let (creds, store) = registry(dir.path(), &private, Some(&[&peer_fp]));
        let root = installed_root(dir.path(), "lab-node-02", Some(&creds));
        let bin = stand_ins(dir.path(), &root, &peer_key, "task-error");
        assert!(!first_boot(&root, &[bin], Duration::from_millis(1500), Duration::from_millis(50), Duration::from_secs(1)).unwrap());
        assert!(!root.join("var/lib/keel/first-boot.done").exists());
        let rt = tokio::runtime::Runtime::new().unwrap();
        assert_eq!(rt.block_on(store.node("lab-node-02")).unwrap().unwrap().state, "boot-failed");
        let report: Value = serde_json::from_str(&rt.block_on(store.boot_report("lab-node-02")).unwrap().unwrap()).unwrap();
        let detail = report["cluster"]["detail"].as_str().unwrap();
        assert!(detail.contains("TASK ERROR: unable to copy ssh ID") && detail.contains("it exits 0 when it fails"), "{detail}");
    }
}
