//! `/etc/pve/corosync.conf` as `pvecm` writes it, read and amended (never written from nothing:
//! keel leaves cluster formation to `pvecm create`/`pvecm add`, as Proxmox VE does).
//!
//! pvecm's file carries no `two_node` and no explicit crypto settings (pve-cluster
//! `PVE::Corosync::create_conf`: `secauth: on`, knet's defaults). After the join the first
//! boot adds what the profile asks for (`two_node: 1` in `quorum`, `crypto_cipher` and
//! `crypto_hash` in `totem`) and raises `config_version`, the way Proxmox VE's admin guide
//! edits the file; pmxcfs then hands it to every node's corosync.

use crate::profile::Profile;

/// A node of the file's nodelist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfNode {
    pub name: String,
    pub nodeid: u32,
    pub ring0_addr: String,
}

/// One `key: value` line and the sections it is in.
struct Entry<'a> {
    path: Vec<&'a str>,
    /// Which opened section it is in (each `{` opens a new one).
    block: usize,
    key: &'a str,
    value: &'a str,
    line: usize,
}

/// The section a line opens or closes, and every `key: value` with its section path.
struct Parsed<'a> {
    entries: Vec<Entry<'a>>,
    /// (top-level section, index of its closing line)
    closes: Vec<(&'a str, usize)>,
}

fn parse(conf: &str) -> Parsed<'_> {
    let mut stack: Vec<&str> = Vec::new();
    let mut blocks: Vec<usize> = vec![0];
    let mut opened = 0;
    let mut entries = Vec::new();
    let mut closes = Vec::new();
    for (i, raw) in conf.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_suffix('{') {
            stack.push(name.trim());
            opened += 1;
            blocks.push(opened);
        } else if line == "}" {
            if stack.len() == 1 {
                closes.push((stack[0], i));
            }
            stack.pop();
            if blocks.len() > 1 {
                blocks.pop();
            }
        } else if let Some((k, v)) = line.split_once(':') {
            entries.push(Entry { path: stack.clone(), block: *blocks.last().unwrap_or(&0), key: k.trim(), value: v.trim(), line: i });
        }
    }
    Parsed { entries, closes }
}

/// The nodelist: every `node { }` with its name, id and ring 0 address.
pub fn nodelist(conf: &str) -> Vec<ConfNode> {
    let parsed = parse(conf);
    let mut nodes: Vec<(usize, ConfNode)> = Vec::new();
    for e in parsed.entries.iter().filter(|e| e.path == ["nodelist", "node"]) {
        if nodes.last().is_none_or(|(b, _)| *b != e.block) {
            nodes.push((e.block, ConfNode { name: String::new(), nodeid: 0, ring0_addr: String::new() }));
        }
        let n = &mut nodes.last_mut().expect("just pushed").1;
        match e.key {
            "name" => n.name = e.value.to_string(),
            "nodeid" => n.nodeid = e.value.parse().unwrap_or(0),
            "ring0_addr" => n.ring0_addr = e.value.to_string(),
            _ => {}
        }
    }
    nodes.into_iter().map(|(_, n)| n).collect()
}

pub fn config_version(conf: &str) -> Option<u64> {
    parse(conf).entries.iter().find(|e| e.path == ["totem"] && e.key == "config_version").and_then(|e| e.value.parse().ok())
}

