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
        /// Print the plan as a plain POSIX shell script (no checks, no journal, no resume):
        /// for review, and the baseline keel's install is benchmarked against.
        #[arg(long, conflicts_with = "json")]
        shell: bool,
        /// Plan the install from this root image (file or URL; its manifest is IMAGE.json).
        #[arg(long)]
        image: Option<String>,
    },
    /// Root images for fast installs: build one from a node keel installed, show a manifest.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Install the node: preflight, confirmation, then every step of the plan (disks, pools,
    /// OS, configuration, boot loaders, verify), journaled so that a re-run continues where
    /// the last stopped.
    Install(InstallArgs),
    /// Show an install's journal: what was done, what failed, what runs now.
    Status {
        /// Folder of the journals (as given to `install`).
        #[arg(long, default_value = DEFAULT_JOURNAL_DIR)]
        journal_dir: PathBuf,
        /// Keep printing new events until the install finishes, pauses or fails.
        #[arg(long)]
        follow: bool,
        /// Print the journal's JSON lines instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Check an installed node (or a mounted target) against its profile: pools, properties,
    /// datasets, boot loaders on every drive, rendered files; on a running node also bridges,
    /// VLANs and corosync quorum. Prints a table; exit 1 when a check fails.
    Verify {
        /// The profile the node was installed from (keel keeps a copy there).
        #[arg(long, default_value = "/etc/keel/profile.toml")]
        profile: PathBuf,
        /// Root of the installed system (`/mnt/keel` for a mounted target).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// A drive is missing on purpose: a degraded mirror is a warning, not a failure.
        #[arg(long)]
        allow_degraded: bool,
        /// Fail unless corosync is quorate with every node of the profile.
        #[arg(long)]
        expect_quorum: bool,
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
    /// The Hetzner Robot webservice: list servers, activate the rescue system, hardware reset.
    /// Credentials from KEEL_ROBOT_USER/KEEL_ROBOT_PASSWORD or a 0600 TOML file (never flags).
    Robot {
        #[command(subcommand)]
        command: RobotCommand,
        /// Credentials file (user, password, optional url); default ~/.config/keel/robot.toml.
        #[arg(long, global = true)]
        credentials: Option<PathBuf>,
    },
    /// Install a node over SSH from here: the far side is a rescue system; keel uploads itself
    /// and the profile, shows the far side's disks, asks here, runs there, follows here.
    #[command(subcommand)]
    Remote(RemoteCommand),
    /// Disaster recovery of one node, from here: Robot rescue + hardware reset (when the
    /// profile has [robot]), wait for the rescue system's SSH, remote install, follow it, wait
    /// for the first boot's phone-home; every phase recorded, so a re-run continues.
    Rebuild(RebuildArgs),
    /// Run by the installed node's keel-first-boot unit: report "booted" with the new SSH host
    /// keys to the registry, run the cluster step (`pvecm create` on the first node, `pvecm add`
    /// on the others), report the result, then disable the unit. Retries with backoff.
    FirstBoot {
        /// Root of the installed system (tests point it elsewhere).
        #[arg(long, default_value = "/", hide = true)]
        root: PathBuf,
        /// Give up (exit 1, so systemd starts it again later) after this many seconds.
        #[arg(long, default_value_t = 1800)]
        give_up_after: u64,
    },
    /// Drives of an installed node (run on the node itself).
    #[command(subcommand)]
    Disk(DiskCommand),
    /// Write this keel as keel-live's init into a small archive (newc cpio) for a PXE boot:
    /// served beside keel-live's initrd.img, the registry's iPXE script loads both
    /// (`keel-registry --boot-initrd URL-of-initrd.img --boot-initrd URL-of-this`).
    LiveArchive {
        /// The archive to write (keel.cpio).
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum DiskCommand {
    /// After a drive of the mirror died and was swapped: partition the new drive like the
    /// survivor (new GUIDs), replace the dead member of rpool and datapool by it (by GUID), follow
    /// the resilver, put the ESP and boot loader on it, update the node's profile copy and
    /// print the profile line to change; journaled, so a re-run continues. Run it on the node,
    /// booted degraded from the surviving drive, or in a rescue system with ZFS (give the
    /// profile): the pools are imported by GUID from the survivor and exported at the end.
    Replace(DiskReplaceArgs),
}

#[derive(Debug, clap::Args)]
pub struct DiskReplaceArgs {
    /// Serial of the new drive (`keel detect` lists them).
    #[arg(long = "new", value_name = "SERIAL")]
    pub new_serial: String,
    /// The node's profile (keel keeps a copy on the node; in a rescue system give it).
    #[arg(long, default_value = "/etc/keel/profile.toml")]
    pub profile: PathBuf,
    /// Unattended consent: go on without asking (the drive is named by --new).
    #[arg(long)]
    pub yes: bool,
    /// The new drive has partitions or signatures and may be destroyed.
    #[arg(long)]
    pub wipe_existing: bool,
    /// Folder of the journal.
    #[arg(long, default_value = DEFAULT_JOURNAL_DIR)]
    pub journal_dir: PathBuf,
    /// Start over: the old journal of this drive's replace is moved aside.
    #[arg(long)]
    pub restart: bool,
    /// Show what would be done and stop.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub live: LiveArgs,
}

#[derive(Debug, Subcommand)]
pub enum RobotCommand {
    /// The account's dedicated servers: number, name, main IP, product, data center, status.
    Servers,
    /// Activate the Linux rescue system for the next boot, with this SSH key (its fingerprint
    /// as Robot lists the account's keys).
    Rescue {
        /// Server name, main IP or number.
        server: String,
        #[arg(long)]
        key_fingerprint: String,
    },
    /// Hardware reset (power cycle) of the server. Asks first unless --yes.
    Reset {
        /// Server name, main IP or number.
        server: String,
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Check the far side is a rescue system, upload keel (SHA-256 checked there) and the
    /// profile, preflight there, confirm here, `keel install --detach` there, follow here.
    Install(RemoteInstallArgs),
    /// The far side's install journal; --follow re-attaches to a running install.
    Status {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        follow: bool,
        #[arg(long, value_enum, default_value_t = ProgressFormat::Plain)]
        progress: ProgressFormat,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct RebuildArgs {
    /// The node (its profile's host name).
    pub node: String,
    /// Its profile (default: profiles/NODE.toml).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Where SSH reaches the rescue system (default: the profile's uplink IPv4 address).
    #[arg(long)]
    pub host: Option<String>,
    #[command(flatten)]
    pub far: FarSideArgs,
    /// Robot credentials file (default ~/.config/keel/robot.toml, or KEEL_ROBOT_* variables).
    #[arg(long)]
    pub robot_credentials: Option<PathBuf>,
    #[command(flatten)]
    pub choices: InstallChoices,
    /// The node phones home to this registry (needs --token-file); with
    /// --registry-admin-token-file the rebuild also waits for the first boot's report.
    #[arg(long)]
    pub registry: Option<String>,
    #[arg(long, requires = "registry")]
    pub token_file: Option<PathBuf>,
    #[arg(long, requires = "registry")]
    pub registry_fingerprint: Option<String>,
    #[arg(long, requires = "registry")]
    pub registry_admin_token_file: Option<PathBuf>,
    /// Seconds to wait for the rescue system's SSH after the reset.
    #[arg(long, default_value_t = 900)]
    pub ssh_wait: u64,
    /// Seconds to wait for the first boot's phone-home.
    #[arg(long, default_value_t = 3600)]
    pub phone_home_wait: u64,
    /// Where the rebuild records its phases (default ~/.local/state/keel).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

/// How to reach the far side.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// The rescue system: anything `ssh` accepts (user@host, a Host alias of ~/.ssh/config).
    #[arg(long)]
    pub host: String,
    #[command(flatten)]
    pub far: FarSideArgs,
}

/// The SSH options and the far side's folders (remote and rebuild).
#[derive(Debug, Clone, clap::Args)]
pub struct FarSideArgs {
    /// Extra OpenSSH option for every connection (KEY=VALUE, as `ssh -o`); repeatable.
    #[arg(long = "ssh-option")]
    pub ssh_option: Vec<String>,
    /// Folder on the far side for keel and the profile.
    #[arg(long, default_value = crate::remote::FAR_DIR)]
    pub far_dir: String,
    /// The far side's journal folder.
    #[arg(long, default_value = DEFAULT_JOURNAL_DIR)]
    pub far_journal_dir: String,
    /// Inventory root on the far side (tests point it at a recorded tree).
    #[arg(long, hide = true)]
    pub far_root: Option<String>,
    /// How often a dropped connection is retried before keel leaves the install running there.
    #[arg(long, default_value_t = 5)]
    pub reconnect_tries: u32,
}

/// What the far install is asked to do (remote and rebuild).
#[derive(Debug, Clone, clap::Args)]
pub struct InstallChoices {
    /// keel-live here (a folder with vmlinuz, initrd.img, manifest: scripts/live/build.sh):
    /// uploaded with keel; when the far side has no usable ZFS (Hetzner's rescue) its install
    /// switches to it by kexec, and keel reconnects to keel-live with the host keys it announced.
    #[arg(long)]
    pub live: Option<PathBuf>,
    /// How long to wait for keel-live to answer after the switch, in seconds.
    #[arg(long, default_value_t = 600)]
    pub live_timeout: u64,
    /// Hardware spec (default: the profile's `hardware-spec`, beside its folder).
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Unattended: do not ask. Only with --confirm-serials.
    #[arg(long, requires = "confirm_serials")]
    pub yes: bool,
    /// The serials of the disks to destroy over there, comma-separated; must match its plan.
    #[arg(long, value_delimiter = ',')]
    pub confirm_serials: Vec<String>,
    /// Proceed although the far side's target disks hold file systems or pool members.
    #[arg(long)]
    pub wipe_existing: bool,
    /// Clear the ZFS labels on this disk over there (outside the targets; by serial).
    #[arg(long, value_delimiter = ',')]
    pub clear_zfs_labels: Vec<String>,
    /// Install although disks over there outside the plan carry pools named like the new ones.
    #[arg(long)]
    pub accept_foreign_pools: bool,
    /// Stop after this step over there (see `keel plan`).
    #[arg(long)]
    pub until: Option<String>,
    /// Install the OS over there from this root image: a URL the far side can reach (such as
    /// the registry's /v1/images/NAME) or a file path over there.
    #[arg(long)]
    pub image: Option<String>,
    #[arg(long, value_enum, default_value_t = ProgressFormat::Plain)]
    pub progress: ProgressFormat,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RemoteInstallArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Node profile (here; uploaded with the files it names).
    #[arg(long)]
    pub profile: PathBuf,
    #[command(flatten)]
    pub choices: InstallChoices,
    /// Install even though the far side looks like an installed node, not a rescue system.
    #[arg(long)]
    pub force: bool,
    /// Phone home from the far side to this registry (see `keel install --registry`).
    #[arg(long, requires = "token_file")]
    pub registry: Option<String>,
    /// The node's enrollment token, in a file here (uploaded, 0600).
    #[arg(long, requires = "registry")]
    pub token_file: Option<PathBuf>,
    #[arg(long, requires = "registry")]
    pub registry_fingerprint: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Write a root image: the base snapshot a network install takes after its packages and
    /// before anything of the node (rpool/ROOT/pve-1@keel-base, without SSH host keys),
    /// `zfs send` + zstd to FILE, and its manifest FILE.json (Debian, kernels, Proxmox and ZFS
    /// package versions, OpenZFS module, size, SHA-256, the profile it came from). Runs on a
    /// node keel installed, or in the rescue system with its pools imported and the root mounted.
    Build {
        #[arg(long, default_value = keel_installer::image::ROOT_DATASET)]
        dataset: String,
        #[arg(long, default_value = keel_installer::image::BASE_SNAPSHOT)]
        snapshot: String,
        /// The node's profile (default: /etc/keel/profile.toml under the dataset's mount point).
        #[arg(long)]
        profile: Option<PathBuf>,
        /// The image file; the manifest goes beside it (FILE.json).
        #[arg(long)]
        out: PathBuf,
        /// zstd level (1-19).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
        level: i32,
    },
    /// Print an image's manifest (a file or an http(s) URL).
    Show {
        image: String,
        /// Pin the TLS certificate of an https URL: sha256:HEX.
        #[arg(long)]
        registry_fingerprint: Option<String>,
    },
    /// Receive an image into a dataset of your choice with the install's own pipeline and print
    /// its figures (time, throughput, keel's peak memory): for benchmarks.
    #[command(hide = true)]
    Receive {
        image: String,
        #[arg(long)]
        dataset: String,
        #[arg(long)]
        registry_fingerprint: Option<String>,
    },
}

/// Where journals and logs live in the rescue system.
pub const DEFAULT_JOURNAL_DIR: &str = "/var/lib/keel";

#[derive(Debug, Clone, clap::Args)]
pub struct InstallArgs {
    /// Node profile (profiles/*.toml). Without it, the profile comes from the registry (the
    /// node's own, found by the enrollment token), with its hardware spec.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Hardware spec to check first (default: the profile's `hardware-spec`).
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Install the OS from this root image (a file, or an http(s) URL such as the registry's
    /// /v1/images/NAME; its manifest is IMAGE.json) instead of the package pass: streamed
    /// into rpool/ROOT/pve-1 and checked against the manifest's SHA-256, then only the
    /// node-specific steps run.
    #[arg(long)]
    pub image: Option<String>,
    /// Inventory root, as for `detect` (tests point it at a tree that describes loop devices).
    #[arg(long, default_value = "/", hide = true)]
    pub root: PathBuf,
    /// Unattended: do not ask. Only valid together with --confirm-serials.
    #[arg(long)]
    pub yes: bool,
    /// Unattended: the serials of the disks to destroy, comma-separated; must match the plan.
    #[arg(long, value_delimiter = ',')]
    pub confirm_serials: Vec<String>,
    /// Unattended with nobody to give the serials (keel-live booted by PXE runs it so): the
    /// consent is the drive serials the profile pins (disks.serials), which must be exactly the
    /// disks the plan destroys; a profile that pins none is refused.
    #[arg(long, conflicts_with_all = ["yes", "confirm_serials"])]
    pub unattended: bool,
    /// Proceed although the target disks hold file systems or ZFS pool members.
    #[arg(long)]
    pub wipe_existing: bool,
    /// Also clear the ZFS labels on this disk outside the targets (by serial; repeat or
    /// comma-separate): an old install's pools there would be found beside the new ones. Its
    /// serial must be confirmed too (--confirm-serials, or the typed host name).
    #[arg(long, value_delimiter = ',')]
    pub clear_zfs_labels: Vec<String>,
    /// Install although disks outside the plan carry exported pools named like the new ones
    /// (rpool, datapool): they are left alone, and the first boot may take the old rpool.
    #[arg(long)]
    pub accept_foreign_pools: bool,
    /// Run the preflight checks, show what would be destroyed, and stop.
    #[arg(long)]
    pub preflight_only: bool,
    /// Forget the journal of an earlier attempt (kept beside it) and start over.
    #[arg(long)]
    pub restart: bool,
    /// Stop after this step id (see `keel plan`); a later run continues from there.
    #[arg(long)]
    pub until: Option<String>,
    /// Progress output: `plain` lines or one JSON event per line.
    #[arg(long, value_enum, default_value_t = ProgressFormat::Plain)]
    pub progress: ProgressFormat,
    /// Folder for the journal and the log of detached runs.
    #[arg(long, default_value = DEFAULT_JOURNAL_DIR)]
    pub journal_dir: PathBuf,
    /// Seconds any single command may take before it is killed.
    #[arg(long, default_value_t = 600)]
    pub command_timeout: u64,
    /// Limit in seconds for each long OS command (the package pass, initramfs,
    /// boot loaders).
    #[arg(long, default_value_t = 3600)]
    pub os_command_timeout: u64,
    /// Confirm here, then run in the background (own session, log file), so a dropped SSH
    /// connection does not stop the install; follow it with `keel status --follow`.
    #[arg(long)]
    pub detach: bool,
    /// Phone home to this keel-registry: enroll, stream progress, send the final report. The
    /// install never waits on it; undelivered events stay spooled beside the journal. Without
    /// the flag, `keel.registry=` / `keel.token=` / `keel.fingerprint=` on the kernel command
    /// line are used when present (an unattended PXE boot).
    #[arg(long)]
    pub registry: Option<String>,
    /// The node's single-use enrollment token (from the registry's operator).
    #[arg(long, requires = "registry", conflicts_with = "token_file")]
    pub token: Option<String>,
    /// Read the enrollment token from this file (keeps it out of the process list).
    #[arg(long, requires = "registry")]
    pub token_file: Option<PathBuf>,
    /// Pin the registry's TLS certificate: sha256:HEX of its DER form.
    #[arg(long, requires = "registry")]
    pub registry_fingerprint: Option<String>,
    /// Without --profile: how long to wait for an unreachable registry, in seconds.
    #[arg(long, default_value_t = 900)]
    pub registry_wait: u64,
    /// Kernel command line to read keel.registry= and keel.token= from.
    #[arg(long, default_value = "/proc/cmdline", hide = true)]
    pub cmdline: PathBuf,
    #[command(flatten)]
    pub live: LiveArgs,
}

/// keel-live, for a system without ZFS (install and disk replace).
#[derive(Debug, Clone, clap::Args)]
pub struct LiveArgs {
    /// keel-live (a folder with its `vmlinuz` and `initrd.img`, from scripts/live/build.sh):
    /// when this system has no usable ZFS (Hetzner's rescue), keel switches to it by kexec
    /// after the confirmation, carrying the uplink, SSH keys, profile and consent over, and
    /// the command runs there. Default: `keel-live/` beside this binary, if it is there.
    #[arg(long)]
    pub live: Option<PathBuf>,
    /// What keel-live does when the command finished (reboot: into the node's system).
    #[arg(long, default_value = "reboot", value_parser = parse_after)]
    pub live_after_success: keel_installer::live::After,
    /// What keel-live does when the command failed (stay: up with sshd, for a look).
    #[arg(long, default_value = "stay", value_parser = parse_after)]
    pub live_after_failure: keel_installer::live::After,
}

fn parse_after(s: &str) -> Result<keel_installer::live::After, String> {
    s.parse()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressFormat {
    Plain,
    Json,
}
