//! The lab proves the path that ships: `lab-node-0N.toml` may differ from the seed profile
//! `pve-node-0N.toml` only in sizes, addresses, package source, hardware spec, names and the
//! serial console. Every other key (boot loader, uplink form, cluster formation, ZFS options,
//! sshd, users, ...) must be equal, so a change to one profile without the other fails here.

use std::collections::BTreeMap;

mod common;

/// Keys that may differ, with the reason. `[]` stands for any array index.
const MAY_DIFFER: &[(&str, &str)] = &[
    ("hardware-spec", "hardware spec"),
    ("node.hostname", "name"),
    ("cluster.name", "name"),
    ("cluster.nodes[].name", "name"),
    ("disks.esp-size", "size"),
    ("disks.rpool-size", "size"),
    ("disks.swap-size", "size"),
    ("disks.datapool-min-size", "size"),
    ("zfs.arc-max", "size: the lab guest's memory"),
    ("fail2ban.jails[].bantime", "time: the lab waits for a ban to lift (the seed bans SSH for a day)"),
    ("os.debian-mirror", "package source"),
    ("os.debian-security-mirror", "package source"),
    ("os.debian-keyring", "package source"),
    ("os.pve-mirror", "package source"),
    ("os.pve-key-url", "package source"),
    ("os.pve-key-sha512", "package source"),
    ("zfs.compatibility", "package source: the feature set of the OpenZFS the source ships (Debian 12's 2.1 in the lab, Proxmox VE 8's 2.2)"),
    ("os.kernel-args", "hardware: the lab guest's serial console"),
    ("network.nameservers", "address"),
    ("network.uplink.mac", "address"),
    ("network.uplink.ipv4-address", "address (the prefix length is compared below)"),
    ("network.uplink.ipv4-gateway", "address"),
    ("network.uplink.ipv6-address", "address"),
    ("network.uplink.ipv6-gateway", "address"),
    ("registry.url", "address"),
    ("robot.server", "hardware: the lab's guests are not Hetzner servers (keel rebuild)"),
    ("robot.key-fingerprint", "hardware: the lab's guests are not Hetzner servers (keel rebuild)"),
];

fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        toml::Value::Array(a) if a.iter().all(|x| x.is_table()) && !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// The keys whose values differ (or that only one side has) and are not allowed to.
fn differences(seed: &str, lab: &str) -> Vec<String> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten("", &seed.parse::<toml::Table>().unwrap().into(), &mut a);
    flatten("", &lab.parse::<toml::Table>().unwrap().into(), &mut b);
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .filter(|k| !MAY_DIFFER.iter().any(|(m, _)| *m == without_indices(k)))
        .map(|k| format!("{k}: seed {} / lab {}", a.get(k).map_or("(absent)", String::as_str), b.get(k).map_or("(absent)", String::as_str)))
        .collect()
}

/// "cluster.nodes[1].name" -> "cluster.nodes[].name"
fn without_indices(k: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in k.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

fn read(name: &str) -> String {
    std::fs::read_to_string(common::workspace().join("profiles").join(name)).unwrap()
}

#[test]
fn the_lab_profiles_differ_from_the_seed_only_in_sizes_addresses_sources_and_hardware() {
    for n in ["01", "02"] {
        let (seed, lab) = (read(&format!("pve-node-{n}.toml")), read(&format!("lab-node-{n}.toml")));
        assert_eq!(differences(&seed, &lab), Vec::<String>::new(), "lab-node-{n}.toml vs pve-node-{n}.toml");
        // the uplink's form is the seed's: the same prefix length (a /32 with the gateway as peer)
        let prefix = |t: &str| {
            let v: toml::Table = t.parse().unwrap();
            v["network"]["uplink"]["ipv4-address"].as_str().unwrap().split('/').nth(1).unwrap().to_string()
        };
        assert_eq!(prefix(&seed), "32");
        assert_eq!(prefix(&lab), prefix(&seed), "lab-node-{n}: the uplink's prefix");
    }
}

/// The comparison catches what it is for: another boot loader, a cluster option, a missing key.
#[test]
fn a_difference_in_an_option_is_reported() {
    let (seed, lab) = (read("pve-node-01.toml"), read("lab-node-01.toml"));
    let other_loader = lab.replace("bootloader = \"grub\"", "bootloader = \"proxmox-boot-tool\"");
    assert!(other_loader != lab);
    assert_eq!(differences(&seed, &other_loader), ["os.bootloader: seed \"grub\" / lab \"proxmox-boot-tool\""]);
    let no_two_node = lab.replace("two-node = true\n", "");
    assert_eq!(differences(&seed, &no_two_node), ["cluster.two-node: seed true / lab (absent)"]);
    let renamed_node = lab.replace("name = \"lab-node-02\"", "name = \"lab-node-03\"");
    assert!(differences(&seed, &renamed_node).is_empty(), "names may differ");
    let mtu = lab.replace("mtu = 1400", "mtu = 1300");
    assert_eq!(differences(&seed, &mtu), ["network.cluster-bridge.mtu: seed 1400 / lab 1300"]);
}
