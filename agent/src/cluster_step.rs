//! The first boot's cluster step: the cluster formed the way Proxmox VE forms it.
//!
//! keel writes no corosync file at install; here, on the booted node:
//! 1. a node already in the cluster (this node in `/etc/pve/corosync.conf`'s nodelist, corosync
//!    quorate) does nothing;
//! 2. the trust `pvecm add --use_ssh` needs, without passwords: the cluster's root key pair
//!    from the registry as `/root/.ssh/id_rsa`, its public half accepted for root from the
//!    cluster network only;
//! 3. the role from the registry's view of the cluster: a member that formed the cluster
//!    (phase "cluster-created" or "ready") is joined, whichever node this is (a node rebuilt
//!    while its peer runs rejoins that peer's cluster under its old name and id); otherwise the
//!    node with the lowest id runs `pvecm create NAME --link0 ADDR --nodeid ID` and reports
//!    "cluster-created", the others wait for that;
//! 4. joining: the peer's host key from `ssh-keyscan`, pinned in known_hosts only when its
//!    fingerprint is one the peer reported to the registry; then
//!    `pvecm add PEER --link0 ADDR --nodeid ID --use_ssh` (`--force` from the second try);
//! 5. success is never pvecm's exit code (it exits 0 when its worker fails: pve-common
//!    CLIHandler `run_cli_handler` ends in `exit 0`, RESTEnvironment `fork_worker` prints
//!    "TASK ERROR"): this node must be in the nodelist with its id and corosync quorate with
//!    every listed node, within a time limit;
//! 6. after a join, `pvecm updatecerts` (as Proxmox VE asks of a re-added node) and this node's
//!    current host keys in place of its old ones in the peer's root known_hosts;
//! 7. once the nodelist holds every node of the profile, the profile's `two_node` and crypto
//!    settings go into `/etc/pve/corosync.conf` with a raised `config_version`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use keel_installer::hostkeys;
use keel_installer::profile::Profile;
use keel_installer::render::corosync;
use serde_json::Value;

/// What the cluster step did (reported to the registry).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClusterResult {
    /// "create", "join", "member" (nothing to do), "manual" (no registry) or "none" (no pvecm).
    pub action: String,
    pub ok: bool,
    pub command: Option<String>,
    pub attempts: u32,
    pub detail: String,
}

/// A node of the cluster as the registry reports it (`GET /v1/cluster`).
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub hostname: String,
    pub node_id: Option<u32>,
    pub is_self: bool,
    pub state: String,
    /// Its cluster step formed or joined the cluster.
    pub in_cluster: bool,
    pub ssh_host_keys: Vec<String>,
}

impl Member {
    pub fn from_view(v: &Value) -> Vec<Member> {
        v["members"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| Member {
                        hostname: m["hostname"].as_str().unwrap_or_default().to_string(),
                        node_id: m["node_id"].as_u64().map(|n| n as u32),
                        is_self: m["self"].as_bool().unwrap_or(false),
                        state: m["state"].as_str().unwrap_or_default().to_string(),
                        in_cluster: m["cluster"]["ok"].as_bool() == Some(true)
                            && matches!(m["cluster"]["action"].as_str(), Some("create" | "join" | "member")),
                        ssh_host_keys: m["ssh_host_keys"].as_array().map(|k| k.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A member whose cluster a node can join now.
    fn formed_cluster(&self) -> bool {
        !self.is_self && self.in_cluster && matches!(self.state.as_str(), "cluster-created" | "ready")
    }
}

/// What the step asks of the registry.
pub trait Directory {
    fn members(&self) -> Result<Vec<Member>>;
    fn cluster_key(&self) -> Result<String>;
    /// Reports "cluster-created" (the creator, before the joiners may start).
    fn cluster_created(&self, result: &ClusterResult);
}

/// Where the programs are (PATH, or a test's folder of stand-ins first).
pub struct Tools {
    pub search: Vec<PathBuf>,
}

impl Tools {
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        self.search.iter().map(|d| d.join(name)).find(|p| p.is_file())
    }

    /// Runs a program (found in `search`, else by PATH): (success, exit code, stdout+stderr).
    pub(crate) fn run(&self, name: &str, args: &[String]) -> (bool, i32, String) {
        self.run_for(name, args, Duration::from_secs(120))
    }

    /// The same, killed after `limit` (pvecm's join waits for quorum without a time limit).
    fn run_for(&self, name: &str, args: &[String], limit: Duration) -> (bool, i32, String) {
        use std::io::Read;
        use std::process::Stdio;
        let program = self.find(name).unwrap_or_else(|| PathBuf::from(name));
        let mut child = match std::process::Command::new(&program).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
            Ok(c) => c,
            Err(e) => return (false, -1, format!("{name} could not start: {e}")),
        };
        let drain = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut buf);
                }
                buf
            })
        };
        let out = drain(child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
        let err = drain(child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if started.elapsed() >= limit => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(_) => break None,
            }
        };
        let text = format!("{}{}", String::from_utf8_lossy(&out.join().unwrap_or_default()), String::from_utf8_lossy(&err.join().unwrap_or_default()));
        match status {
            Some(s) => (s.success(), s.code().unwrap_or(-1), text),
            None => (false, -1, format!("{text}\n{name} killed after {} s", limit.as_secs())),
        }
    }
}

