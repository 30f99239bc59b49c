//! Every validation error, with its exact text: each case edits the seed profile
//! (profiles/pve-node-01.toml) in one place, runs `keel validate` on the result and compares the
//! transcript with tests/golden/validate/<case>.txt.

mod common;

use common::*;

/// (case, text to find in the seed, replacement). Each find must occur in the seed.
const CASES: &[(&str, &str, &str)] = &[
    ("vswitch-vlan-out-of-range", "vswitch-vlan = 4000", "vswitch-vlan = 3999"),
    ("vlan-id-out-of-range", "id = 40\n", "id = 4095\n"),
    ("vlan-id-twice", "id = 30\n", "id = 20\n"),
    ("ring0-outside-cluster-network", "ring0-address = \"192.168.100.2\"", "ring0-address = \"192.168.101.2\""),
    ("node-id-twice", "id = 2\nring0", "id = 1\nring0"),
    ("bad-hostname", "hostname = \"pve-node-01\"", "hostname = \"pve_node_01\""),
    ("not-in-node-list", "hostname = \"pve-node-01\"", "hostname = \"pve-node-03\""),
    ("overlapping-subnets", "address = \"10.0.20.1/24\"", "address = \"10.0.10.5/24\""),
    ("address-without-prefix", "address = \"10.0.30.1/24\"", "address = \"10.0.30.1\""),
    ("bad-size", "rpool-size = \"50GiB\"", "rpool-size = \"50 parsecs\""),
    ("swap-bigger-than-rpool", "swap-size = \"8GiB\"", "swap-size = \"64GiB\""),
    ("esp-too-small", "esp-size = \"1GiB\"", "esp-size = \"100MiB\""),
    ("mtu-above-vswitch", "mtu = 1400", "mtu = 1500"),
    ("ashift-wrong-type", "ashift = 12", "ashift = \"twelve\""),
    ("ashift-out-of-range", "ashift = 12", "ashift = 20"),
    ("compatibility-path", "compatibility = \"openzfs-2.2-linux\"", "compatibility = \"../../etc/passwd\""),
    ("unknown-compression", "compression = \"lz4\"", "compression = \"lz5\""),
    ("bad-mac", "mac = \"a8:a1:59:41:00:01\"", "mac = \"a8:a1:59:41:00\""),
    ("robot-key-fingerprint", "key-fingerprint = \"00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff\"", "key-fingerprint = \"SHA256:abc\""),
    ("gateway-outside-subnet", "\"203.0.113.10/32\"\nipv4-gateway = \"203.0.113.1\"", "\"203.0.113.10/26\"\nipv4-gateway = \"203.0.113.65\""),
    ("hosts-address-loopback", "hosts-address = \"192.168.100.1\"", "hosts-address = \"127.0.1.1\""),
    ("hosts-address-foreign", "hosts-address = \"192.168.100.1\"", "hosts-address = \"192.168.100.9\""),
    ("bad-ssh-key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID9K3", "ssh-dss AAAAC3NzaC1lZDI1NTE5AAAAID9K3"),
    ("allow-unknown-user", "allow-users = [\"deploy\", \"admin\"]", "allow-users = [\"deploy\", \"admin\", \"operator\"]"),
    ("missing-field", "timezone = \"Europe/Berlin\"\n", ""),
    ("unknown-variant", "pve-repository = \"no-subscription\"", "pve-repository = \"free\""),
    ("unknown-field", "masquerade = true", "masquerade = true\nmasquerde = true"),
    ("two-node-with-three-nodes", "[ssh]", "[[cluster.nodes]]\nname = \"pve-node-03\"\nid = 3\nring0-address = \"192.168.100.3\"\n\n[ssh]"),
    ("secauth-without-crypto", "crypto-cipher = \"aes256\"", "crypto-cipher = \"none\""),
    ("cluster-link-missing", "vswitch-vlan = 4000\n", ""),
    ("wrong-suite", "suite = \"bookworm\"", "suite = \"trixie\""),
    ("ssh-cipher-typo", "\"aes256-gcm@openssh.com\"]", "\"aes256-gmc@openssh.com\"]"),
    ("ssh-kex-unknown", "\"curve25519-sha256@libssh.org\",", "\"mlkem768x25519-sha256\","),
    ("ssh-mac-unknown", "\"hmac-sha2-256-etm@openssh.com\"]", "\"hmac-sha3-256\"]"),
    ("mirror-with-space", "\"http://mirror.hetzner.com/debian/packages\"", "\"http://mirror.hetzner.com/debian/ packages\""),
    ("mirror-without-host", "\"http://mirror.hetzner.com/debian/security\"", "\"http:///debian/security\""),
    ("timezone-unknown", "timezone = \"Europe/Berlin\"", "timezone = \"Europe/Berln\""),
    ("timezone-case", "timezone = \"Europe/Berlin\"", "timezone = \"europe/berlin\""),
    ("several-errors", "vswitch-vlan = 4000\nmtu = 1400", "vswitch-vlan = 5000\nmtu = 100"),
];

#[test]
fn every_validation_error_has_its_exact_message() {
    let seed = std::fs::read_to_string(workspace().join("profiles/pve-node-01.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bad")).unwrap();
    for (case, find, replace) in CASES {
        assert!(seed.contains(find), "case {case}: {find:?} is not in the seed profile");
        let text = seed.replacen(find, replace, 1);
        let rel = format!("bad/{case}.toml");
        std::fs::write(dir.path().join(&rel), &text).unwrap();
        let args = ["validate", "--profile", rel.as_str()];
        let run = keel_in(dir.path(), &args);
        assert_golden(&format!("validate/{case}.txt"), &transcript(&args, &run));
        assert_eq!(run.code, 1, "case {case} must fail:\n{}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "case {case} panicked:\n{}", run.stderr);
        // every error line is located: file:line:column
        for line in run.stderr.lines().filter(|l| l.contains(": error: ")) {
            let loc: Vec<&str> = line.splitn(4, ':').collect();
            assert!(loc[1].parse::<usize>().is_ok_and(|n| n > 0) && loc[2].parse::<usize>().is_ok_and(|n| n > 0), "case {case}: not located: {line}");
        }
    }
}
