//! The plan as an operator reads it before saying yes.

use std::fmt::Write;

use super::Plan;
use crate::table::indent;

/// Quotes an argument for display the way a POSIX shell would need it.
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c)) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

impl Plan {
    pub fn human(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "keel plan for {} (profile {}, sha256 {})", self.hostname, self.profile.path, &self.profile.sha256[..16]);
        if let Some(r) = &self.spec {
            let _ = writeln!(o, "hardware spec {}: all {} requirements met", r.spec, r.rows.len());
        }
        let _ = writeln!(o, "\nTARGET DISKS: everything on them is destroyed");
        let rows: Vec<[String; 6]> = self
            .targets
            .iter()
            .map(|t| {
                [
                    t.label.clone(),
                    t.serial.clone(),
                    t.model.clone(),
                    t.size_bytes.to_string(),
                    t.kernel_name.clone(),
                    if t.existing_partitions.is_empty() {
                        "no partitions".into()
                    } else {
                        format!("{} partitions now", t.existing_partitions.len())
                    },
                ]
            })
            .collect();
        o.push_str(&indent(&crate::table::render(&["DISK", "SERIAL", "MODEL", "SIZE", "NOW", "CONTENT"], &rows)));
        for t in &self.targets {
            let _ = writeln!(o, "  {}: {}", t.label, t.by_id);
        }
        if !self.untouched.is_empty() {
            let _ = writeln!(o, "\nleft alone:");
            for u in &self.untouched {
                let _ = writeln!(o, "  {} ({}): {}", u.name, u.size_bytes, u.why);
            }
        }
        let _ = writeln!(o, "\nLAYOUT (identical on every target, {}-byte sectors)", self.layout.logical_block_size);
        let mut parts = self.layout.partitions.clone();
        parts.sort_by_key(|p| p.first_sector);
        let rows: Vec<[String; 6]> = parts
            .iter()
            .map(|p| {
                [
                    format!("p{}", p.number),
                    p.name.to_string(),
                    p.type_code.to_string(),
                    format!("{}-{}", p.first_sector, p.last_sector),
                    p.size_bytes.short(),
                    p.purpose.to_string(),
                ]
            })
            .collect();
        o.push_str(&indent(&crate::table::render(&["PART", "NAME", "TYPE", "SECTORS", "SIZE", "PURPOSE"], &rows)));
        let _ = writeln!(
            o,
            "\nuplink: {} ({}) now, named {} on the installed system",
            self.uplink.current_name, self.uplink.mac, self.uplink.installed_name
        );
        if let Some(img) = &self.image {
            let m = &img.manifest;
            let _ = writeln!(
                o,
                "\nOS from the image {} ({} bytes, sha256 {}...): Debian {}, OpenZFS {}, built on {} at {}",
                img.location, m.size, &m.sha256[..16], m.debian_version, m.zfs_version, m.profile_hostname, m.created
            );
        }
        let _ = writeln!(o, "\nSTEPS ({}; * = destroys data on the target disks)", self.steps.len());
        for (i, s) in self.steps.iter().enumerate() {
            let _ = writeln!(
                o,
                "{:>3}. {}{} [{}] {}",
                i + 1,
                if s.group.destructive() { "*" } else { "" },
                s.id,
                s.group.name(),
                s.title
            );
            if !s.disks.is_empty() {
                let _ = writeln!(o, "       disks: {}", s.disks.join(", "));
            }
            for c in &s.copies {
                let _ = writeln!(o, "       copy {} to {}{} (mode {:o})", c.from, self.target_root, c.to, c.mode);
            }
            for f in &s.files {
                let _ = writeln!(o, "       write {}{} (mode {:o}, sha256 {})", self.target_root, f.path, f.mode, &f.sha256[..16]);
            }
            for c in &s.commands {
                let _ = writeln!(o, "       $ {}", c.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "));
            }
            for c in &s.checksums {
                let _ = writeln!(o, "       check {} has sha512 {}...", c.path, &c.sha512[..16]);
            }
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(o, "\nwarnings:");
            for w in &self.warnings {
                let _ = writeln!(o, "  - {w}");
            }
        }
        let _ = writeln!(o, "\nNothing has been executed. `keel install` runs this plan after confirmation.");
        o
    }
}

impl Plan {
    /// The plan as a plain shell script: every command, file and copy in order, the checksums
    /// as `sha512sum -c`, the verify step as `keel verify` (`$KEEL` is keel's binary). No
    /// "already done?" checks, no journal: what a hand-written runbook script would do.
    pub fn shell_script(&self, profile_path: &str) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "#!/bin/sh\n# keel plan for {} as a plain script (keel plan --shell): no checks, no journal.", self.hostname);
        let _ = writeln!(o, "set -eu\nKEEL=${{KEEL:-keel}}");
        let q = |a: &str| shell_quote(a);
        for s in &self.steps {
            let _ = writeln!(o, "\n# --- {}: {}", s.id, s.title);
            let _ = writeln!(o, "echo \"== {}\"", s.id);
            if s.id == "verify.target" {
                let _ = writeln!(o, "\"$KEEL\" verify --root {} --profile {}", self.target_root, q(profile_path));
            }
            if let (true, Some(img)) = (s.id == "os.image", &self.image) {
                let m = &img.manifest;
                let fetch = if img.location.contains("://") { format!("curl -fsSL {}", q(&img.location)) } else { format!("cat {}", q(&img.location)) };
                let _ = writeln!(o, "# keel checks the SHA-256 {} and the size {} as the image streams (a shell pipe cannot)", m.sha256, m.size);
                let _ = writeln!(o, "{fetch} | zstd -dc | zfs receive -u {}", crate::image::ROOT_DATASET);
            }
            if s.id == "finish.report" {
                let _ = writeln!(o, "zpool list -H -o name,health,size,allocated,free rpool datapool\ncat {}/etc/ssh/ssh_host_*_key.pub", self.target_root);
            }
            for c in &s.copies {
                if c.from == super::FIRST_BOOT_CREDENTIALS {
                    let _ = writeln!(o, "# (no registry in a shell run: the first-boot unit only runs the cluster step)");
                    continue;
                }
                let from = if c.from == super::SELF_EXE { "\"$KEEL\"".to_string() } else { q(&c.from) };
                let _ = writeln!(o, "install -D -m {:o} {from} {}", c.mode, q(&format!("{}{}", self.target_root, c.to)));
            }
            for f in &s.files {
                let path = format!("{}{}", self.target_root, f.path);
                let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("/");
                let _ = writeln!(o, "mkdir -p {}\ncat >{} <<'KEEL_FILE_END'\n{}KEEL_FILE_END\nchmod {:o} {}", q(dir), q(&path), f.content, f.mode, q(&path));
            }
            for c in &s.commands {
                let line = c.iter().map(|a| q(a)).collect::<Vec<_>>().join(" ");
                // what keel tolerates: a partition without a ZFS label has nothing to clear
                if c.get(1).map(String::as_str) == Some("labelclear") {
                    let _ = writeln!(o, "{line} || true");
                } else {
                    let _ = writeln!(o, "{line}");
                }
            }
            if s.id == "partition.settle" {
                let _ = writeln!(o, "sleep 1");
            }
            for c in &s.checksums {
                let _ = writeln!(o, "echo {} | sha512sum -c -", q(&format!("{}  {}", c.sha512, c.path)));
            }
        }
        o
    }
}
