//! Rendered files checked by the real programs that read them: sshd (`sshd -T` on Debian's
//! default sshd_config with keel's drop-in included), corosync (`corosync -t`) and ifupdown2's
//! parser (`ifup --syntax-check`). Each check also feeds the program a broken file, to prove the
//! check can fail. `.ci/run` installs the programs and sets KEEL_REQUIRE_TOOLS=1, which turns a
//! missing program into a failure instead of a skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn tool(env: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default));
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("KEEL_REQUIRE_TOOLS").is_some() {
        panic!("{} is required (KEEL_REQUIRE_TOOLS is set) but missing; .ci/run installs it", path.display());
    }
    eprintln!("SKIPPED: {} not installed (set {env} or run .ci/run)", path.display());
    None
}

fn rendered(profile: &str) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let run = keel(&["render", "--profile", &format!("profiles/{profile}.toml"), "--out", out.path().to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    out
}

/// `args` run in a private mount namespace whose `/run` and `/var/tmp` are fresh tmpfs mounts
/// with the directories the checkers want (`/run/network` for ifupdown2's lock, `/run/sshd` for
/// sshd's privilege separation). The checkers then neither depend on nor change this machine's
/// state: on a fresh machine `/run/network` is missing and ifupdown2 reports "another instance
/// of this program is already running" when it cannot open its lock there.
fn private_run(args: &[&std::ffi::OsStr]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o mode=0755 keel-test /run && mount -t tmpfs keel-test /var/tmp && mkdir /run/network /run/sshd && exec \"$@\"")
        .arg("sh")
        .args(args);
    cmd
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("running the checker");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// `sshd -T`: the effective configuration of Debian's sshd_config with the drop-in included.
fn sshd_effective(sshd: &Path, dropin: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("sshd_config.d");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("50-keel-hardening.conf"), dropin).unwrap();
    let debian = std::fs::read_to_string("/usr/share/openssh/sshd_config").expect("Debian's default sshd_config");
    assert!(debian.contains("Include /etc/ssh/sshd_config.d/*.conf"));
    let main = debian.replace("Include /etc/ssh/sshd_config.d/*.conf", &format!("Include {}/*.conf", d.display()));
    std::fs::write(dir.path().join("sshd_config"), main).unwrap();
    let key = dir.path().join("hostkey");
    assert!(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status().unwrap().success());
    // sshd refuses to run without its privilege separation directory, /run/sshd: private_run
    // makes it in its own /run
    let config = dir.path().join("sshd_config");
    run(&mut private_run(&[sshd.as_os_str(), "-T".as_ref(), "-f".as_ref(), config.as_os_str(), "-h".as_ref(), key.as_os_str()]))
}

#[test]
fn sshd_accepts_the_dropin_and_it_wins_over_debians_defaults() {
    let Some(sshd) = tool("KEEL_SSHD", "/usr/sbin/sshd") else { return };
    let out = rendered("pve-node-01");
    let dropin = std::fs::read_to_string(out.path().join("etc/ssh/sshd_config.d/50-keel-hardening.conf")).unwrap();
    let (ok, text) = sshd_effective(&sshd, &dropin);
    assert!(ok, "sshd -T rejected the drop-in:\n{text}");
    for want in [
        "permitrootlogin without-password",
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "x11forwarding no",
        "maxauthtries 3",
        "maxsessions 5",
        "clientaliveinterval 300",
        "clientalivecountmax 2",
        "logingracetime 30",
        "allowusers deploy",
        "allowusers admin",
        "allowusers root@192.168.100.0/24",
        "kexalgorithms curve25519-sha256@libssh.org,diffie-hellman-group16-sha512",
        "ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com",
        "macs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
    ] {
        assert!(text.lines().any(|l| l == want), "effective sshd config lacks {want:?}:\n{text}");
    }
    // negative control: the checker does reject a broken drop-in
    let (ok, text) = sshd_effective(&sshd, &dropin.replace("MaxAuthTries 3", "MaxAuthTries three"));
    assert!(!ok && text.contains("MaxAuthTries"), "sshd accepted a broken drop-in:\n{text}");
}

/// `corosync -t` as the node whose ring0 address is `local`: in a private network namespace
/// whose loopback carries that address (corosync checks that the local host is in the nodelist).
fn corosync_test(corosync: &Path, conf: &str, local: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("authkey");
    // 256 bytes, as corosync-keygen makes; only for the test, never shipped
    std::fs::write(&key, (0..=255u8).collect::<Vec<u8>>()).unwrap();
    // The only change to the rendered file: point corosync at the test key instead of
    // /etc/corosync/authkey.
    let conf = conf.replacen("totem {\n", &format!("totem {{\n  keyfile: {}\n", key.display()), 1);
    let path = dir.path().join("corosync.conf");
    std::fs::write(&path, conf).unwrap();
    let script = format!(
        "ip link set lo up && ip addr add {local}/32 dev lo && exec {} -c {} -t",
        corosync.display(),
        path.display()
    );
    run(Command::new("unshare").args(["--net", "sh", "-c", &script]))
}

