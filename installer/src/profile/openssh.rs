//! The algorithm names the target's OpenSSH accepts in `KexAlgorithms`, `Ciphers` and `MACs`.
//! The target is Debian 12: OpenSSH 9.2p1 (`ssh -Q kex|cipher|mac` there). Only names every
//! bookworm build carries are listed, so a profile that validates never gives an sshd that
//! refuses to start (`sshd -t`: "Bad SSH2 cipher spec"). A test holds these lists against
//! the `ssh -Q` of the machine it runs on (Debian 12 as well).

pub const KEX: &[&str] = &[
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group-exchange-sha256",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "sntrup761x25519-sha512@openssh.com",
];

pub const CIPHERS: &[&str] = &[
    "3des-cbc",
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
];

pub const MACS: &[&str] = &[
    "hmac-sha1",
    "hmac-sha1-96",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-md5",
    "hmac-md5-96",
    "umac-64@openssh.com",
    "umac-128@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha1-96-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-md5-etm@openssh.com",
    "hmac-md5-96-etm@openssh.com",
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
];

/// The known name `name` most likely means: the same name with its `@domain` left out, or one a
/// typo or two away. For the help text; None when nothing is close.
pub fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    if let Some(k) = known.iter().find(|k| k.split('@').next() == Some(name)) {
        return Some(k);
    }
    known
        .iter()
        .copied()
        .min_by_key(|k| strsim::levenshtein(name, k))
        .filter(|k| strsim::levenshtein(name, k) <= name.len() / 5 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every listed name is one this machine's OpenSSH (Debian 12, as the target) knows.
    #[test]
    fn the_lists_are_what_debian_12s_openssh_accepts() {
        for (query, list) in [("kex", KEX), ("cipher", CIPHERS), ("mac", MACS)] {
            let out = std::process::Command::new("ssh")
                .args(["-Q", query])
                .output()
                .expect("ssh (openssh-client) is installed");
            assert!(out.status.success());
            let known: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(String::from)
                .collect();
            for name in list {
                assert!(
                    known.iter().any(|k| k == name),
                    "`ssh -Q {query}` does not list {name}: {known:?}"
                );
            }
        }
    }

    #[test]
    fn a_typo_finds_its_name() {
        assert_eq!(
            closest("chacha20-poly1305", CIPHERS),
            Some("chacha20-poly1305@openssh.com")
        );
        assert_eq!(
            closest("aes256-gmc@openssh.com", CIPHERS),
            Some("aes256-gcm@openssh.com")
        );
        assert_eq!(closest("rot13", CIPHERS), None);
        assert_eq!(closest("mlkem768x25519-sha256", KEX), None);
    }
}
