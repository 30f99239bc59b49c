//! SSH host key fingerprints, as `ssh-keygen -l` prints them (`SHA256:` + unpadded base64 of
//! the SHA-256 of the key blob): for the final report and the first-boot report, so the
//! operator can pin the new node's keys before connecting.

use std::path::Path;

use base64::Engine;
use sha2::{Digest, Sha256};

/// The key types OpenSSH generates on Debian (`ssh-keygen -A`), in the order shown.
pub const KEY_TYPES: [&str; 3] = ["ed25519", "ecdsa", "rsa"];

/// One public host key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostKey {
    /// The algorithm as in the file (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`).
    pub algorithm: String,
    /// `SHA256:...`, as `ssh-keygen -l -E sha256` prints it.
    pub fingerprint: String,
}

impl std::fmt::Display for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.algorithm, self.fingerprint)
    }
}

/// The fingerprint of a public key line (`ALGO BASE64 [comment]`); None if it is not one.
pub fn fingerprint(line: &str) -> Option<HostKey> {
    let mut parts = line.split_whitespace();
    let algorithm = parts.next()?.to_string();
    let blob = base64::engine::general_purpose::STANDARD.decode(parts.next()?).ok()?;
    // the blob starts with the algorithm name again (u32 length + name)
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    if blob.get(4..4 + len)? != algorithm.as_bytes() {
        return None;
    }
    let digest = Sha256::digest(&blob);
    Some(HostKey { algorithm, fingerprint: format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)) })
}

/// The public host key lines (`ALGO BASE64`, no comment) under `root`/etc/ssh, in KEY_TYPES
/// order, read with `read` (the live system or a host); files that hold no key are left out.
pub fn public_keys(root: &Path, mut read: impl FnMut(&Path) -> Option<String>) -> Vec<String> {
    KEY_TYPES
        .iter()
        .filter_map(|t| read(&root.join(format!("etc/ssh/ssh_host_{t}_key.pub"))))
        .filter_map(|text| text.lines().next().map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" ")))
        .filter(|l| fingerprint(l).is_some())
        .collect()
}

/// The fingerprints of the public host keys under `root`/etc/ssh (as `public_keys`).
pub fn host_keys(root: &Path, read: impl FnMut(&Path) -> Option<String>) -> Vec<HostKey> {
    public_keys(root, read).iter().filter_map(|l| fingerprint(l)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fingerprints computed by `ssh-keygen -l -E sha256 -f` (OpenSSH 9.2) for these keys.
    #[test]
    fn fingerprints_match_ssh_keygen() {
        let cases = [
            ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsGHQHfUknkcLPS1Ym3yC6Jl77iGNcTH+NHC6qFlhoC REPLACE-ME-root@operator", "SHA256:cvTHpVgRq96v9dom44UENi6F6tclnxP1tQEK4gHAiPE"),
            ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIKcYzqY/1ZJNwedqKmChCephDC3p/mfMrHcaHJmgH60 x", "SHA256:XNRWIicPW0dPIb3dFfNwaHbdOAP97r4cck7GtCI3OaI"),
            ("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHWyXZ9qONowNOcOSXAg46d0ScbCRBTglQhecJmHe3gSg+wd6k/DWzjGB+m8huvDXVaoNaqeyoDkNI3RrMAS/jc= x", "SHA256:Pi1bmKs/JzqQDPdrnibm1MZJBccV9e6E9jiP6VAc0mk"),
            ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC4B7w0lx4hdko+Ac/7jbnBFHMdkwBs9xTwpzbpsTd5l7Mct5Xckh9gcDqhQRwWRpVmUOX92mwJZDRiDLEDTl0hKWV/gd5duIk+EqjzPUvR7gOQWCCCLExWl3kUy+L+cHnxUWZggSreE0Q6tsQOxle8qmF0cVeo+Tpp6BP6wuS/pbo/TmJsmEQw+0Uoni0kNuGxrYGTPcBYX9LarWBOJ8XjLrIJldlTZvk5dAoJYnhR+fMMN1/tEXlwZbWEIlLjtJEy+N756bamKIuQfPDc07giefGe2mC2IGZt2ieFYZa9YPIZTUSMpmKtlFtVbH8qVKnXSbbdsBpWUuifyLFxqHpl x", "SHA256:o5oPHErTexZ0mfy2cRy93XQMuRYUUWr/y+s5UgmhyUw"),
        ];
        for (line, want) in cases {
            assert_eq!(fingerprint(line).map(|k| k.fingerprint).as_deref(), Some(want), "{line}");
        }
    }

    #[test]
    fn lines_that_are_not_keys_give_none() {
        for bad in ["", "ssh-ed25519", "ssh-ed25519 !!!notbase64", "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIGsGHQHfUknkcLPS1Ym3yC6Jl77iGNcTH+NHC6qFlhoC"] {
            assert_eq!(fingerprint(bad), None, "{bad}");
        }
    }
}
