//! One function per subcommand. Each returns the exit code: 0 success, 1 failure (bad input,
//! unmet spec, impossible plan); clap uses 2 for usage errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use keel_installer::hardware::{self, Inventory};
use keel_installer::plan;
use keel_installer::profile::{Loaded, Profile};
use keel_installer::render;
use keel_installer::source::{SourceError, SourceFile};
use keel_installer::spec::Spec;

use crate::cli::Command;
use crate::inventory_view;

pub fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Detect { root, json } => detect(&root, json),
        Command::Check { spec, root, json } => check(&spec, &root, json),
        Command::Validate { profile } => validate(&profile),
        Command::Plan { profile, spec, root, json, shell, image } => plan(&profile, spec.as_deref(), &root, json, shell, image.as_deref()),
        Command::Image(crate::cli::ImageCommand::Build { dataset, snapshot, profile, out, level }) => crate::image::build(&crate::image::BuildArgs { dataset, snapshot, profile, out, level }),
        Command::Image(crate::cli::ImageCommand::Show { image, registry_fingerprint }) => crate::image::show(&image, registry_fingerprint.as_deref()),
        Command::Image(crate::cli::ImageCommand::Receive { image, dataset, registry_fingerprint }) => crate::image::receive(&image, &dataset, registry_fingerprint.as_deref()),
        Command::Render { profile, out } => render(&profile, &out),
        Command::Install(args) => crate::install::install(&args),
        Command::Status { journal_dir, follow, json } => crate::install::status(&journal_dir, follow, json),
        Command::Remote(crate::cli::RemoteCommand::Install(a)) => crate::remote::install(&a),
        Command::Remote(crate::cli::RemoteCommand::Status { remote, follow, progress }) => crate::remote::status(&remote, follow, progress),
        Command::Rebuild(a) => crate::rebuild::rebuild(&a),
        Command::Robot { command, credentials } => robot(command, credentials.as_deref()),
        Command::Disk(crate::cli::DiskCommand::Replace(a)) => crate::disk_replace::replace(&a),
        Command::LiveArchive { out } => crate::live::write_archive(&out),
        Command::FirstBoot { root, give_up_after } => crate::first_boot::run(&root, std::time::Duration::from_secs(give_up_after)),
        Command::Verify { profile, root, allow_degraded, expect_quorum, json } => verify(&profile, &root, allow_degraded, expect_quorum, json),
    }
}

fn inventory(root: &Path) -> Result<Inventory> {
    hardware::probe(root).with_context(|| format!("detecting hardware under {}", root.display()))
}

fn load_spec(path: &Path) -> Result<Spec, SourceError> {
    Spec::load(&SourceFile::read(path)?)
}

/// Prints located diagnostics (errors or warnings) to stderr.
fn print_diagnostics(err: &SourceError) {
    eprintln!("{err}");
}

pub(crate) fn load_profile(path: &Path) -> Result<Option<Loaded>> {
    match Profile::load(path) {
        Ok(l) => {
            for w in &l.warnings {
                eprintln!("{w}");
            }
            Ok(Some(l))
        }
        Err(e) => {
            print_diagnostics(&e);
            eprintln!("keel: {} has {} error(s); nothing was done", path.display(), e.diagnostics.len());
            Ok(None)
        }
    }
}

fn detect(root: &Path, json: bool) -> Result<ExitCode> {
    let inv = inventory(root)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&inv)?);
    } else {
        print!("{}", inventory_view::human(&inv));
    }
    Ok(ExitCode::SUCCESS)
}