/// The file with the profile's `two_node` and crypto settings added where missing, and
/// `config_version` raised by one; None when it already carries them (nothing to write).
/// A value the file sets differently is left alone and reported in the error.
pub fn apply_profile(conf: &str, p: &Profile) -> Result<Option<String>, String> {
    let parsed = parse(conf);
    let get = |section: &str, key: &str| parsed.entries.iter().find(|e| e.path == [section] && e.key == key).map(|e| e.value);
    let mut wanted: Vec<(&str, &str, String)> = Vec::new();
    if p.cluster.two_node {
        wanted.push(("quorum", "two_node", "1".into()));
    }
    if p.cluster.secauth {
        wanted.push(("totem", "crypto_cipher", p.cluster.crypto_cipher.clone()));
        wanted.push(("totem", "crypto_hash", p.cluster.crypto_hash.clone()));
    }
    let mut inserts: Vec<(usize, String)> = Vec::new();
    let mut differ = Vec::new();
    for (section, key, value) in &wanted {
        match get(section, key) {
            Some(v) if v == value => {}
            Some(v) => differ.push(format!("{section}.{key} is {v}, the profile says {value}")),
            None => {
                let Some(&(_, close)) = parsed.closes.iter().find(|(s, _)| s == section) else {
                    return Err(format!("corosync.conf has no {section} section"));
                };
                inserts.push((close, format!("  {key}: {value}")));
            }
        }
    }
    if !differ.is_empty() {
        return Err(differ.join("; "));
    }
    if inserts.is_empty() {
        return Ok(None);
    }
    let version = parsed.entries.iter().find(|e| e.path == ["totem"] && e.key == "config_version").ok_or("corosync.conf has no totem.config_version")?;
    let next: u64 = version.value.parse::<u64>().map_err(|_| format!("config_version {:?} is not a number", version.value))? + 1;
    let mut out = String::new();
    for (i, line) in conf.lines().enumerate() {
        for (_, text) in inserts.iter().filter(|(at, _)| *at == i) {
            out.push_str(text);
            out.push('\n');
        }
        if i == version.line {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!("{indent}config_version: {next}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file as `pvecm create` and one `pvecm add` leave it (pve-cluster's create_conf and
    /// addnode: sections in its order, config_version raised by each write).
    const PVECM: &str = "logging {\n  debug: off\n  to_syslog: yes\n}\n\nnodelist {\n  node {\n    name: pve-node-01\n    nodeid: 1\n    quorum_votes: 1\n    ring0_addr: 192.168.100.1\n  }\n  node {\n    name: pve-node-02\n    nodeid: 2\n    quorum_votes: 1\n    ring0_addr: 192.168.100.2\n  }\n}\n\nquorum {\n  provider: corosync_votequorum\n}\n\ntotem {\n  cluster_name: prod-cluster\n  config_version: 2\n  interface {\n    linknumber: 0\n  }\n  ip_version: ipv4-6\n  link_mode: passive\n  secauth: on\n  version: 2\n}\n";

    fn seed() -> Profile {
        Profile::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/pve-node-01.toml")).unwrap().profile
    }

    #[test]
    fn the_nodelist_and_version_are_read_from_pvecms_file() {
        assert_eq!(nodelist(PVECM), [
            ConfNode { name: "pve-node-01".into(), nodeid: 1, ring0_addr: "192.168.100.1".into() },
            ConfNode { name: "pve-node-02".into(), nodeid: 2, ring0_addr: "192.168.100.2".into() },
        ]);
        assert_eq!(config_version(PVECM), Some(2));
        assert_eq!(nodelist("totem {\n  version: 2\n}\n"), []);
    }

    #[test]
    fn two_node_and_crypto_are_added_once_with_a_new_version() {
        let p = seed();
        let out = apply_profile(PVECM, &p).unwrap().expect("pvecm's file lacks two_node and crypto");
        assert_eq!(config_version(&out), Some(3));
        assert!(out.contains("quorum {\n  provider: corosync_votequorum\n  two_node: 1\n}"), "{out}");
        assert!(out.contains("  version: 2\n  crypto_cipher: aes256\n  crypto_hash: sha256\n}"), "{out}");
        assert_eq!(nodelist(&out), nodelist(PVECM), "the nodelist is untouched");
        assert_eq!(apply_profile(&out, &p).unwrap(), None, "applied already: nothing to write");
        let other = out.replace("crypto_hash: sha256", "crypto_hash: sha1");
        assert_eq!(apply_profile(&other, &p).unwrap_err(), "totem.crypto_hash is sha1, the profile says sha256");
    }
}