/// The last lines of a program's output, for the report.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

pub struct Step<'a> {
    pub profile: &'a Profile,
    pub root: &'a Path,
    pub tools: &'a Tools,
    /// How long the post-check waits for membership and quorum after a pvecm run.
    pub settle: Duration,
    pub first_backoff: Duration,
}

impl Step<'_> {
    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    /// This node in the nodelist with its id, corosync quorate with every listed node; waits
    /// up to `until`. Ok(detail) or Err(what is missing).
    fn member(&self, until: Instant) -> Result<String, String> {
        let me = self.profile.this_cluster_node();
        loop {
            let state = (|| {
                let conf = std::fs::read_to_string(self.path("/etc/pve/corosync.conf")).map_err(|_| "/etc/pve/corosync.conf does not exist".to_string())?;
                let nodes = corosync::nodelist(&conf);
                match nodes.iter().find(|n| n.name == me.name) {
                    Some(n) if n.nodeid == me.id => {}
                    Some(n) => return Err(format!("{} has node id {} in /etc/pve/corosync.conf, the profile says {}", me.name, n.nodeid, me.id)),
                    None => return Err(format!("{} is not in /etc/pve/corosync.conf's nodelist", me.name)),
                }
                let (_, _, q) = self.tools.run("corosync-quorumtool", &["-s".into()]);
                let field = |name: &str| q.lines().find(|l| l.trim_start().starts_with(name)).and_then(|l| l.split(':').nth(1)).map(|v| v.trim().to_string()).unwrap_or_default();
                let (quorate, listed) = (field("Quorate"), field("Nodes"));
                if quorate == "Yes" && listed == nodes.len().to_string() {
                    Ok(format!("{} is node {} of {}; corosync quorate with {listed} node(s)", me.name, me.id, nodes.len()))
                } else {
                    Err(format!("corosync: quorate {:?}, nodes {:?} of {} listed", quorate, listed, nodes.len()))
                }
            })();
            match state {
                Ok(d) => return Ok(d),
                Err(e) if Instant::now() >= until => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(500).min(self.settle)),
            }
        }
    }

    /// The cluster's root key as /root/.ssh/id_rsa (+ .pub), its public half accepted for root
    /// from the cluster network only.
    fn trust(&self, dir: &dyn Directory) -> Result<String> {
        let key = dir.cluster_key().context("the cluster's root key (PUT /v1/admin/cluster-keys/CLUSTER on the registry)")?;
        let ssh = self.path("/root/.ssh");
        std::fs::create_dir_all(&ssh).with_context(|| format!("creating {}", ssh.display()))?;
        let private = ssh.join("id_rsa");
        write_mode(&private, key.as_bytes(), 0o600)?;
        let (ok, code, out) = self.tools.run("ssh-keygen", &["-y".into(), "-f".into(), private.display().to_string()]);
        let public = out.lines().find(|l| l.starts_with("ssh-")).map(str::trim).filter(|_| ok).ok_or_else(|| anyhow!("`ssh-keygen -y -f {}` exited {code}: {}", private.display(), tail(&out, 2)))?;
        let public = format!("{public} root@{}", self.profile.cluster.name);
        write_mode(&ssh.join("id_rsa.pub"), format!("{public}\n").as_bytes(), 0o644)?;
        let net = self.profile.network.cluster_bridge.address.trunc();
        let line = format!("from=\"{net}\" {public}");
        let auth = ssh.join("authorized_keys");
        let have = std::fs::read_to_string(&auth).unwrap_or_default();
        let blob = public.split_whitespace().nth(1).unwrap_or_default();
        if !have.lines().any(|l| l.split_whitespace().any(|w| w == blob)) {
            let mut text = have;
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&line);
            text.push('\n');
            write_mode(&auth, text.as_bytes(), 0o600)?;
        }
        Ok(format!("cluster root key installed, accepted from {net}"))
    }

    /// The peer's host key, pinned in root's known_hosts only if it is one the peer reported.
    fn pin(&self, peer: &Member, addr: &str) -> Result<String> {
        let (_, _, scan) = self.tools.run("ssh-keyscan", &["-T".into(), "10".into(), addr.into()]);
        let offered: Vec<(&str, hostkeys::HostKey)> = scan
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' ').and_then(|(_, key)| hostkeys::fingerprint(key).map(|k| (key, k))))
            .collect();
        let trusted: Vec<&str> = offered.iter().filter(|(_, k)| peer.ssh_host_keys.iter().any(|r| *r == k.to_string())).map(|(line, _)| *line).collect();
        if trusted.is_empty() {
            bail!(
                "{addr} offers host keys {} but {} reported {} to the registry: not trusted",
                if offered.is_empty() { "none".to_string() } else { offered.iter().map(|(_, k)| k.to_string()).collect::<Vec<_>>().join(", ") },
                peer.hostname,
                if peer.ssh_host_keys.is_empty() { "none".to_string() } else { peer.ssh_host_keys.join(", ") }
            );
        }
        let known = self.path("/root/.ssh/known_hosts");
        let kept: Vec<String> = std::fs::read_to_string(&known).unwrap_or_default().lines().filter(|l| l.split_whitespace().next() != Some(addr)).map(String::from).collect();
        let mut text: String = kept.iter().map(|l| format!("{l}\n")).collect();
        for key in &trusted {
            text.push_str(&format!("{addr} {key}\n"));
        }
        write_mode(&known, text.as_bytes(), 0o644)?;
        Ok(format!("{} host key(s) of {} ({addr}) pinned", trusted.len(), peer.hostname))
    }

    /// After a join: what Proxmox VE's admin guide asks of a re-added node (pvecm.adoc, "Remove a
    /// Cluster Node": `pvecm updatecerts` once on it, so its new host key replaces the old one
    /// cluster-wide; on a first join it finds nothing to change), and the peer's root
    /// known_hosts, where keel pinned this node's address when the peer joined it: the old
    /// node's entries are removed (`ssh-keygen -R`), this node's current host keys put in their
    /// place, over the SSH trust the join itself used. Neither stops the join; both are reported.
    fn after_join(&self, pvecm: &Path, peer_addr: &str) -> String {
        let me = self.profile.this_cluster_node();
        let (ok, code, out) = self.tools.run(&pvecm.display().to_string(), &["updatecerts".into()]);
        let certs = if ok { "pvecm updatecerts done".to_string() } else { format!("pvecm updatecerts exit {code}: {}", tail(&out, 2)) };
        let keys = hostkeys::public_keys(self.root, |p| std::fs::read_to_string(p).ok());
        if keys.is_empty() {
            return format!("{certs}; no host key of this node found: {peer_addr}'s known_hosts left as it was");
        }
        let addr = me.ring0_address.to_string();
        let mut script = format!("f=/root/.ssh/known_hosts; mkdir -p -m 0700 /root/.ssh; touch $f; ssh-keygen -R {addr} -f $f >/dev/null 2>&1; ssh-keygen -R {} -f $f >/dev/null 2>&1; rm -f $f.old", me.name);
        for k in &keys {
            script.push_str(&format!("; echo '{addr} {k}' >>$f"));
        }
        let args: Vec<String> = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", &format!("root@{peer_addr}"), &script].map(String::from).to_vec();
        let (ok, code, out) = self.tools.run("ssh", &args);
        if ok {
            format!("{certs}; {peer_addr}'s known_hosts: old entries for {addr} removed, {} host key(s) of this node added", keys.len())
        } else {
            format!("{certs}; {peer_addr}'s known_hosts NOT updated (ssh exit {code}: {}): on {peer_addr} run `ssh-keygen -R {addr}`", tail(&out, 2))
        }
    }

    /// Runs pvecm, then the post-check; the exit code is only reported.
    fn pvecm(&self, pvecm: &Path, args: &[String], until: Instant) -> Result<String, String> {
        // pvecm add waits for quorum without a time limit (pve-cluster Setup.pm finish_join)
        let limit = self.settle * 3;
        let (ok, code, out) = self.tools.run_for(&pvecm.display().to_string(), args, limit);
        let said = tail(&out, 4);
        // pvecm's worker failed (it says so, and exits 0): no membership to wait for
        let until = if out.contains("TASK ERROR") { Instant::now() } else { until };
        match self.member(until) {
            Ok(d) => Ok(format!("{d} (pvecm exit {code}: {said})")),
            Err(e) => Err(format!("{e}; pvecm {} exit {code}{}: {said}", args.first().map(String::as_str).unwrap_or(""), if ok { " (it exits 0 when it fails)" } else { "" })),
        }
    }

    /// The profile's two_node and crypto settings, once the nodelist holds every node.
    fn settings(&self) -> Result<String, String> {
        let path = self.path("/etc/pve/corosync.conf");
        let conf = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let listed = corosync::nodelist(&conf).len();
        if listed < self.profile.cluster.nodes.len() {
            return Ok(format!("two_node/crypto left for the last node to join ({listed} of {} listed)", self.profile.cluster.nodes.len()));
        }
        match corosync::apply_profile(&conf, self.profile)? {
            None => Ok("two_node/crypto as the profile says".into()),
            Some(new) => {
                // as Proxmox VE's admin guide edits it: a new file beside, then renamed over
                let tmp = self.path("/etc/pve/corosync.conf.new");
                std::fs::write(&tmp, new.as_bytes()).map_err(|e| format!("{}: {e}", tmp.display()))?;
                std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
                Ok(format!("two_node/crypto added, config_version {}", corosync::config_version(&new).unwrap_or(0)))
            }
        }
    }

    pub fn run(&self, dir: Option<&dyn Directory>, deadline: Instant) -> ClusterResult {
        let result = |action: &str, ok, command: Option<String>, attempts, detail: String| ClusterResult { action: action.into(), ok, command, attempts, detail };
        let Some(pvecm) = self.tools.find("pvecm") else {
            return result("none", false, None, 0, "pvecm is not installed: not a Proxmox VE node".into());
        };
        let c = &self.profile.cluster;
        let me = self.profile.this_cluster_node();
        if let Ok(d) = self.member(Instant::now()) {
            return match self.settings() {
                Ok(s) => result("member", true, None, 0, format!("{d}; {s}")),
                Err(e) => result("member", false, None, 0, format!("{d}; {e}")),
            };
        }
        let Some(dir) = dir else {
            let first = c.nodes.iter().min_by_key(|n| n.id).expect("validated: nodes");
            return result("manual", true, None, 0, format!(
                "no registry: the cluster is not formed automatically (the trust and the first node's host key come from it); on {} run `pvecm create {} --link0 {} --nodeid {}`, on the others `pvecm add {} --link0 OWN-ADDRESS --nodeid OWN-ID --use_ssh`",
                first.name, c.name, first.ring0_address, first.id, first.ring0_address
            ));
        };
        let trusted = match self.trust(dir) {
            Ok(t) => t,
            Err(e) => return result("join", false, None, 0, format!("{e:#}")),
        };
        let lowest = c.nodes.iter().map(|n| n.id).min().unwrap_or(me.id);
        let mut backoff = self.first_backoff;
        let mut attempts = 0;
        let mut last = String::new();
        loop {
            let members = dir.members();
            let peer = members.as_ref().ok().and_then(|m| m.iter().filter(|m| m.formed_cluster()).min_by_key(|m| m.node_id.unwrap_or(u32::MAX)).cloned());
            let until = Instant::now() + self.settle;
            let attempt = match (&members, peer) {
                (Err(e), _) => Some(("join", None, Err(format!("the registry's cluster view: {e:#}")))),
                (Ok(_), Some(peer)) => {
                    let Some(addr) = c.nodes.iter().find(|n| n.name == peer.hostname).map(|n| n.ring0_address.to_string()) else {
                        return result("join", false, None, attempts, format!("{} is not in the profile's cluster.nodes", peer.hostname));
                    };
                    attempts += 1;
                    let mut args: Vec<String> = ["add", &addr, "--link0", &me.ring0_address.to_string(), "--nodeid", &me.id.to_string(), "--use_ssh"].map(String::from).to_vec();
                    if attempts > 1 {
                        args.push("--force".into());
                    }
                    let line = format!("pvecm {}", args.join(" "));
                    let outcome = self
                        .pin(&peer, &addr)
                        .map_err(|e| format!("{e:#}"))
                        .and_then(|pinned| self.pvecm(&pvecm, &args, until).map(|d| format!("{trusted}; {pinned}; {d}; {}", self.after_join(&pvecm, &addr))));
                    Some(("join", Some(line), outcome))
                }
                (Ok(_), None) if me.id == lowest => {
                    attempts += 1;
                    let args: Vec<String> = ["create", &c.name, "--link0", &me.ring0_address.to_string(), "--nodeid", &me.id.to_string()].map(String::from).to_vec();
                    let line = format!("pvecm {}", args.join(" "));
                    let outcome = self.pvecm(&pvecm, &args, until);
                    if let Ok(d) = &outcome {
                        dir.cluster_created(&result("create", true, Some(line.clone()), attempts, d.clone()));
                    }
                    Some(("create", Some(line), outcome))
                }
                (Ok(_), None) => {
                    last = format!("waiting for the node with id {lowest} to report the cluster created");
                    None
                }
            };
            if let Some((action, line, outcome)) = attempt {
                match outcome.and_then(|d| self.settings().map(|s| format!("{d}; {s}"))) {
                    Ok(d) => return result(action, true, line, attempts, d),
                    Err(e) if Instant::now() + backoff > deadline => return result(action, false, line, attempts, e),
                    Err(e) => {
                        eprintln!("first boot: cluster step {action} failed: {e}; again in {} s", backoff.as_secs());
                        last = e;
                    }
                }
            } else if Instant::now() + backoff > deadline {
                return result("join", false, None, attempts, last);
            } else {
                eprintln!("first boot: {last}; again in {} s", backoff.as_secs());
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }
}

fn write_mode(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).with_context(|| format!("setting the mode of {}", path.display()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::RefCell;

    /// (a cluster root key, a peer's public host key line), made with the real ssh-keygen.
    pub(crate) fn key_pair(dir: &Path) -> (String, String) {
        let mut out = Vec::new();
        for name in ["cluster-key", "peer-host-key"] {
            let f = dir.join(name);
            let _ = std::fs::remove_file(&f);
            let s = std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"]).arg(&f).status().unwrap();
            assert!(s.success());
            out.push(f);
        }
        let private = std::fs::read_to_string(&out[0]).unwrap();
        let public = std::fs::read_to_string(out[1].with_extension("pub")).unwrap().split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        (private, public)
    }

    /// Stand-ins for pvecm, corosync-quorumtool and ssh-keyscan. pvecm ("ok") writes the
    /// corosync.conf pvecm create / add would leave; ("task-error") prints its worker's error
    /// and exits 0, as the real one does. corosync-quorumtool is quorate with the nodes listed
    /// unless `DIR/noquorum` exists. ssh-keyscan offers `peer_key`.
    pub(crate) fn stand_ins(dir: &Path, root: &Path, peer_key: &str, mode: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let conf = root.join("etc/pve/corosync.conf");
        let node = |n: u32| format!("  node {{\\n    name: lab-node-0{n}\\n    nodeid: {n}\\n    quorum_votes: 1\\n    ring0_addr: 192.168.100.{n}\\n  }}\\n");
        let file = |nodes: &str, version: u32| format!("nodelist {{\\n{nodes}}}\\n\\nquorum {{\\n  provider: corosync_votequorum\\n}}\\n\\ntotem {{\\n  cluster_name: lab-cluster\\n  config_version: {version}\\n  secauth: on\\n  version: 2\\n}}\\n");
        let pvecm = format!(
            "#!/bin/sh\necho \"$*\" >>{log}\nif [ {mode} = hang ]; then echo 'waiting for quorum...'; exec sleep 600; fi\nif [ {mode} = task-error ]; then echo 'TASK ERROR: unable to copy ssh ID'; exit 0; fi\nmkdir -p {pve}\ncase $1 in\n  create) printf '{one}' >{conf} ;;\n  add) printf '{two}' >{conf} ;;\nesac\n",
            log = dir.join("pvecm.log").display(),
            pve = conf.parent().unwrap().display(),
            conf = conf.display(),
            one = file(&node(1), 1),
            two = file(&format!("{}{}", node(1), node(2)), 2),
        );
        let quorumtool = format!(
            "#!/bin/sh\n[ -e {conf} ] || {{ echo 'Cannot initialize QUORUM service' >&2; exit 1; }}\nif [ -e {dir}/noquorum ]; then printf 'Quorate:          No\\nNodes:            1\\n'; exit 2; fi\nprintf 'Quorate:          Yes\\nNodes:            %s\\n' $(grep -c nodeid: {conf})\n",
            conf = conf.display(),
            dir = dir.display()
        );
        let keyscan = format!("#!/bin/sh\naddr=$(eval echo \\${{$#}})\necho \"# $addr:22 SSH-2.0-OpenSSH_9.2p1\"\necho \"$addr {peer_key}\"\n");
        // ssh: each call's arguments, one per line, then a blank line
        let ssh = format!("#!/bin/sh\nprintf '%s\\n' \"$@\" '' >>{}\n", dir.join("ssh.log").display());
        // pvesm add / pvesh create /cluster/backup: a section appended to storage.cfg / jobs.cfg
        // (each call logged to DIR/pve-config.log)
        let section = |file: &str| format!(
            "printf '%s: %s\\n' \"$kind\" \"$id\" >>{pve}/{file}\nwhile [ $# -gt 1 ]; do printf '\\t%s %s\\n' \"${{1#--}}\" \"$2\" >>{pve}/{file}; shift 2; done\necho >>{pve}/{file}\n",
            pve = conf.parent().unwrap().display()
        );
        let log = dir.join("pve-config.log");
        let pvesm = format!("#!/bin/sh\necho \"pvesm $*\" >>{log}\n[ \"$1\" = add ] || exit 2\nkind=$2 id=$3\nshift 3\n{}", section("storage.cfg"), log = log.display());
        let pvesh = format!("#!/bin/sh\necho \"pvesh $*\" >>{log}\n[ \"$1 $2 $3\" = 'create /cluster/backup --id' ] || exit 2\nkind=vzdump id=$4\nshift 4\n{}", section("jobs.cfg"), log = log.display());
        for (name, text) in [("pvecm", pvecm), ("corosync-quorumtool", quorumtool), ("ssh-keyscan", keyscan), ("ssh", ssh), ("pvesm", pvesm), ("pvesh", pvesh)] {
            std::fs::write(bin.join(name), text).unwrap();
            std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        bin
    }

    fn profile(name: &str) -> Profile {
        Profile::load(&PathBuf::from(format!("{}/../profiles/{name}.toml", env!("CARGO_MANIFEST_DIR")))).unwrap().profile
    }

    struct FakeDirectory {
        members: RefCell<Vec<Member>>,
        key: String,
        created: RefCell<Vec<ClusterResult>>,
    }

    impl Directory for FakeDirectory {
        fn members(&self) -> Result<Vec<Member>> {
            Ok(self.members.borrow().clone())
        }
        fn cluster_key(&self) -> Result<String> {
            Ok(self.key.clone())
        }
        fn cluster_created(&self, r: &ClusterResult) {
            self.created.borrow_mut().push(r.clone());
        }
    }

    fn member(name: &str, id: u32, is_self: bool, state: &str, in_cluster: bool, keys: &[String]) -> Member {
        Member { hostname: name.into(), node_id: Some(id), is_self, state: state.into(), in_cluster, ssh_host_keys: keys.to_vec() }
    }

    fn step<'a>(p: &'a Profile, root: &'a Path, tools: &'a Tools) -> Step<'a> {
        Step { profile: p, root, tools, settle: Duration::from_millis(300), first_backoff: Duration::from_millis(20) }
    }

    /// A test's world: a temporary root, the stand-ins in `mode`, the peer's host key line, a
    /// fake registry holding `members` and the cluster key.
    struct World {
        dir: tempfile::TempDir,
        root: PathBuf,
        tools: Tools,
        peer: String,
        directory: FakeDirectory,
    }

    fn world(mode: &str, members: Vec<Member>) -> World {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let (key, peer) = key_pair(dir.path());
        let tools = Tools { search: vec![stand_ins(dir.path(), &root, &peer, mode)] };
        let directory = FakeDirectory { members: RefCell::new(members), key, created: RefCell::new(vec![]) };
        World { dir, root, tools, peer, directory }
    }

    /// The first node creates the cluster (--nodeid), reports "cluster-created" before it is
    /// ready, and leaves two_node for the last node to join.
    #[test]
    fn the_lowest_id_creates_and_reports_cluster_created() {
        let w = world("ok", vec![member("lab-node-01", 1, true, "booted", false, &[]), member("lab-node-02", 2, false, "booted", false, &[])]);
        let (dir, root, tools, d) = (&w.dir, &w.root, &w.tools, &w.directory);
        let p = profile("lab-node-01");
        let r = step(&p, root, tools).run(Some(d), Instant::now() + Duration::from_secs(10));
        assert!(r.ok, "{r:?}");
        assert_eq!((r.action.as_str(), r.command.as_deref()), ("create", Some("pvecm create lab-cluster --link0 192.168.100.1 --nodeid 1")));
        assert!(r.detail.contains("left for the last node to join (1 of 2 listed)"), "{r:?}");
        assert_eq!(d.created.borrow().len(), 1);
        // run again (the unit restarted): a member now, pvecm not run again
        let again = step(&p, root, tools).run(Some(d), Instant::now() + Duration::from_secs(10));
        assert_eq!((again.action.as_str(), again.ok), ("member", true));
        assert_eq!(std::fs::read_to_string(dir.path().join("pvecm.log")).unwrap().lines().count(), 1);
    }

    /// A node that is not the lowest id waits while nobody formed the cluster, and joins once a
    /// member reports it; a host key the peer did not report is never trusted and pvecm never runs.
    #[test]
    fn a_joiner_waits_for_the_cluster_and_pins_only_the_reported_host_key() {
        let w = world("ok", vec![member("lab-node-01", 1, false, "booted", false, &[])]);
        let (dir, root, tools, peer, d) = (&w.dir, &w.root, &w.tools, &w.peer, &w.directory);
        let p = profile("lab-node-02");
        let r = step(&p, root, tools).run(Some(d), Instant::now() + Duration::from_millis(200));
        assert!(!r.ok && r.detail.contains("waiting for the node with id 1"), "{r:?}");
        assert!(!dir.path().join("pvecm.log").exists(), "nothing run while waiting");
        // the registry names lab-node-01 with another host key: refused
        *d.members.borrow_mut() = vec![member("lab-node-01", 1, false, "cluster-created", true, &["ssh-ed25519 SHA256:somebodyelse".into()])];
        let r = step(&p, root, tools).run(Some(d), Instant::now() + Duration::from_millis(200));
        assert!(!r.ok && r.detail.contains("not trusted"), "{r:?}");
        assert!(!dir.path().join("pvecm.log").exists(), "pvecm not run with an untrusted host key");
        // with the right one: joined (the DR case too: a peer in state "ready" is joined the same way)
        let fp = keel_installer::hostkeys::fingerprint(&peer).unwrap().to_string();
        *d.members.borrow_mut() = vec![member("lab-node-01", 1, false, "ready", true, &[fp])];
        std::fs::create_dir_all(root.join("etc/ssh")).unwrap();
        std::fs::write(root.join("etc/ssh/ssh_host_ed25519_key.pub"), format!("{} root@lab-node-02\n", w.peer)).unwrap();
        let r = step(&p, root, tools).run(Some(d), Instant::now() + Duration::from_secs(10));
        assert!(r.ok, "{r:?}");
        assert_eq!(r.command.as_deref(), Some("pvecm add 192.168.100.1 --link0 192.168.100.2 --nodeid 2 --use_ssh"));
        let conf = std::fs::read_to_string(root.join("etc/pve/corosync.conf")).unwrap();
        assert!(conf.contains("two_node: 1") && conf.contains("config_version: 3"), "{conf}");
        // then, as for a re-added node: pvecm updatecerts, and the peer's known_hosts entries for
        // this node's address replaced by this node's host key, over the pinned SSH connection
        let log = std::fs::read_to_string(dir.path().join("pvecm.log")).unwrap();
        assert_eq!(log.lines().collect::<Vec<_>>(), ["add 192.168.100.1 --link0 192.168.100.2 --nodeid 2 --use_ssh", "updatecerts"]);
        let ssh = std::fs::read_to_string(dir.path().join("ssh.log")).unwrap();
        let call: Vec<&str> = ssh.split("\n\n").next().unwrap().lines().collect();
        assert_eq!(call[..5], ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "root@192.168.100.1"]);
        assert!(call[5].contains("ssh-keygen -R 192.168.100.2 -f $f") && call[5].contains(&format!("echo '192.168.100.2 {}' >>$f", w.peer)), "{ssh}");
        assert!(r.detail.contains("pvecm updatecerts done") && r.detail.contains("1 host key(s) of this node added"), "{r:?}");
    }

    /// The peer's known_hosts edit runs the script it claims: against a copy of a known_hosts
    /// holding the old node's key (hashed, as Debian's ssh writes it, and plain), only this
    /// node's current key is left for its address.
    #[test]
    fn the_peer_known_hosts_edit_replaces_the_old_key() {
        let w = world("ok", vec![]);
        let (dir, root) = (&w.dir, &w.root);
        let p = profile("lab-node-02");
        std::fs::create_dir_all(root.join("etc/ssh")).unwrap();
        std::fs::write(root.join("etc/ssh/ssh_host_ed25519_key.pub"), format!("{} root@new\n", w.peer)).unwrap();
        // ssh that runs the remote command here, with /root/.ssh pointing into the test folder
        use std::os::unix::fs::PermissionsExt;
        let home = dir.path().join("peer");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        let fresh_key = |name: &str| {
            let d = dir.path().join(name);
            std::fs::create_dir_all(&d).unwrap();
            key_pair(&d).1
        };
        let (old, other) = (fresh_key("old"), fresh_key("other"));
        std::fs::write(home.join(".ssh/known_hosts"), format!("192.168.100.2 {old}\n192.168.100.3 {other}\n")).unwrap();
        let s = std::process::Command::new("ssh-keygen").args(["-q", "-H", "-f"]).arg(home.join(".ssh/known_hosts")).status().unwrap();
        assert!(s.success());
        std::fs::write(home.join(".ssh/known_hosts"), format!("{}lab-node-02 {old}\n", std::fs::read_to_string(home.join(".ssh/known_hosts")).unwrap())).unwrap();
        let bin = dir.path().join("bin");
        std::fs::write(bin.join("ssh"), format!("#!/bin/sh\neval \"$(printf '%s' \"$6\" | sed 's#/root/.ssh#{}#g')\"\n", home.join(".ssh").display())).unwrap();
        std::fs::set_permissions(bin.join("ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let detail = step(&p, root, &w.tools).after_join(&bin.join("pvecm"), "192.168.100.1");
        assert!(detail.contains("1 host key(s) of this node added"), "{detail}");
        let f = home.join(".ssh/known_hosts");
        let find = |host: &str| std::process::Command::new("ssh-keygen").args(["-F", host, "-f"]).arg(&f).output().unwrap().stdout;
        let found = String::from_utf8(find("192.168.100.2")).unwrap();
        assert!(found.contains(w.peer.split_whitespace().nth(1).unwrap()) && !found.contains(old.split_whitespace().nth(1).unwrap()), "{found}");
        assert!(!String::from_utf8(find("192.168.100.3")).unwrap().is_empty(), "another host's entry is kept");
        assert!(String::from_utf8(find("lab-node-02")).unwrap().is_empty(), "the old key under the node's name is gone");
    }

    /// pvecm add waits for quorum without a time limit: keel stops it and reports failed.
    #[test]
    fn a_pvecm_that_never_returns_is_stopped() {
        let w = world("hang", vec![]);
        let (root, tools, d) = (&w.root, &w.tools, &w.directory);
        let p = profile("lab-node-01");
        let t = Instant::now();
        let r = step(&p, root, tools).run(Some(d), Instant::now() + Duration::from_millis(100));
        assert!(!r.ok && r.detail.contains("killed after"), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(d.created.borrow().is_empty());
    }

    /// A corosync.conf in place (as pmxcfs imports a pre-placed /etc/corosync/corosync.conf at
    /// its first start) is not membership without quorum; without pvecm or a registry nothing
    /// is claimed either.
    #[test]
    fn a_file_alone_is_not_membership() {
        let w = world("task-error", vec![]);
        let (dir, root, tools, d) = (&w.dir, &w.root, &w.tools, &w.directory);
        std::fs::create_dir_all(root.join("etc/pve")).unwrap();
        std::fs::write(root.join("etc/pve/corosync.conf"), "nodelist {\n  node {\n    name: lab-node-01\n    nodeid: 1\n  }\n  node {\n    name: lab-node-02\n    nodeid: 2\n  }\n}\ntotem {\n  config_version: 1\n}\n").unwrap();
        std::fs::write(dir.path().join("noquorum"), "").unwrap();
        let p = profile("lab-node-02");
        let r = step(&p, root, tools).run(Some(d), Instant::now() + Duration::from_millis(200));
        assert!(!r.ok && r.action != "member", "{r:?}");
        let r = step(&p, root, tools).run(None, Instant::now());
        assert_eq!((r.action.as_str(), r.ok), ("manual", true));
        assert!(r.detail.contains("pvecm create lab-cluster --link0 192.168.100.1 --nodeid 1"), "{r:?}");
        let none = Tools { search: vec![dir.path().join("empty")] };
        let r = step(&p, root, &none).run(Some(d), Instant::now());
        assert_eq!((r.action.as_str(), r.ok), ("none", false));
    }
}
