//! `keel first-boot`: what the installed node does once, started by its keel-first-boot unit
//! (Type=exec, so boot never waits for it):
//! 1. report "booted" to the registry, with the new SSH host key fingerprints;
//! 2. the cluster step: on a Proxmox VE node (`pvecm` present) the first node of the profile's
//!    cluster (lowest id) runs `pvecm create`, the others `pvecm add FIRST --link0 OWN
//!    --use_ssh`, retried with backoff while the first node is not up; a node already in a
//!    cluster (/etc/pve/corosync.conf exists) does nothing; without `pvecm` (a Debian-on-ZFS or
//!    lab node) corosync already runs from keel's rendered configuration and nothing is run;
//! 3. report "ready" (or "failed" with the step's output), then mark itself done and disable
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

use crate::phone_home::{Credentials, Enrolled, Refused};

/// What the cluster step did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClusterResult {
    /// "create", "join", "member" (nothing to do) or "none" (no pvecm).
    pub action: String,
    pub ok: bool,
    pub command: Option<String>,
    pub attempts: u32,
    pub detail: String,
}

pub fn run(root: &Path, give_up_after: Duration) -> Result<ExitCode> {
    let path: Vec<PathBuf> = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    let ok = first_boot(root, &path, give_up_after, Duration::from_secs(5))?;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The whole first boot; `search` is where `pvecm` is looked for (PATH). Returns whether
/// everything is done (then the unit is disabled).
pub fn first_boot(root: &Path, search: &[PathBuf], give_up_after: Duration, first_backoff: Duration) -> Result<bool> {
    let deadline = Instant::now() + give_up_after;
    let profile_path = root.join(INSTALLED_PROFILE.trim_start_matches('/'));
    let text = std::fs::read_to_string(&profile_path).with_context(|| format!("reading the installed profile {}", profile_path.display()))?;
    let profile = Profile::from_source_without_files(&SourceFile::from_text(&profile_path, text))
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
    let report = |phase: &str, extra: Value, deadline: Instant| {
        if let (Some(c), Some(n)) = (&link, &node) {
            let mut body = base.clone();
            body["phase"] = json!(phase);
            if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
                b.extend(e.clone());
            }
            if let Err(e) = retry(deadline, first_backoff, "reporting to the registry", || c.registry()?.boot(n, &body)) {
                eprintln!("first boot: {e:#}");
            }
        }
    };
    report("booted", json!({}), early);

    let cluster = cluster_step(&profile, root, search, deadline, first_backoff);
    eprintln!("first boot: cluster step {}: {} ({})", cluster.action, if cluster.ok { "ok" } else { "FAILED" }, cluster.detail);
    report(if cluster.ok { "ready" } else { "failed" }, json!({ "cluster": cluster }), deadline);
    if cluster.ok {
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
    Ok(cluster.ok)
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

fn find(search: &[PathBuf], name: &str) -> Option<PathBuf> {
    search.iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The cluster step (see the module text).
pub fn cluster_step(profile: &Profile, root: &Path, search: &[PathBuf], deadline: Instant, first_backoff: Duration) -> ClusterResult {
    let result = |action: &str, ok, command: Option<String>, attempts, detail: String| ClusterResult { action: action.into(), ok, command, attempts, detail };
    let Some(pvecm) = find(search, "pvecm") else {
        return result("none", true, None, 0, "pvecm is not installed (not Proxmox VE): corosync runs from keel's configuration".into());
    };
    if root.join("etc/pve/corosync.conf").exists() {
        return result("member", true, None, 0, "/etc/pve/corosync.conf exists: this node is in a cluster already".into());
    }
    let own = profile.this_cluster_node();
    let first = profile.cluster.nodes.iter().min_by_key(|n| n.id).expect("validated: the node list holds this node");
    let (action, args): (&str, Vec<String>) = if first.name == own.name {
        ("create", vec!["create".into(), profile.cluster.name.clone(), "--link0".into(), own.ring0_address.to_string()])
    } else {
        // the shared authkey and corosync.conf keel placed are replaced by the cluster's
        ("join", vec!["add".into(), first.ring0_address.to_string(), "--link0".into(), own.ring0_address.to_string(), "--use_ssh".into(), "--force".into()])
    };
    let line = format!("{} {}", pvecm.display(), args.join(" "));
    let mut backoff = first_backoff;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let out = std::process::Command::new(&pvecm).args(&args).output();
        let (ok, tail) = match out {
            Ok(o) => {
                let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
                let tail: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
                (o.status.success(), format!("exit {}: {}", o.status.code().unwrap_or(-1), tail[tail.len().saturating_sub(5)..].join(" | ")))
            }
            Err(e) => (false, format!("could not start: {e}")),
        };
        if ok {
            return result(action, true, Some(line), attempts, tail);
        }
        if Instant::now() + backoff > deadline {
            return result(action, false, Some(line), attempts, tail);
        }
        eprintln!("first boot: `{line}` failed ({tail}); again in {} s", backoff.as_secs());
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    /// A fake `pvecm` that logs its arguments and fails its first `fail_first` calls.
    fn fake_pvecm(dir: &Path, fail_first: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let script = format!(
            "#!/bin/sh\necho \"$*\" >>{log}\nn=$(wc -l <{log})\nif [ \"$n\" -le {fail_first} ]; then echo \"unable to connect to 192.168.100.1\" >&2; exit 255; fi\necho joined\n",
            log = dir.join("pvecm.log").display()
        );
        std::fs::write(bin.join("pvecm"), script).unwrap();
        std::fs::set_permissions(bin.join("pvecm"), std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }

    /// lab-node-02 enrolled at a fresh registry: its credentials and the store.
    fn enrolled_node(dir: &Path) -> (Credentials, keel_registry::Store) {
        let port = free_port();
        let store = start_registry(port, &dir.join("registry.db"));
        let token = secret::generate();
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            store.put_document("profile", "lab-node-02", &std::fs::read_to_string(ws("profiles/lab-node-02.toml")).unwrap(), "x").await.unwrap();
            let node = NewNode { hostname: "lab-node-02".into(), profile: "lab-node-02".into(), mac: Some("52:54:00:a4:41:02".into()), dmi_serial: None, pxe: false };
            store.arm_node(&node, &secret::hash(&token), keel_registry::store::now() + 600).await.unwrap();
        });
        let url = format!("http://127.0.0.1:{port}");
        let mut creds = Credentials::load_or_new(&dir.join("c.json"), &url, None, &token);
        creds.enrollment = Some(creds.registry().unwrap().enroll(&token, &json!({ "nics": [{ "mac": "52:54:00:a4:41:02" }] })).unwrap());
        (creds, store)
    }

    /// The second node: reports booted with its host key, joins the first node with pvecm add
    /// (the first node is not up at the first try: retried), reports ready, marks itself done.
    #[test]
    fn the_second_node_joins_with_retries_and_reports_ready() {
        let dir = tempfile::tempdir().unwrap();
        let (creds, store) = enrolled_node(dir.path());
        let root = installed_root(dir.path(), "lab-node-02", Some(&creds));
        let bin = fake_pvecm(dir.path(), 1);
        assert!(first_boot(&root, &[bin], Duration::from_secs(30), Duration::from_millis(50)).unwrap());
        let log = std::fs::read_to_string(dir.path().join("pvecm.log")).unwrap();
        assert_eq!(log, "add 192.168.100.1 --link0 192.168.100.2 --use_ssh --force\n".repeat(2));
        let rt = tokio::runtime::Runtime::new().unwrap();
        let node = rt.block_on(store.node("lab-node-02")).unwrap().unwrap();
        assert_eq!(node.state, "ready");
        let report: Value = serde_json::from_str(&rt.block_on(store.boot_report("lab-node-02")).unwrap().unwrap()).unwrap();
        assert_eq!(report["phase"], "ready");
        assert_eq!(report["cluster"]["action"], "join");
        assert_eq!(report["cluster"]["attempts"], 2);
        assert_eq!(report["ssh_host_keys"], json!(["ssh-ed25519 SHA256:XNRWIicPW0dPIb3dFfNwaHbdOAP97r4cck7GtCI3OaI"]));
        assert!(root.join("var/lib/keel/first-boot.done").exists());
    }

    /// The first node creates the cluster; a node already in one runs nothing; a node without
    /// pvecm (Debian-on-ZFS, the lab) runs nothing and is ready; no credentials: nothing reported.
    #[test]
    fn first_node_creates_members_and_plain_debian_do_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = installed_root(dir.path(), "lab-node-01", None);
        let bin = fake_pvecm(dir.path(), 0);
        assert!(first_boot(&root, std::slice::from_ref(&bin), Duration::from_secs(10), Duration::from_millis(50)).unwrap());
        assert_eq!(std::fs::read_to_string(dir.path().join("pvecm.log")).unwrap(), "create lab-cluster --link0 192.168.100.1\n");

        std::fs::create_dir_all(root.join("etc/pve")).unwrap();
        std::fs::write(root.join("etc/pve/corosync.conf"), "totem {}\n").unwrap();
        let p = Profile::from_source_without_files(&SourceFile::read(&root.join("etc/keel/profile.toml")).unwrap()).unwrap().profile;
        let r = cluster_step(&p, &root, std::slice::from_ref(&bin), Instant::now() + Duration::from_secs(5), Duration::from_millis(10));
        assert_eq!((r.action.as_str(), r.ok, r.attempts), ("member", true, 0));
        let r = cluster_step(&p, &root, &[dir.path().join("empty")], Instant::now() + Duration::from_secs(5), Duration::from_millis(10));
        assert_eq!((r.action.as_str(), r.ok), ("none", true));
        assert_eq!(std::fs::read_to_string(dir.path().join("pvecm.log")).unwrap().lines().count(), 1, "pvecm ran once only");
    }

    /// The first node never comes up: the join gives up at the deadline, the registry hears
    /// "failed" with pvecm's words, and the unit is not marked done (systemd tries again).
    #[test]
    fn a_join_that_keeps_failing_reports_failed_and_stays_enabled() {
        let dir = tempfile::tempdir().unwrap();
        let (creds, store) = enrolled_node(dir.path());
        let root = installed_root(dir.path(), "lab-node-02", Some(&creds));
        let bin = fake_pvecm(dir.path(), 1000);
        assert!(!first_boot(&root, &[bin], Duration::from_millis(400), Duration::from_millis(50)).unwrap());
        assert!(!root.join("var/lib/keel/first-boot.done").exists());
        let rt = tokio::runtime::Runtime::new().unwrap();
        assert_eq!(rt.block_on(store.node("lab-node-02")).unwrap().unwrap().state, "boot-failed");
        let report: Value = serde_json::from_str(&rt.block_on(store.boot_report("lab-node-02")).unwrap().unwrap()).unwrap();
        assert_eq!(report["cluster"]["ok"], false);
        assert!(report["cluster"]["detail"].as_str().unwrap().contains("exit 255: unable to connect to 192.168.100.1"), "{report}");
        assert!(report["cluster"]["attempts"].as_u64().unwrap() >= 2);
    }
}
