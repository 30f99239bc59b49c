//! A real OpenSSH server on loopback (own port, own host key, a test user key, the client's
//! known_hosts pinned to it): the stand-in for a rescue system.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command};

fn spawn(d: &Path) -> Child {
    Command::new("/usr/sbin/sshd").args(["-D", "-e", "-f"]).arg(d.join("sshd_config")).stderr(std::fs::File::create(d.join("sshd.log")).unwrap()).spawn().unwrap()
}

pub struct Sshd {
    pub dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "keel-test", "-f"]).arg(path).status().unwrap().success();
    assert!(ok, "ssh-keygen failed");
}

impl Sshd {
    /// None when sshd is missing (unless KEEL_REQUIRE_TOOLS says it must be there).
    pub fn start() -> Option<Sshd> {
        if !Path::new("/usr/sbin/sshd").exists() {
            assert!(std::env::var_os("KEEL_REQUIRE_TOOLS").is_none(), "/usr/sbin/sshd is missing (apt-get install openssh-server)");
            eprintln!("SKIPPED: no sshd");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("user_key"));
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/host_key\nPidFile {0}/sshd.pid\nAuthorizedKeysFile {0}/authorized_keys\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n",
                d.display()
            ),
        )
        .unwrap();
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        std::fs::write(d.join("known_hosts"), format!("[127.0.0.1]:{port} {host_pub}")).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let child = spawn(d);
        let s = Sshd { dir, child, port };
        s.wait_listening();
        Some(s)
    }

    fn wait_listening(&self) {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("sshd did not start: {}", std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default());
    }

    /// What a reset into the rescue system looks like from outside: SSH goes away and comes
    /// back with another host key (the client's known_hosts still has the old one).
    pub fn restart_with_new_host_key(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let d = self.dir.path();
        let _ = std::fs::remove_file(d.join("host_key"));
        let _ = std::fs::remove_file(d.join("host_key.pub"));
        keygen(&d.join("host_key"));
        self.child = spawn(d);
        self.wait_listening();
    }

    /// The connection options: this port, the test key, the pinned host key, no prompts.
    pub fn options(&self) -> Vec<String> {
        let d = self.dir.path().display();
        [
            format!("Port={}", self.port),
            "User=root".into(),
            format!("IdentityFile={d}/user_key"),
            "IdentitiesOnly=yes".into(),
            format!("UserKnownHostsFile={d}/known_hosts"),
            "StrictHostKeyChecking=yes".into(),
            "BatchMode=yes".into(),
        ]
        .into_iter()
        .flat_map(|o| ["--ssh-option".to_string(), o])
        .collect()
    }
}

