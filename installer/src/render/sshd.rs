//! The sshd hardening drop-in (`/etc/ssh/sshd_config.d/50-keel-hardening.conf`).
//!
//! Debian's `sshd_config` includes `sshd_config.d/*.conf` before its own settings, and sshd
//! keeps the first value it reads, so these settings win. The seed's `Protocol 2` is left out
//! (OpenSSH 7.4+ speaks only protocol 2 and warns about the keyword) and its
//! `ChallengeResponseAuthentication` is written under its current name,
//! `KbdInteractiveAuthentication`.

use crate::profile::Profile;

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub fn render(p: &Profile) -> String {
    let s = &p.ssh;
    let mut allow = s.allow_users.join(" ");
    if s.root_from_cluster_network {
        allow.push_str(&format!(" root@{}", p.network.cluster_bridge.address.trunc()));
    }
    let mut out = super::header(p, "sshd hardening");
    for (k, v) in [
        ("Port", s.port.to_string()),
        ("PermitRootLogin", s.permit_root_login.clone()),
        ("PubkeyAuthentication", "yes".into()),
        ("PasswordAuthentication", yes_no(s.password_authentication).into()),
        ("KbdInteractiveAuthentication", yes_no(s.kbd_interactive_authentication).into()),
        ("UsePAM", "yes".into()),
        ("X11Forwarding", yes_no(s.x11_forwarding).into()),
        ("MaxAuthTries", s.max_auth_tries.to_string()),
        ("MaxSessions", s.max_sessions.to_string()),
        ("ClientAliveInterval", s.client_alive_interval.to_string()),
        ("ClientAliveCountMax", s.client_alive_count_max.to_string()),
        ("LoginGraceTime", s.login_grace_time.to_string()),
        ("AllowUsers", allow),
        ("KexAlgorithms", s.kex_algorithms.join(",")),
        ("Ciphers", s.ciphers.join(",")),
        ("MACs", s.macs.join(",")),
    ] {
        out.push_str(&format!("{k} {v}\n"));
    }
    out
}
