//! The Hetzner Robot webservice (<https://robot-ws.your-server.de>), the calls a rebuild needs:
//! find the server by name or IP, activate the Linux rescue system with the operator's SSH key,
//! hardware reset. HTTP Basic auth over rustls; form-encoded requests, JSON answers; every
//! Robot error (`{"error": {"status", "code", "message"}}`) becomes a [`RobotError`] that says
//! what to do.
//!
//! Credentials never come from the command line: `KEEL_ROBOT_USER` + `KEEL_ROBOT_PASSWORD`, or a
//! TOML file (`user`, `password`, optional `url`) readable by its owner only, by default
//! `~/.config/keel/robot.toml`. Nothing here logs the password.
//!
//! A hand-written client rather than the `hrobot` crate: hrobot 7 hard-codes the host name in
//! every request (no base URL), so it cannot be pointed at a local stand-in without DNS and CA
//! tricks, and it brings hyper-rustls with its own async runtime into an otherwise blocking
//! binary; the four calls keel needs are small.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

pub const DEFAULT_URL: &str = "https://robot-ws.your-server.de";

/// Where the credentials come from, and the service URL.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    #[serde(default)]
    pub url: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("password", &"<hidden>").field("url", &self.url).finish()
    }
}

/// `~/.config/keel/robot.toml` (or under `$XDG_CONFIG_HOME`).
pub fn default_credentials_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("keel/robot.toml"))
}

impl Credentials {
    /// From the environment (KEEL_ROBOT_USER, KEEL_ROBOT_PASSWORD, KEEL_ROBOT_URL), else from
    /// `file` (or the default file).
    pub fn load(file: Option<&Path>) -> Result<Credentials> {
        if let (Ok(user), Ok(password)) = (std::env::var("KEEL_ROBOT_USER"), std::env::var("KEEL_ROBOT_PASSWORD")) {
            return Ok(Credentials { user, password, url: std::env::var("KEEL_ROBOT_URL").ok() });
        }
        let path = match file {
            Some(p) => p.to_path_buf(),
            None => default_credentials_file().ok_or_else(|| anyhow!("no Robot credentials: set KEEL_ROBOT_USER and KEEL_ROBOT_PASSWORD, or write ~/.config/keel/robot.toml"))?,
        };
        let meta = std::fs::metadata(&path).with_context(|| {
            format!("no Robot credentials: {} is missing (user = \"...\", password = \"...\" of the Robot webservice user, mode 0600), and KEEL_ROBOT_USER/KEEL_ROBOT_PASSWORD are not set", path.display())
        })?;
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            bail!("{} can be read by others (mode {:o}): it holds the Robot password; chmod 600 it", path.display(), meta.permissions().mode() & 0o777);
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow!("{}: {}", path.display(), e.message()))
    }
}

/// A Robot error answer, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("Robot {what}: {status} {code}: {message}{}", advice(.code, .detail))]
pub struct RobotError {
    pub what: String,
    pub status: u16,
    pub code: String,
    pub message: String,
    /// The rest of the error object (rate limit figures, invalid fields).
    pub detail: Value,
}

fn advice(code: &str, detail: &Value) -> String {
    let hint = match code {
        "UNAUTHORIZED" => "check the webservice user and password (Robot: Settings > Webservice and app settings); several failed logins block the source IP for a while".to_string(),
        "RATE_LIMIT_EXCEEDED" => format!(
            "Robot allows {} requests per {} s for this call; wait and run the same command again (keel resumes)",
            detail["max_request"].as_i64().map(|n| n.to_string()).unwrap_or_else(|| "a limited number of".into()),
            detail["interval"].as_i64().map(|n| n.to_string()).unwrap_or_else(|| "some".into())
        ),
        "SERVER_NOT_FOUND" | "NOT_FOUND" => "no such server in this Robot account: check the profile's robot server (name, IP or number) with `keel robot servers`".into(),
        "BOOT_NOT_AVAILABLE" | "RESET_NOT_AVAILABLE" => "this server does not offer it (Robot shows what it supports)".into(),
        "RESET_MANUAL_ACTIVE" => "a manual reset is already requested for this server; wait for Hetzner's technicians".into(),
        "INVALID_INPUT" => format!("the request was refused as invalid ({})", detail),
        _ => String::new(),
    };
    if hint.is_empty() {
        String::new()
    } else {
        format!(" ({hint})")
    }
}

/// A dedicated server as `GET /server` lists it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Server {
    pub server_number: u64,
    pub server_name: String,
    pub server_ip: Option<String>,
    #[serde(default)]
    pub product: String,
    #[serde(default)]
    pub dc: String,
    #[serde(default)]
    pub status: String,
}