/// /etc/pve/corosync.conf as `pvecm create` + `pvecm add` leave it (pve-cluster
/// `PVE::Corosync::create_conf` / addnode), for the profile's cluster.
fn pvecm_conf(p: &keel_installer::profile::Profile) -> String {
    let c = &p.cluster;
    let nodes: String = c.nodes.iter().map(|n| format!("  node {{\n    name: {}\n    nodeid: {}\n    quorum_votes: 1\n    ring0_addr: {}\n  }}\n", n.name, n.id, n.ring0_address)).collect();
    format!("logging {{\n  debug: off\n  to_syslog: yes\n}}\n\nnodelist {{\n{nodes}}}\n\nquorum {{\n  provider: corosync_votequorum\n}}\n\ntotem {{\n  cluster_name: {}\n  config_version: 2\n  interface {{\n    linknumber: 0\n  }}\n  ip_version: ipv4-6\n  link_mode: passive\n  secauth: on\n  version: 2\n}}\n", c.name)
}

/// What keel writes into /etc/pve/corosync.conf after the join (two_node, crypto, a new
/// config_version) is a file the real corosync accepts on either node.
#[test]
fn corosync_accepts_the_file_keel_amends() {
    let Some(corosync) = tool("KEEL_COROSYNC", "/usr/sbin/corosync") else { return };
    for profile in ["pve-node-01", "lab-node-01"] {
        let p = keel_installer::profile::Profile::load(&workspace().join(format!("profiles/{profile}.toml"))).unwrap().profile;
        let conf = keel_installer::render::corosync::apply_profile(&pvecm_conf(&p), &p).unwrap().expect("two_node and crypto added");
        assert!(conf.contains("two_node: 1") && conf.contains("config_version: 3"), "{conf}");
        for local in ["192.168.100.1", "192.168.100.2"] {
            let (ok, text) = corosync_test(&corosync, &conf, local);
            assert!(ok, "corosync -t as {local} rejected {profile}'s corosync.conf:\n{text}");
        }
        let (ok, text) = corosync_test(&corosync, &conf.replace("crypto_cipher: aes256", "crypto_cipher: aes999"), "192.168.100.1");
        assert!(!ok && text.contains("cipher"), "corosync accepted a broken config:\n{text}");
    }
}

fn ifup_check(ifup: &Path, text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("interfaces");
    std::fs::write(&path, text).unwrap();
    let (_, out) = run(&mut private_run(&["python3".as_ref(), ifup.as_os_str(), "--syntax-check".as_ref(), "-a".as_ref(), "-i".as_ref(), path.as_os_str()]));
    out.lines()
        .filter(|l| l.starts_with("warning:") || l.starts_with("error:"))
        .map(str::to_string)
        // Proxmox VE's ifupdown2 accepts `bridge-ports none` (its documented form for a bridge
        // without ports); Debian's upstream parser, the one we can run here, flags it.
        .filter(|l| !l.ends_with("bridge-ports: invalid value \"none\": valid attribute values: ['<interface-list>']"))
        // Advice, not an error: and wrong in practice, the lab's vmbr1 stays at 1500 without it.
        .filter(|l| !l.ends_with("bridge inherits mtu from its ports. There is no need to assign mtu on a bridge"))
        .collect()
}

#[test]
fn ifupdown2_parses_the_rendered_interfaces() {
    let Some(ifup) = tool("KEEL_IFUP", "/tmp/keel-ifupdown2/bin/ifup") else { return };
    for profile in ["pve-node-01", "pve-node-02", "lab-node-01"] {
        let out = rendered(profile);
        let text = std::fs::read_to_string(out.path().join("etc/network/interfaces")).unwrap();
        let problems = ifup_check(&ifup, &text);
        assert!(problems.is_empty(), "ifupdown2 found problems in {profile}'s interfaces:\n{}", problems.join("\n"));
        let broken = ifup_check(&ifup, &text.replacen("bridge-stp off", "bridge-stp maybe", 1));
        assert!(broken.iter().any(|l| l.contains("bridge-stp")), "ifupdown2 accepted a broken file: {broken:?}");
    }
}