fn check(spec_path: &Path, root: &Path, json: bool) -> Result<ExitCode> {
    let spec = match load_spec(spec_path) {
        Ok(s) => s,
        Err(e) => {
            print_diagnostics(&e);
            return Ok(ExitCode::from(1));
        }
    };
    let inv = inventory(root)?;
    let report = spec.check(&inv);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn validate(path: &Path) -> Result<ExitCode> {
    let Some(l) = load_profile(path)? else { return Ok(ExitCode::from(1)) };
    let p = &l.profile;
    println!(
        "{}: valid profile for {} ({} target disks, cluster {} node {}, {} warning(s))",
        path.display(),
        p.node.fqdn(),
        p.disks.count,
        p.cluster.name,
        p.this_cluster_node().id,
        l.warnings.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// The spec a profile names, found in `hardware-specs/` beside the profile's folder.
pub fn default_spec(profile_path: &Path, name: &str) -> PathBuf {
    let dir = profile_path.parent().unwrap_or(Path::new("."));
    dir.join("..").join("hardware-specs").join(format!("{name}.toml"))
}

/// Loads profile and spec, probes the hardware and builds the plan; `Ok(None)` when the
/// reason was already printed (bad profile or spec, impossible plan).
pub fn build_plan(profile_path: &Path, spec_path: Option<&Path>, root: &Path, image: Option<(&str, Option<&str>)>) -> Result<Option<(Profile, plan::Plan)>> {
    let Some(l) = load_profile(profile_path)? else { return Ok(None) };
    // the image's manifest first: a wrong location stops here, before the hardware is read
    let image = match image {
        Some((location, fingerprint)) => Some(plan::ImageRef { location: location.to_string(), manifest: crate::image::manifest(location, fingerprint)? }),
        None => None,
    };
    let spec_path = match (spec_path, &l.profile.hardware_spec) {
        (Some(s), _) => Some(s.to_path_buf()),
        (None, Some(name)) => {
            let p = default_spec(profile_path, name);
            if !p.exists() {
                bail!(
                    "the profile names hardware spec \"{name}\" but {} does not exist; pass --spec FILE",
                    p.display()
                );
            }
            Some(p)
        }
        (None, None) => None,
    };
    let spec = match spec_path.as_deref().map(load_spec).transpose() {
        Ok(s) => s,
        Err(e) => {
            print_diagnostics(&e);
            return Ok(None);
        }
    };
    let inv = inventory(root)?;
    match plan::build_with_image(&inv, &l.profile, spec.as_ref(), image) {
        Ok(p) => Ok(Some((l.profile, p))),
        Err(e) => {
            eprintln!("keel: cannot plan {}: {e}", l.profile.node.hostname);
            Ok(None)
        }
    }
}

fn plan(profile_path: &Path, spec_path: Option<&Path>, root: &Path, json: bool, shell: bool, image: Option<&str>) -> Result<ExitCode> {
    let Some((_, p)) = build_plan(profile_path, spec_path, root, image.map(|i| (i, None)))? else { return Ok(ExitCode::from(1)) };
    if shell {
        print!("{}", p.shell_script(&profile_path.display().to_string()));
    } else if json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        print!("{}", p.human());
    }
    Ok(ExitCode::SUCCESS)
}

fn render(profile_path: &Path, out: &Path) -> Result<ExitCode> {
    let Some(l) = load_profile(profile_path)? else { return Ok(ExitCode::from(1)) };
    let canonical = std::fs::canonicalize(out).unwrap_or_else(|_| out.to_path_buf());
    if canonical == Path::new("/") {
        bail!("--out / would overwrite this system's own files; give a staging directory (keel install writes the node)");
    }
    for f in render::node_files(&l.profile) {
        let dest = out.join(f.path.trim_start_matches('/'));
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&dest, &f.content).with_context(|| format!("writing {}", dest.display()))?;
        set_mode(&dest, f.mode)?;
        println!("{:o} {}  {}", f.mode, &f.sha256[..16], dest.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).with_context(|| format!("setting mode of {}", path.display()))
}

fn verify(profile: &Path, root: &Path, allow_degraded: bool, expect_quorum: bool, json: bool) -> Result<ExitCode> {
    use keel_installer::verify;
    let l = match Profile::load(profile) {
        Ok(l) => l,
        Err(e) => {
            print_diagnostics(&e);
            return Ok(ExitCode::from(1));
        }
    };
    let opts = verify::Options { root: root.to_path_buf(), allow_degraded, expect_quorum };
    let mut host = keel_installer::exec::SystemHost;
    let rows = verify::run(&mut host, &l.profile, &opts);
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"schema": "keel.verify/v1", "host": l.profile.node.hostname, "root": root, "checks": rows}))?);
    } else {
        println!("keel verify: {} (root {}, profile {})", l.profile.node.hostname, root.display(), profile.display());
        print!("{}", verify::table(&rows));
    }
    Ok(if rows.iter().any(|r| r.status == verify::Status::Fail) { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn robot(cmd: crate::cli::RobotCommand, credentials: Option<&Path>) -> Result<ExitCode> {
    use crate::cli::RobotCommand;
    use crate::robot::{Credentials, Robot};
    let robot = Robot::new(Credentials::load(credentials)?)?;
    match cmd {
        RobotCommand::Servers => {
            let rows: Vec<[String; 6]> =
                robot.servers()?.into_iter().map(|s| [s.server_number.to_string(), s.server_name, s.server_ip.unwrap_or_default(), s.product, s.dc, s.status]).collect();
            print!("{}", keel_installer::table::render(&["NUMBER", "NAME", "IP", "PRODUCT", "DC", "STATUS"], &rows));
        }
        RobotCommand::Rescue { server, key_fingerprint } => {
            let s = robot.find(&server)?;
            let r = robot.activate_rescue(s.server_number, &key_fingerprint)?;
            println!(
                "rescue system active for the next boot of {} (#{}, {}): root login with the key {}{}",
                s.server_name,
                s.server_number,
                s.server_ip.as_deref().unwrap_or("-"),
                r.keys.join(", "),
                if r.password.is_some() { "; Robot also set a root password (not shown)" } else { "" }
            );
        }
        RobotCommand::Reset { server, yes } => {
            let s = robot.find(&server)?;
            if !yes {
                use std::io::{BufRead, IsTerminal, Write};
                if !std::io::stdin().is_terminal() {
                    bail!("a hardware reset cuts the power of {}: confirm with --yes", s.server_name);
                }
                eprint!("Hardware reset (power cycle) of {} (#{}, {})? Type its name: ", s.server_name, s.server_number, s.server_ip.as_deref().unwrap_or("-"));
                std::io::stderr().flush().ok();
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                if answer.trim() != s.server_name {
                    bail!("not confirmed: nothing was done");
                }
            }
            robot.reset(s.server_number)?;
            println!("hardware reset of {} (#{}) sent", s.server_name, s.server_number);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Interactive consent: asks on stderr for the node's host name (`prompt` says what it allows)
/// and reads one line from the terminal. Err(message) when what was typed is not the name.
pub fn ask_hostname(prompt: &str, hostname: &str) -> Result<std::result::Result<(), String>> {
    use std::io::{BufRead, Write};
    eprint!("Type the host name ({hostname}) {prompt}: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).context("reading the answer")?;
    Ok(keel_installer::exec::confirm::check_typed(hostname, &answer))
}
