//! `keel rebuild NODE`: the whole disaster recovery from the operator's machine, in phases that
//! each record themselves in a state file, so a re-run after an interruption continues with the
//! first phase not done (a server is never reset twice by one rebuild):
//! 1. rescue   (profile has [robot]) activate the Linux rescue system with the operator's key;
//! 2. reset    (profile has [robot]) note the server's SSH host key, then a hardware reset;
//! 3. ssh      (after a reset) wait until SSH answers with a new host key (the rescue system's),
//!             pin it in a known_hosts file of keel's own, and use that from here on;
//! 4. install  `keel remote install` up to the detached run (consent: --yes --confirm-serials,
//!             or the host name typed here);
//! 5. follow   the install's journal to its end (a re-run re-attaches);
//! 6. phone-home (with --registry-admin-token-file) wait for the node's first boot to report;
//! then a summary: seconds per phase, the host keys to pin, the cluster step's result.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use keel_installer::profile::Profile;
use serde_json::{json, Value};

use crate::cli::{RebuildArgs, RemoteArgs, RemoteInstallArgs};
use crate::remote::{self, Ssh};
use crate::robot::{Credentials, Robot};

pub const PHASES: [&str; 6] = ["rescue", "reset", "ssh", "install", "follow", "phone-home"];

/// The rebuild's own record: which phases are done, when, how long they took, what they found.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub node: String,
    pub phases: Vec<PhaseDone>,
    /// The server's SSH host keys before the reset (ssh-keyscan lines).
    pub keys_before: Vec<String>,
    /// The rescue system's keys, pinned after the reset.
    pub rescue_keys: Vec<String>,
    /// keel-live's keys, as it announced them before the switch (empty: no switch); a re-run
    /// follows the install there with them.
    #[serde(default)]
    pub live_keys: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PhaseDone {
    pub name: String,
    pub seconds: f64,
    pub detail: String,
}

impl State {
    fn done(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p.name == phase)
    }

    fn load(path: &Path, node: &str) -> Result<State> {
        match std::fs::read_to_string(path) {
            Ok(t) => serde_json::from_str(&t).with_context(|| format!("{} is damaged: move it away to start the rebuild over", path.display())),
            Err(_) => Ok(State { node: node.to_string(), ..Default::default() }),
        }
    }

    fn save(&self, path: &Path) -> Result<()> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }
}

/// `~/.local/state/keel` (or under `$XDG_STATE_HOME`).
pub fn default_state_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/var/lib"))
        .join("keel")
}

fn port_of(options: &[String]) -> String {
    options.iter().find_map(|o| o.strip_prefix("Port=").map(String::from)).unwrap_or_else(|| "22".into())
}

/// `ssh-keyscan` of the host: its key lines, sorted (empty while SSH does not answer).
fn keyscan(host: &str, port: &str) -> Vec<String> {
    let out = Command::new("ssh-keyscan").args(["-T", "5", "-p", port, host]).output();
    let mut keys: Vec<String> = match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(String::from).collect(),
        Err(_) => Vec::new(),
    };
    keys.sort();
    keys
}

/// The key part (type + base64) of keyscan lines, without the host name.
fn key_parts(lines: &[String]) -> Vec<String> {
    let mut k: Vec<String> = lines.iter().filter_map(|l| l.split_once(' ').map(|(_, rest)| rest.to_string())).collect();
    k.sort();
    k
}

fn fingerprints(lines: &[String]) -> Vec<String> {
    key_parts(lines).iter().filter_map(|k| keel_installer::hostkeys::fingerprint(k)).map(|k| k.to_string()).collect()
}