/// The rescue system as Robot reports it after activation.
#[derive(Debug, Clone, PartialEq)]
pub struct Rescue {
    pub active: bool,
    /// Robot's root password for the rescue system (only when no key was given; never printed).
    pub password: Option<String>,
    /// Fingerprints of the keys the rescue system will accept.
    pub keys: Vec<String>,
}

pub struct Robot {
    base: String,
    creds: Credentials,
    http: reqwest::blocking::Client,
}

impl Robot {
    pub fn new(creds: Credentials) -> Result<Robot> {
        let base = creds.url.clone().unwrap_or_else(|| DEFAULT_URL.to_string()).trim_end_matches('/').to_string();
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).connect_timeout(Duration::from_secs(10)).build().context("HTTP client setup")?;
        Ok(Robot { base, creds, http })
    }

    fn call(&self, what: &str, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).basic_auth(&self.creds.user, Some(&self.creds.password)).header("Accept", "application/json");
        if !form.is_empty() {
            req = req.form(form);
        }
        let r = req.send().with_context(|| format!("Robot {what}: {url}"))?;
        let status = r.status();
        let text = r.text().with_context(|| format!("Robot {what}: reading the answer of {url}"))?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(v);
        }
        let e = &v["error"];
        Err(RobotError {
            what: what.to_string(),
            status: status.as_u16(),
            code: e["code"].as_str().unwrap_or("UNKNOWN").to_string(),
            message: e["message"].as_str().map(String::from).unwrap_or_else(|| text.chars().take(200).collect()),
            detail: e.clone(),
        }
        .into())
    }

    pub fn servers(&self) -> Result<Vec<Server>> {
        let v = self.call("server list", reqwest::Method::GET, "/server", &[])?;
        let list = v.as_array().ok_or_else(|| anyhow!("Robot server list: not a list: {v}"))?;
        list.iter().map(|s| serde_json::from_value::<Server>(s["server"].clone()).context("Robot server list: unexpected entry")).collect()
    }

    /// The server whose name, main IP or number is `key`.
    pub fn find(&self, key: &str) -> Result<Server> {
        let all = self.servers()?;
        let hits: Vec<&Server> = all.iter().filter(|s| s.server_name == key || s.server_ip.as_deref() == Some(key) || s.server_number.to_string() == key).collect();
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => bail!(
                "no server {key:?} in this Robot account (servers: {})",
                all.iter().map(|s| format!("{} #{} {}", s.server_name, s.server_number, s.server_ip.as_deref().unwrap_or("-"))).collect::<Vec<_>>().join(", ")
            ),
            many => bail!("{key:?} names {} servers in this Robot account: use the server number", many.len()),
        }
    }

    /// Activates the Linux rescue system for the next boot, reachable with the SSH key whose
    /// fingerprint (as Robot lists the account's keys) is `key_fingerprint`. An already active
    /// rescue system with that key is accepted as it is.
    pub fn activate_rescue(&self, server: u64, key_fingerprint: &str) -> Result<Rescue> {
        let path = format!("/boot/{server}/rescue");
        match self.call("rescue activation", reqwest::Method::POST, &path, &[("os", "linux"), ("authorized_key[]", key_fingerprint)]) {
            Ok(v) => Ok(rescue_from(&v["rescue"])),
            Err(e) if e.downcast_ref::<RobotError>().is_some_and(|r| r.code == "BOOT_ALREADY_ENABLED") => {
                let now = rescue_from(&self.call("rescue status", reqwest::Method::GET, &path, &[])?["rescue"]);
                if now.active && now.keys.iter().any(|k| k == key_fingerprint) {
                    Ok(now)
                } else {
                    Err(e.context(format!("another boot configuration is active on server {server} (not the rescue system with key {key_fingerprint}): deactivate it in Robot, then run again")))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A hardware reset (power cycle).
    pub fn reset(&self, server: u64) -> Result<()> {
        self.call("hardware reset", reqwest::Method::POST, &format!("/reset/{server}"), &[("type", "hw")]).map(drop)
    }
}

fn rescue_from(v: &Value) -> Rescue {
    let keys = v["authorized_key"].as_array().map(|a| a.iter().filter_map(|k| k["key"]["fingerprint"].as_str().or(k.as_str()).map(String::from)).collect()).unwrap_or_default();
    Rescue { active: v["active"].as_bool().unwrap_or(false), password: v["password"].as_str().map(String::from), keys }
}
