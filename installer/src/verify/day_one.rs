//! The day-one node's protection and services, as they run: the ARC cap in force, keel's
//! firewall table loaded, fail2ban's jails up, the exporters listening on their address only,
//! rpcbind masked and nothing on port 111. (The files themselves are compared with the rest.)

use std::path::Path;

use super::{under, Checks, Status};
use crate::profile::Profile;
use crate::render;

/// On a mounted target only what is on disk: rpcbind masked.
pub(super) fn run(c: &mut Checks, p: &Profile, root: &Path, on_node: bool, expect_cluster: bool) {
    if !p.services.rpcbind {
        for unit in render::RPCBIND_UNITS {
            let link = under(root, &format!("/etc/systemd/system/{unit}"));
            let masked = c.host.resolve(&link).is_ok_and(|t| t == Path::new("/dev/null"));
            c.add(format!("{unit} masked"), if masked { Status::Ok } else { Status::Fail }, if masked { "linked to /dev/null" } else { "not masked: run systemctl mask rpcbind.service rpcbind.socket" });
        }
    }
    if !on_node {
        return;
    }
    if let Some(arc) = p.zfs.arc_max_bytes() {
        let found = c.host.read_file(Path::new("/sys/module/zfs/parameters/zfs_arc_max")).unwrap_or_default();
        c.equal("zfs_arc_max", &arc.to_string(), found.trim());
    }
    let listening = c.out(&["ss", "-Hltun"]).unwrap_or_default();
    if !p.services.rpcbind {
        let on_111: Vec<&str> = listening.lines().filter_map(|l| l.split_whitespace().nth(4)).filter(|a| a.ends_with(":111")).collect();
        c.add("port 111 (rpcbind)", if on_111.is_empty() { Status::Ok } else { Status::Fail }, if on_111.is_empty() { "nothing listens".to_string() } else { format!("listening on {}", on_111.join(", ")) });
    }
    if p.firewall.is_some() {
        let table = format!("inet {}", render::firewall::TABLE);
        match c.out(&["nft", "list", "table", "inet", render::firewall::TABLE]) {
            Ok(t) if t.contains("policy drop") => {
                let rules = t.lines().filter(|l| l.trim_end().ends_with("accept") || l.contains("accept comment")).count();
                c.add("firewall", Status::Ok, format!("table {table} loaded: input policy drop, {rules} accepting rules"));
            }
            Ok(_) => c.add("firewall", Status::Fail, format!("table {table} has no input chain with policy drop")),
            Err(e) => c.add("firewall", Status::Fail, format!("table {table} not loaded ({e}): systemctl status {}", render::firewall::UNIT)),
        }
    }
    if let Some(f) = &p.fail2ban {
        match c.out(&["fail2ban-client", "status"]) {
            Ok(out) => {
                let list = out.lines().find_map(|l| l.split_once("Jail list:")).map(|(_, v)| v.to_string()).unwrap_or_default();
                let running: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
                let missing: Vec<&str> = f.jails.iter().map(|j| j.name.as_str()).filter(|j| !running.contains(j)).collect();
                if missing.is_empty() {
                    c.add("fail2ban jails", Status::Ok, running.join(", "));
                } else {
                    c.add("fail2ban jails", Status::Fail, format!("not running: {} (running: {})", missing.join(", "), if running.is_empty() { "none".into() } else { running.join(", ") }));
                }
            }
            Err(e) => c.add("fail2ban jails", Status::Fail, e),
        }
    }
    if let Some(want) = &p.storage {
        // /etc/pve exists once the cluster formed: before that a WARN, unless it is expected
        let read = |c: &mut Checks, path: &str| c.host.read_file(Path::new(path)).unwrap_or_default();
        let (storage_cfg, jobs_cfg) = (read(c, crate::pve_storage::STORAGE_CFG), read(c, crate::pve_storage::JOBS_CFG));
        let names: Vec<&str> = want.entries.iter().map(|e| e.id.as_str()).chain(want.backup_jobs.iter().map(|j| j.id.as_str())).collect();
        match crate::pve_storage::changes(want, &storage_cfg, &jobs_cfg) {
            Ok(todo) if todo.is_empty() => c.add("Proxmox VE storage", Status::Ok, names.join(", ")),
            Ok(todo) => c.add("Proxmox VE storage", if expect_cluster { Status::Fail } else { Status::Warn },
                format!("{} (keel-first-boot registers them once the cluster formed)", todo.iter().map(|t| t.what.as_str()).collect::<Vec<_>>().join("; "))),
            Err(e) => c.add("Proxmox VE storage", Status::Fail, e.join("; ")),
        }
    }
    if let Some(m) = &p.metrics {
        let mut want = vec![("node exporter", m.node_exporter)];
        want.extend(m.zfs_exporter.map(|z| ("ZFS metrics", z)));
        for (what, addr) in want {
            let suffix = format!(":{}", addr.port());
            let on_port: Vec<&str> = listening.lines().filter(|l| l.starts_with("tcp")).filter_map(|l| l.split_whitespace().nth(4)).filter(|a| a.ends_with(&suffix)).collect();
            let ok = on_port == [addr.to_string().as_str()];
            c.add(format!("{what} on {addr}"), if ok { Status::Ok } else { Status::Fail }, if on_port.is_empty() { "nothing listens on the port".to_string() } else { format!("listening on {}", on_port.join(", ")) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{run as verify, Check, Options, Status};
    use crate::exec::host::{FakeHost, Output};
    use crate::profile::Profile;

    fn seed() -> Profile {
        Profile::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/pve-node-01.toml")).unwrap().profile
    }

    fn row<'a>(rows: &'a [Check], name: &str) -> &'a Check {
        rows.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no row {name}: {rows:?}"))
    }

    /// What runs is read, not assumed: an exporter on every address, rpcbind listening, a jail
    /// missing, no table and another ARC all fail; the node as keel leaves it passes.
    #[test]
    fn the_running_services_are_checked_on_the_node() {
        let p = seed();
        let mut h = FakeHost::default();
        h.files.insert("/sys/module/zfs/parameters/zfs_arc_max".into(), b"0\n".to_vec());
        h.answer("ss -Hltun", Output::ok("tcp LISTEN 0 4096 *:9100 *:*\ntcp LISTEN 0 4096 0.0.0.0:111 0.0.0.0:*\n"));
        h.answer("nft list table inet keel", Output::failed(1, "Error: No such file or directory"));
        h.answer("fail2ban-client status", Output::ok("Status\n|- Number of jail:\t1\n`- Jail list:\tsshd\n"));
        let rows = verify(&mut h, &p, &Options::default());
        for name in ["rpcbind.service masked", "rpcbind.socket masked", "zfs_arc_max", "port 111 (rpcbind)", "firewall", "fail2ban jails", "node exporter on 192.168.100.1:9100", "ZFS metrics on 192.168.100.1:9134"] {
            assert_eq!(row(&rows, name).status, Status::Fail, "{name}: {:?}", row(&rows, name));
        }
        assert_eq!(row(&rows, "node exporter on 192.168.100.1:9100").detail, "listening on *:9100");
        assert_eq!(row(&rows, "fail2ban jails").detail, "not running: proxmox (running: sshd)");
        assert_eq!(row(&rows, "zfs_arc_max").detail, "expected 6731857920, found 0");

        let mut h = FakeHost::default();
        for u in ["rpcbind.service", "rpcbind.socket"] {
            h.links.insert(format!("/etc/systemd/system/{u}").into(), "/dev/null".into());
        }
        h.files.insert("/sys/module/zfs/parameters/zfs_arc_max".into(), b"6731857920\n".to_vec());
        h.answer("ss -Hltun", Output::ok("tcp LISTEN 0 4096 192.168.100.1:9100 0.0.0.0:*\ntcp LISTEN 0 4096 192.168.100.1:9134 0.0.0.0:*\nudp UNCONN 0 0 192.168.100.1:5405 0.0.0.0:*\n"));
        h.answer("nft list table inet keel", Output::ok("table inet keel {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport 22 accept comment \"x\"\n\t}\n}\n"));
        h.answer("fail2ban-client status", Output::ok("Status\n|- Number of jail:\t2\n`- Jail list:\tproxmox, sshd\n"));
        let rows = verify(&mut h, &p, &Options::default());
        for name in ["rpcbind.service masked", "rpcbind.socket masked", "zfs_arc_max", "port 111 (rpcbind)", "firewall", "fail2ban jails", "node exporter on 192.168.100.1:9100", "ZFS metrics on 192.168.100.1:9134"] {
            assert_eq!(row(&rows, name).status, Status::Ok, "{name}: {:?}", row(&rows, name));
        }
        // on a mounted target only the masks are checked
        let rows = verify(&mut FakeHost::default(), &p, &Options { root: "/mnt/keel".into(), ..Default::default() });
        assert_eq!(row(&rows, "rpcbind.socket masked").status, Status::Fail);
        assert!(!rows.iter().any(|r| r.name == "firewall" || r.name == "zfs_arc_max"));
    }
}
