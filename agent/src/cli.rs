//! The command line: every subcommand and flag, each documented.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// keel: bare-metal Proxmox VE node provisioning agent.
///
/// Detects the hardware, checks it against a hardware spec, validates a node profile, and shows
/// the exact install plan. Run it from the Hetzner rescue system; every command here only reads.
#[derive(Debug, Parser)]
#[command(name = "keel", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the hardware inventory: CPU, memory, NVMe drives, other disks, NICs, DMI, firmware
    /// mode and boot device.
    Detect {
        /// Read /proc, /sys and /dev/disk/by-id under this directory instead of the live system
        /// (a recorded tree, such as tests/fixtures/ax41-nvme).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Print the inventory as JSON (format: docs/json.md).
        #[arg(long)]
        json: bool,
    },
    /// Check the hardware against a hardware spec; exits non-zero if any requirement fails.
    Check {
        /// Hardware spec file (hardware-specs/*.toml).
        #[arg(long)]
        spec: PathBuf,
        /// Inventory root, as for `detect`.
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate a node profile; every problem is printed with file:line:column and the field.
    Validate {
        /// Node profile (profiles/*.toml).
        #[arg(long)]
        profile: PathBuf,
    },
    /// Show the exact, ordered steps an install would run on this hardware. Executes nothing.
    Plan {
        /// Node profile (profiles/*.toml).
        #[arg(long)]
        profile: PathBuf,
        /// Hardware spec to check first; default: the profile's `hardware-spec`, looked up in
        /// hardware-specs/ beside the profile's folder.
        #[arg(long)]
        spec: Option<PathBuf>,
        /// Inventory root, as for `detect`.
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Print the plan as JSON (format: docs/json.md).
        #[arg(long)]
        json: bool,
    },
    /// Write the files an install puts on the node (interfaces, corosync.conf, hosts, sshd,
    /// apt sources, ...) under a staging directory, for review.
    Render {
        /// Node profile (profiles/*.toml).
        #[arg(long)]
        profile: PathBuf,
        /// Staging directory; files land at OUT/etc/..., never on this system's own /etc.
        #[arg(long)]
        out: PathBuf,
    },
}