pub fn rebuild(a: &RebuildArgs) -> Result<ExitCode> {
    let profile_path = a.profile.clone().unwrap_or_else(|| PathBuf::from(format!("profiles/{}.toml", a.node)));
    let profile = Profile::load(&profile_path).map_err(|e| anyhow!("{e}\nkeel: {} has errors; nothing was done", profile_path.display()))?.profile;
    if profile.node.hostname != a.node {
        bail!("{} is the profile of {}, not {}", profile_path.display(), profile.node.hostname, a.node);
    }
    let host = a.host.clone().unwrap_or_else(|| profile.network.uplink.ipv4.addr().to_string());
    let state_dir = a.state_dir.clone().unwrap_or_else(default_state_dir);
    let state_path = state_dir.join(format!("rebuild-{}.json", a.node));
    let known_hosts = state_dir.join(format!("known_hosts-{}", a.node));
    let live_known_hosts = state_dir.join(format!("known_hosts-{}-keel-live", a.node));
    let mut st = State::load(&state_path, &a.node)?;
    let stop_after = std::env::var("KEEL_TEST_STOP_AFTER").ok();
    if !st.phases.is_empty() {
        eprintln!("rebuild of {}: continuing ({} done: {})", a.node, st.phases.len(), st.phases.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "));
    }
    // a hardware reset power-cycles what may be a running node: asked here, before any phase
    if let (Some(r), false, false) = (&profile.robot, st.done("reset"), a.choices.yes) {
        use std::io::{BufRead, IsTerminal, Write};
        if !std::io::stdin().is_terminal() {
            bail!("keel rebuild {} power-cycles Robot server {} and destroys its disks: run it interactively, or with --yes --confirm-serials; nothing was done", a.node, r.server);
        }
        eprint!("Rebuild {}: Robot server {} is reset (power cycle) and its disks are destroyed. Type the node name to go on: ", a.node, r.server);
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != a.node {
            bail!("not confirmed ({:?} is not {}); nothing was done", answer.trim(), a.node);
        }
    }
    let port = port_of(&a.far.ssh_option);
    let mut remote_args = RemoteArgs { host: host.clone(), far: a.far.clone() };
    // the install's far side as `install` left it: keel-live after a switch
    let mut following: Option<(Ssh, RemoteArgs)> = None;

    for phase in PHASES {
        if st.done(phase) {
            if phase == "ssh" && !st.rescue_keys.is_empty() {
                pin(&mut remote_args, &known_hosts, &st, &host, &port)?;
            }
            continue;
        }
        let started = Instant::now();
        let detail = match phase {
            "rescue" | "reset" if profile.robot.is_none() => "skipped: the profile has no [robot] section (the host is already in a rescue system)".to_string(),
            "rescue" => {
                let r = profile.robot.as_ref().expect("checked");
                let robot = Robot::new(Credentials::load(a.robot_credentials.as_deref())?)?;
                let server = robot.find(&r.server)?;
                eprintln!("rescue: {} is Robot server #{} ({})", a.node, server.server_number, server.server_ip.as_deref().unwrap_or("-"));
                robot.activate_rescue(server.server_number, &r.key_fingerprint)?;
                format!("rescue system active on server #{} for key {}", server.server_number, r.key_fingerprint)
            }
            "reset" => {
                let r = profile.robot.as_ref().expect("checked");
                st.keys_before = keyscan(&host, &port);
                st.save(&state_path)?;
                let robot = Robot::new(Credentials::load(a.robot_credentials.as_deref())?)?;
                let server = robot.find(&r.server)?;
                robot.reset(server.server_number)?;
                format!("hardware reset of server #{} (host keys before: {})", server.server_number, fingerprints(&st.keys_before).join(", "))
            }
            "ssh" if profile.robot.is_none() => "skipped: no reset".to_string(),
            "ssh" => {
                let deadline = Instant::now() + Duration::from_secs(a.ssh_wait);
                let before = key_parts(&st.keys_before);
                let keys = loop {
                    let now = keyscan(&host, &port);
                    if !now.is_empty() && key_parts(&now) != before {
                        break now;
                    }
                    if Instant::now() > deadline {
                        bail!("{host}:{port} did not answer with a new SSH host key within {} s of the reset (--ssh-wait); is the rescue system booting? Run the same command again to keep waiting", a.ssh_wait);
                    }
                    std::thread::sleep(Duration::from_secs(2));
                };
                st.rescue_keys = keys;
                pin(&mut remote_args, &known_hosts, &st, &host, &port)?;
                format!("the rescue system answers on {host}:{port} with {}", fingerprints(&st.rescue_keys).join(", "))
            }
            "install" => {
                let ia = RemoteInstallArgs {
                    remote: remote_args.clone(),
                    profile: profile_path.clone(),
                    choices: a.choices.clone(),
                    force: false,
                    registry: a.registry.clone(),
                    token_file: a.token_file.clone(),
                    registry_fingerprint: a.registry_fingerprint.clone(),
                };
                match remote::start(&ia, &live_known_hosts) {
                    Err(e) if e.downcast_ref::<remote::SwitchNotSeen>().is_some() => return back_to_rescue(&profile, a, &mut st, &state_path, e),
                    Err(e) => return Err(e),
                    Ok(remote::Started::Stopped(code)) => return Ok(code),
                    Ok(remote::Started::Running(ssh, args)) => {
                        following = Some((ssh, args));
                        format!("keel install running detached on {host}")
                    }
                    Ok(remote::Started::Switched(ssh, args, keys)) => {
                        following = Some((ssh, args));
                        let detail = format!("keel install running in keel-live on {host} (switched from the rescue system by kexec; its host keys {})", keys.iter().filter_map(|k| keel_installer::hostkeys::fingerprint(k)).map(|f| f.to_string()).collect::<Vec<_>>().join(", "));
                        st.live_keys = keys;
                        detail
                    }
                }
            }
            "follow" => {
                // where `install` left it; a re-run starts here: keel-live's side with the keys it
                // announced (after a switch), else the rescue system's
                let (ssh, args) = match following.take() {
                    Some(f) => f,
                    None if !st.live_keys.is_empty() => remote::live_side(&remote_args, &profile.node.hostname, &st.live_keys, &live_known_hosts)?,
                    None => (Ssh::new(&remote_args), remote_args.clone()),
                };
                let code = remote::follow(&ssh, &args, a.choices.progress)?;
                if code != ExitCode::SUCCESS {
                    eprintln!("keel: the install on {host} did not finish (above); fix the cause, then run the same command again");
                    return Ok(code);
                }
                "the install finished".to_string()
            }
            "phone-home" => match (&a.registry, &a.registry_admin_token_file) {
                (Some(url), Some(tf)) => wait_phone_home(url, tf, &a.node, Duration::from_secs(a.phone_home_wait))?,
                _ => "skipped: no --registry with --registry-admin-token-file to wait on".to_string(),
            },
            _ => unreachable!("every phase is handled"),
        };
        let secs = started.elapsed().as_secs_f64();
        eprintln!("rebuild {phase}: {detail} ({secs:.1}s)");
        st.phases.push(PhaseDone { name: phase.to_string(), seconds: secs, detail });
        st.save(&state_path)?;
        if stop_after.as_deref() == Some(phase) {
            eprintln!("keel: KEEL_TEST_STOP_AFTER={phase}: stopping (test hook)");
            return Ok(ExitCode::from(1));
        }
    }
    summary(&st, a);
    Ok(ExitCode::SUCCESS)
}

/// The switch to keel-live was not seen: with Robot, the server is reset into the rescue
/// system again (the rescue and reset phases' calls), so it is not left in a half-known state,
/// and the rebuild stops with the advice instead of trying the switch again by itself. Its state
/// goes back to before the ssh phase, so that the operator's re-run waits for that new rescue
/// system (new host keys) and tries once more.
fn back_to_rescue(profile: &Profile, a: &RebuildArgs, st: &mut State, state_path: &Path, why: anyhow::Error) -> Result<ExitCode> {
    eprintln!("keel: {why}");
    let Some(r) = &profile.robot else {
        bail!("the switch to keel-live was not seen (above); the rebuild stops here. Boot keel-live by PXE (keel-registry --boot-kernel/--boot-initrd) or install ZFS in the rescue system, then run the same command again");
    };
    let robot = Robot::new(Credentials::load(a.robot_credentials.as_deref())?)?;
    let server = robot.find(&r.server)?;
    robot.activate_rescue(server.server_number, &r.key_fingerprint)?;
    st.keys_before = std::mem::take(&mut st.rescue_keys);
    st.phases.retain(|p| p.name == "rescue" || p.name == "reset");
    st.save(state_path)?;
    robot.reset(server.server_number)?;
    bail!(
        "the switch to keel-live was not seen (above): Robot server #{} was reset into the rescue system again, and the rebuild stops here rather than try the same switch again. \
         Look at the server's console (Robot's KVM console) for why kexec did not start keel-live, or boot keel-live by PXE; `keel rebuild {}` again waits for that rescue system and tries once more",
        server.server_number,
        a.node
    )
}

/// From now on ssh trusts exactly the rescue system's keys, pinned in keel's own known_hosts
/// file (the options go first: for ssh the first value of an option wins over the operator's).
fn pin(remote_args: &mut RemoteArgs, known_hosts: &Path, st: &State, host: &str, port: &str) -> Result<()> {
    let name = if port == "22" { host.to_string() } else { format!("[{host}]:{port}") };
    let text: String = key_parts(&st.rescue_keys).iter().map(|k| format!("{name} {k}\n")).collect();
    std::fs::write(known_hosts, text).with_context(|| format!("writing {}", known_hosts.display()))?;
    let opt = format!("UserKnownHostsFile={}", known_hosts.display());
    if remote_args.far.ssh_option.first() != Some(&opt) {
        remote_args.far.ssh_option.insert(0, opt);
        remote_args.far.ssh_option.insert(1, "StrictHostKeyChecking=yes".into());
    }
    Ok(())
}

/// Polls the registry until the node's first boot reported (state booted, ready or boot-failed).
fn wait_phone_home(url: &str, token_file: &Path, node: &str, wait: Duration) -> Result<String> {
    let token = std::fs::read_to_string(token_file).with_context(|| format!("reading {}", token_file.display()))?.trim().to_string();
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build()?;
    let base = url.trim_end_matches('/');
    let deadline = Instant::now() + wait;
    loop {
        let r = http.get(format!("{base}/v1/admin/nodes/{node}")).bearer_auth(&token).send();
        if let Ok(r) = r {
            if r.status().is_success() {
                let v: Value = r.json().unwrap_or(Value::Null);
                let state = v["state"].as_str().unwrap_or("");
                if ["booted", "ready", "boot-failed"].contains(&state) {
                    let boot: Value = http.get(format!("{base}/v1/admin/nodes/{node}/boot")).bearer_auth(&token).send().ok().and_then(|r| r.json().ok()).unwrap_or(Value::Null);
                    return Ok(format!(
                        "first boot reported: state {state}, host keys {}, cluster {}",
                        boot["ssh_host_keys"].as_array().map(|a| a.iter().filter_map(|k| k.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
                        boot.get("cluster").map(|c| c.to_string()).unwrap_or_else(|| json!(null).to_string())
                    ));
                }
            } else if r.status() == reqwest::StatusCode::UNAUTHORIZED {
                bail!("the registry {base} refused the admin token in {}", token_file.display());
            }
        }
        if Instant::now() > deadline {
            bail!("{node} did not report its first boot to {base} within {} s (--phone-home-wait); run the same command again to keep waiting", wait.as_secs());
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}

fn summary(st: &State, a: &RebuildArgs) {
    println!("rebuild of {}: done", a.node);
    let rows: Vec<[String; 3]> = st.phases.iter().map(|p| [p.name.clone(), format!("{:.1}", p.seconds), p.detail.clone()]).collect();
    print!("{}", keel_installer::table::render(&["PHASE", "SECONDS", "WHAT"], &rows));
    println!("total {:.1} s", st.phases.iter().map(|p| p.seconds).sum::<f64>());
}
