//! The agent's side of the registry (`keel-registry`): enrollment with the single-use token,
//! the node's own profile, progress events out of the spool, the final report. HTTPS through
//! rustls; `--registry-fingerprint sha256:HEX` pins the registry's certificate (then the
//! certificate itself is the trust anchor, for a registry with a self-signed certificate).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use keel_installer::exec::spool::Deliver;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub struct Registry {
    base: String,
    http: reqwest::blocking::Client,
}

/// What enrollment gave this node.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Enrolled {
    pub hostname: String,
    pub secret: String,
    pub profile: String,
}

impl Enrolled {
    fn bearer(&self) -> String {
        format!("{}:{}", self.hostname, self.secret)
    }
}

/// How this node talks to its registry: kept beside the journal (0600) while the install runs,
/// so a resumed install does not need a new token, and copied into the installed system as
/// /etc/keel/first-boot.json for the first-boot unit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    pub registry: String,
    pub fingerprint: Option<String>,
    /// The enrollment token (single-use: only worth anything until `enrollment` is set).
    pub token: String,
    pub enrollment: Option<Enrolled>,
}

impl Credentials {
    /// The saved credentials when they are for this registry and token (a resumed install);
    /// otherwise new ones, not enrolled yet.
    pub fn load_or_new(path: &std::path::Path, registry: &str, fingerprint: Option<&str>, token: &str) -> Credentials {
        let fresh = Credentials { registry: registry.to_string(), fingerprint: fingerprint.map(String::from), token: token.to_string(), enrollment: None };
        match Credentials::load(path) {
            Ok(c) if c.registry == fresh.registry && c.token == fresh.token => Credentials { fingerprint: fresh.fingerprint, ..c },
            _ => fresh,
        }
    }

    pub fn load(path: &std::path::Path) -> Result<Credentials> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not keel registry credentials", path.display()))
    }

    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        write_private(path, &serde_json::to_string_pretty(self)?).with_context(|| format!("writing {}", path.display()))
    }

    pub fn registry(&self) -> Result<Registry> {
        Registry::new(&self.registry, self.fingerprint.as_deref())
    }
}

/// The registry answered, and said no: retrying the same request will not help.
#[derive(Debug, thiserror::Error)]
#[error("registry {url} answered {status}: {why}")]
pub struct Refused {
    pub url: String,
    pub status: reqwest::StatusCode,
    pub why: String,
}

/// The answer when the registry accepted the request; otherwise a [`Refused`] in the
/// registry's own words (`{"error", "message"}`), or its body.
fn accepted(url: &str, r: reqwest::blocking::Response) -> Result<reqwest::blocking::Response> {
    let status = r.status();
    if status.is_success() {
        return Ok(r);
    }
    let text = r.text().unwrap_or_default();
    let why = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["message"].as_str().map(String::from)).unwrap_or(text);
    Err(Refused { url: url.to_string(), status, why }.into())
}

/// An HTTP client (rustls) whose reads give up after `timeout` without data; with a
/// fingerprint (`sha256:HEX`) it trusts exactly that certificate and nothing else.
pub fn http_client(fingerprint: Option<&str>, timeout: Duration) -> Result<reqwest::blocking::Client> {
    let mut b = reqwest::blocking::Client::builder().timeout(timeout).connect_timeout(Duration::from_secs(5));
    if let Some(fp) = fingerprint {
        let pin = parse_fingerprint(fp)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS setup")?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { pin, provider }))
            .with_no_client_auth();
        b = b.use_preconfigured_tls(config);
    }
    b.build().context("HTTP client setup")
}

impl Registry {
    pub fn new(url: &str, fingerprint: Option<&str>) -> Result<Registry> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            bail!("--registry {url}: expected an http:// or https:// URL");
        }
        Ok(Registry { base, http: http_client(fingerprint, Duration::from_secs(20))? })
    }

    pub fn enroll(&self, token: &str, inventory: &Value) -> Result<Enrolled> {
        let url = format!("{}/v1/enroll", self.base);
        // no token: a PXE node, which the registry finds by its MACs and checks by its binding
        let body = if token.is_empty() { json!({ "inventory": inventory }) } else { json!({ "token": token, "inventory": inventory }) };
        let r = self.http.post(&url).json(&body).send().with_context(|| format!("enrolling at {url}"))?;
        let r = accepted(&url, r)?;
        let v: Value = r.json().with_context(|| format!("reading the answer of {url}"))?;
        let field = |k: &str| v[k].as_str().map(String::from).ok_or_else(|| anyhow!("registry {url}: the answer has no {k}"));
        Ok(Enrolled { hostname: field("hostname")?, secret: field("secret")?, profile: field("profile")? })
    }

    /// The node's own profile, as TOML text.
    pub fn profile(&self, node: &Enrolled) -> Result<String> {
        let url = format!("{}/v1/profile", self.base);
        let r = self.http.get(&url).bearer_auth(node.bearer()).send().with_context(|| format!("fetching the profile from {url}"))?;
        let r = accepted(&url, r)?;
        r.text().with_context(|| format!("reading the profile from {url}"))
    }

    /// The hardware spec the node's profile names, as TOML text.
    pub fn spec(&self, node: &Enrolled) -> Result<String> {
        let url = format!("{}/v1/spec", self.base);
        let r = self.http.get(&url).bearer_auth(node.bearer()).send().with_context(|| format!("fetching the hardware spec from {url}"))?;
        accepted(&url, r)?.text().with_context(|| format!("reading the hardware spec from {url}"))
    }

    /// The cluster's root SSH key (OpenSSH private key text).
    pub fn cluster_key(&self, node: &Enrolled) -> Result<String> {
        let url = format!("{}/v1/cluster-key", self.base);
        let r = self.http.get(&url).bearer_auth(node.bearer()).send().with_context(|| format!("fetching the cluster's root key from {url}"))?;
        accepted(&url, r)?.text().with_context(|| format!("reading the cluster's root key from {url}"))
    }

    /// The node's cluster as the registry knows it (members with state, id, first-boot report).
    pub fn cluster(&self, node: &Enrolled) -> Result<Value> {
        let url = format!("{}/v1/cluster", self.base);
        let r = self.http.get(&url).bearer_auth(node.bearer()).send().with_context(|| format!("fetching the cluster view from {url}"))?;
        accepted(&url, r)?.json().with_context(|| format!("reading the cluster view from {url}"))
    }

    /// The first boot's report (`phase`: booted, cluster-created, ready or failed).
    pub fn boot(&self, node: &Enrolled, report: &Value) -> Result<()> {
        let url = format!("{}/v1/boot", self.base);
        let r = self.http.post(&url).bearer_auth(node.bearer()).json(report).send().with_context(|| format!("sending the first-boot report to {url}"))?;
        accepted(&url, r)?;
        Ok(())
    }

    pub fn report(&self, node: &Enrolled, report: &Value) -> Result<()> {
        let url = format!("{}/v1/report", self.base);
        let r = self.http.post(&url).bearer_auth(node.bearer()).json(report).send().with_context(|| format!("sending the report to {url}"))?;
        accepted(&url, r)?;
        Ok(())
    }

    /// `keel disk replace` finished on the node: the registry records `disk-replaced`.
    pub fn disk_replaced(&self, node: &Enrolled, event: &Value) -> Result<()> {
        let url = format!("{}/v1/disk-replaced", self.base);
        let r = self.http.post(&url).bearer_auth(node.bearer()).json(event).send().with_context(|| format!("sending disk-replaced to {url}"))?;
        accepted(&url, r)?;
        Ok(())
    }

    /// Delivers spooled events for `node`.
    pub fn events<'a>(&'a self, node: &'a Enrolled) -> Events<'a> {
        Events { reg: self, node }
    }
}

pub struct Events<'a> {
    reg: &'a Registry,
    node: &'a Enrolled,
}

impl Deliver for Events<'_> {
    fn deliver(&mut self, events: &[Value]) -> Result<(), String> {
        let url = format!("{}/v1/events", self.reg.base);
        let r = self.reg.http.post(&url).bearer_auth(self.node.bearer()).json(&json!({ "events": events })).send().map_err(|e| format!("{url}: {e}"))?;
        accepted(&url, r).map(drop).map_err(|e| e.to_string())
    }
}

fn parse_fingerprint(fp: &str) -> Result<[u8; 32]> {
    let hex_part = fp.strip_prefix("sha256:").ok_or_else(|| anyhow!("--registry-fingerprint {fp}: expected sha256:HEX (64 hex digits, colons allowed)"))?;
    let digits: String = hex_part.chars().filter(|c| *c != ':').collect();
    let bytes = (0..digits.len())
        .step_by(2)
        .map(|i| digits.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| anyhow!("--registry-fingerprint {fp}: expected 64 hex digits after sha256:"))?;
    let mut out = [0u8; 32];
    out.copy_from_slice(&bytes);
    Ok(out)
}

/// Accepts exactly the certificate whose SHA-256 is pinned; signatures are still checked.
#[derive(Debug)]
struct Pinned {
    pin: [u8; 32],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if got == self.pin {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            let hexed: Vec<String> = got.iter().map(|b| format!("{b:02x}")).collect();
            Err(rustls::Error::General(format!("the registry's certificate has fingerprint sha256:{}, not the pinned one", hexed.join(""))))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use keel_installer::exec::spool::Spool;
    use keel_registry::{router, secret, store::NewNode, AppState, Store};

    /// A registry on `port`, in its own runtime thread; returns its store.
    pub(crate) fn start_registry(port: u16, db: &std::path::Path) -> Store {
        let (tx, rx) = std::sync::mpsc::channel();
        let db = format!("sqlite:{}", db.display());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let store = Store::open(&db).await.unwrap();
                let state = Arc::new(AppState::new(store.clone(), "admin-token-for-the-agent-tests-0123456789"));
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
                tx.send(store).unwrap();
                axum::serve(listener, router(state)).await.unwrap();
            });
        });
        rx.recv().unwrap()
    }

    pub(crate) fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// The registry is down while the install runs; it comes up later: every event arrives
    /// once, in order, and the report after them.
    #[test]
    fn events_spooled_while_the_registry_is_down_arrive_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let reg = Registry::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
        let mut spool = Spool::open(&dir.path().join("spool")).unwrap();
        let inventory = json!({ "nics": [{ "mac": "52:54:00:a4:41:01" }], "dmi": { "product_serial": "LAB-1" } });
        let err = reg.enroll("whatever", &inventory).unwrap_err().to_string();
        assert!(err.contains(&format!("enrolling at http://127.0.0.1:{port}/v1/enroll")), "{err}");
        for i in 0..40 {
            spool.push(json!({ "event": if i % 2 == 0 { "start" } else { "done" }, "step": format!("step-{}", i / 2), "journal_seq": i + 1 })).unwrap();
        }
        let store = start_registry(port, &dir.path().join("registry.db"));
        let profile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles/lab-node-01.toml")).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let token = secret::generate();
        rt.block_on(async {
            store.put_document("profile", "lab-node-01", &profile, "x").await.unwrap();
            let node = NewNode { hostname: "lab-node-01".into(), profile: "lab-node-01".into(), mac: Some("52:54:00:a4:41:01".into()), dmi_serial: None, disk_serials: vec![], pxe: false };
            store.arm_node(&node, Some(&secret::hash(&token)), keel_registry::store::now() + 600).await.unwrap();
        });
        let node = reg.enroll(&token, &inventory).unwrap();
        assert_eq!(node.hostname, "lab-node-01");
        assert_eq!(reg.profile(&node).unwrap(), profile);
        let again = reg.enroll(&token, &inventory).unwrap_err().to_string();
        assert!(again.contains("409") && again.contains("single-use"), "{again}");
        let all = spool.pending(100).unwrap();
        assert_eq!(spool.flush(&mut reg.events(&node), 7).unwrap(), (40, None));
        assert!(spool.pending(100).unwrap().is_empty());
        // a resend of everything (as after a lost cursor) stores nothing twice
        reg.events(&node).deliver(&all).unwrap();
        let events = rt.block_on(store.events("lab-node-01", 0, 1000)).unwrap();
        let seqs: Vec<i64> = events.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
        let journal_seqs: Vec<i64> = events.iter().map(|(_, b)| serde_json::from_str::<Value>(b).unwrap()["journal_seq"].as_i64().unwrap()).collect();
        assert_eq!(journal_seqs, (1..=40).collect::<Vec<_>>(), "in the order they happened");
        reg.report(&node, &json!({ "result": "ok" })).unwrap();
        let n = rt.block_on(store.node("lab-node-01")).unwrap().unwrap();
        assert_eq!((n.state.as_str(), n.events), ("installed", 40));
        // later, `keel disk replace` on the node: one event after the install's, sent twice
        // (a retry) and stored once; the node's state stays
        let replaced = json!({ "old_serial": "LABNVME0002", "new_serial": "LABNVME0003", "survivor_serial": "LABNVME0001", "started_at": "2026-12-01T21:00:00.000Z", "seconds": 300.5 });
        reg.disk_replaced(&node, &replaced).unwrap();
        reg.disk_replaced(&node, &replaced).unwrap();
        let events = rt.block_on(store.events("lab-node-01", 40, 1000)).unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        let body: Value = serde_json::from_str(&events[0].1).unwrap();
        assert_eq!((events[0].0, body["event"].as_str(), body["old_serial"].as_str(), body["new_serial"].as_str()), (41, Some("disk-replaced"), Some("LABNVME0002"), Some("LABNVME0003")));
        let n = rt.block_on(store.node("lab-node-01")).unwrap().unwrap();
        assert_eq!((n.state.as_str(), n.events), ("installed", 41));
        let bad = reg.disk_replaced(&node, &json!({ "new_serial": "", "survivor_serial": "A", "started_at": "x", "seconds": 1 })).unwrap_err().to_string();
        assert!(bad.contains("400"), "{bad}");
        // a wrong secret is refused with the registry's own words
        let forged = Enrolled { secret: "0".repeat(64), ..node };
        let err = reg.profile(&forged).unwrap_err().to_string();
        assert!(err.contains("401") && err.contains("wrong node secret"), "{err}");
    }

    #[test]
    fn fingerprints_must_be_sha256_with_64_hex_digits() {
        assert!(parse_fingerprint(&format!("sha256:{}", "ab".repeat(32))).is_ok());
        assert!(parse_fingerprint(&format!("sha256:{}", vec!["AB"; 32].join(":"))).is_ok());
        for bad in ["ab".repeat(32), format!("sha256:{}", "ab".repeat(31)), format!("md5:{}", "ab".repeat(32)), "sha256:zz".into()] {
            assert!(parse_fingerprint(&bad).is_err(), "{bad}");
        }
        assert!(Registry::new("ftp://x", None).is_err());
    }
}

/// Enrolls (unless `creds` hold an enrollment already), then fetches the node's profile and its
/// hardware spec into `dir` (`profiles/NAME.toml`, `hardware-specs/SPEC.toml`), so that the
/// profile loads like one given with --profile. Waits for an unreachable registry (with
/// backoff) for at most `wait`; a refusal (wrong token, unknown node, ...) ends at once.
pub fn fetch_profile(creds: &mut Credentials, creds_path: &std::path::Path, inventory: &Value, dir: &std::path::Path, wait: Duration) -> Result<std::path::PathBuf> {
    let reg = creds.registry()?;
    let deadline = std::time::Instant::now() + wait;
    let mut backoff = Duration::from_secs(1);
    loop {
        match fetch_once(&reg, creds, creds_path, inventory, dir) {
            Ok(p) => return Ok(p),
            Err(e) if e.downcast_ref::<Refused>().is_some() => return Err(e),
            Err(e) if std::time::Instant::now() + backoff > deadline => {
                return Err(e.context(format!("the registry {} did not answer within {} s (--registry-wait)", creds.registry, wait.as_secs())))
            }
            Err(e) => {
                eprintln!("registry: {e:#}; trying again in {} s", backoff.as_secs());
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

fn fetch_once(reg: &Registry, creds: &mut Credentials, creds_path: &std::path::Path, inventory: &Value, dir: &std::path::Path) -> Result<std::path::PathBuf> {
    use keel_installer::source::SourceFile;
    if creds.enrollment.is_none() {
        creds.enrollment = Some(reg.enroll(&creds.token, inventory)?);
        creds.save(creds_path)?;
    }
    let node = creds.enrollment.clone().expect("enrolled above");
    let text = reg.profile(&node)?;
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles).with_context(|| format!("creating {}", profiles.display()))?;
    let path = profiles.join(format!("{}.toml", node.profile));
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    let loaded = keel_installer::profile::Profile::from_source(&SourceFile::from_text(path.display().to_string(), text.as_str()))
        .map_err(|e| anyhow!("the profile the registry gave ({}) does not load: {e}", path.display()))?;
    let p = loaded.profile;
    if let Some(spec) = &p.hardware_spec {
        let specs = dir.join("hardware-specs");
        std::fs::create_dir_all(&specs).with_context(|| format!("creating {}", specs.display()))?;
        let spec_path = specs.join(format!("{spec}.toml"));
        std::fs::write(&spec_path, reg.spec(&node)?).with_context(|| format!("writing {}", spec_path.display()))?;
    }
    Ok(path)
}

/// Where the registry link comes from when no flag names it: `keel.registry=URL
/// [keel.token=T] [keel.fingerprint=sha256:HEX]` on the kernel command line. The registry's
/// iPXE script puts no token there: a PXE node enrolls by its hardware (the token is then "").
pub fn from_cmdline(cmdline: &str) -> Option<(String, String, Option<String>)> {
    let get = |k: &str| cmdline.split_whitespace().find_map(|w| w.strip_prefix(k)).filter(|v| !v.is_empty()).map(String::from);
    Some((get("keel.registry=")?, get("keel.token=").unwrap_or_default(), get("keel.fingerprint=")))
}

/// Streams events to the registry from a background thread, through the spool, so the install
/// never waits on the registry: enrollment (saved beside the spool, since the token works
/// once) and delivery are retried with backoff until `finish`.
pub struct Uplink {
    tx: Option<std::sync::mpsc::Sender<Value>>,
    thread: Option<std::thread::JoinHandle<UplinkEnd>>,
    /// Set by `finish`: until when to keep trying, and the final report to send last.
    finish_by: Arc<std::sync::Mutex<Option<(std::time::Instant, Option<Value>)>>>,
}

/// How the uplink ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UplinkEnd {
    pub enrolled: Option<String>,
    pub delivered: u64,
    pub waiting: u64,
    pub reported: bool,
    pub last_error: Option<String>,
}

impl Uplink {
    /// Starts delivering: enrolls with the token in `creds` unless they hold an enrollment
    /// already, saving it to `creds_path` (0600) as soon as it is made.
    pub fn start(reg: Registry, mut creds: Credentials, creds_path: std::path::PathBuf, inventory: Value, spool_dir: std::path::PathBuf) -> Result<Uplink> {
        let mut spool = keel_installer::exec::spool::Spool::open(&spool_dir)?;
        let (tx, rx) = std::sync::mpsc::channel::<Value>();
        let finish_by = Arc::new(std::sync::Mutex::new(None::<(std::time::Instant, Option<Value>)>));
        let deadline = finish_by.clone();
        let thread = std::thread::spawn(move || {
            let mut node: Option<Enrolled> = creds.enrollment.clone();
            let (mut delivered, mut last_error, mut backoff, mut closed) = (0, None, Duration::from_millis(200), false);
            let mut next_try = std::time::Instant::now();
            loop {
                match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(ev) => {
                        if let Err(e) = spool.push(ev) {
                            last_error = Some(e.to_string());
                        }
                        while let Ok(ev) = rx.try_recv() {
                            let _ = spool.push(ev);
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => closed = true,
                }
                let due = std::time::Instant::now() >= next_try;
                if due && (spool.backlog() > 0 || node.is_none()) {
                    if node.is_none() {
                        match reg.enroll(&creds.token, &inventory) {
                            Ok(n) => {
                                creds.enrollment = Some(n.clone());
                                if let Err(e) = creds.save(&creds_path) {
                                    last_error = Some(format!("{e:#}"));
                                }
                                node = Some(n);
                            }
                            Err(e) => last_error = Some(format!("{e:#}")),
                        }
                    }
                    if let Some(n) = &node {
                        match spool.flush(&mut reg.events(n), 100) {
                            Ok((sent, None)) => {
                                delivered += sent;
                                backoff = Duration::from_millis(200);
                            }
                            Ok((sent, Some(why))) => {
                                delivered += sent;
                                last_error = Some(why);
                            }
                            Err(e) => last_error = Some(e.to_string()),
                        }
                    }
                    if spool.backlog() > 0 || node.is_none() {
                        next_try = std::time::Instant::now() + backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
                let done = spool.backlog() == 0 && node.is_some();
                let (past, report) = match deadline.lock() {
                    Ok(d) => (d.as_ref().is_some_and(|(t, _)| std::time::Instant::now() >= *t), d.as_ref().and_then(|(_, r)| r.clone())),
                    Err(_) => (true, None),
                };
                let mut reported = false;
                if closed && done {
                    // the report goes last, after every event
                    match (&report, &node) {
                        (Some(r), Some(n)) if due || past => match reg.report(n, r) {
                            Ok(()) => reported = true,
                            Err(e) => {
                                last_error = Some(format!("{e:#}"));
                                next_try = std::time::Instant::now() + backoff;
                                backoff = (backoff * 2).min(Duration::from_secs(30));
                            }
                        },
                        (None, _) => reported = true,
                        _ => {}
                    }
                }
                if closed && ((done && reported) || past) {
                    if done && reported {
                        last_error = None;
                    }
                    let reported = reported && report.is_some();
                    return UplinkEnd { enrolled: node.map(|n| n.hostname), delivered, waiting: spool.backlog(), reported, last_error };
                }
            }
        });
        Ok(Uplink { tx: Some(tx), thread: Some(thread), finish_by })
    }

    /// Queues an event (never blocks on the network).
    pub fn send(&self, event: Value) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(event);
        }
    }

    /// Stops taking events, keeps delivering for at most `grace`, then sends `report`; what
    /// is left stays in the spool for a later run.
    pub fn finish(mut self, grace: Duration, report: Option<Value>) -> UplinkEnd {
        if let Ok(mut d) = self.finish_by.lock() {
            *d = Some((std::time::Instant::now() + grace, report));
        }
        self.tx.take();
        self.thread.take().map(|t| t.join().unwrap_or(UplinkEnd { enrolled: None, delivered: 0, waiting: 0, reported: false, last_error: Some("the uplink thread panicked".into()) })).expect("started")
    }
}

fn write_private(path: &std::path::Path, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    std::io::Write::write_all(&mut f, bytes.as_ref())?;
    f.sync_all()
}

#[cfg(test)]
mod uplink_tests {
    use super::*;

    /// The install streams while the registry is down, the registry comes up mid-way: the
    /// uplink enrolls then, and every event arrives once, in order; the install never waited.
    #[test]
    fn the_uplink_enrolls_late_and_delivers_everything_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let port = tests::free_port();
        let reg = Registry::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
        let inventory = json!({ "nics": [{ "mac": "52:54:00:a4:41:01" }], "dmi": { "product_serial": "LAB-1" } });
        let token = keel_registry::secret::generate();
        let creds_path = dir.path().join("registry.json");
        let creds = Credentials::load_or_new(&creds_path, &format!("http://127.0.0.1:{port}"), None, &token);
        let up = Uplink::start(reg, creds, creds_path.clone(), inventory, dir.path().join("spool")).unwrap();
        let t = std::time::Instant::now();
        for i in 1..=30 {
            up.send(json!({ "event": "start", "step": format!("s{i}"), "journal_seq": i }));
        }
        assert!(t.elapsed() < Duration::from_millis(200), "sending never waits on the registry");
        std::thread::sleep(Duration::from_millis(500));
        let store = tests::start_registry(port, &dir.path().join("registry.db"));
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let profile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles/lab-node-01.toml")).unwrap();
            store.put_document("profile", "lab-node-01", &profile, "x").await.unwrap();
            let node = keel_registry::store::NewNode { hostname: "lab-node-01".into(), profile: "lab-node-01".into(), mac: Some("52:54:00:a4:41:01".into()), dmi_serial: None, disk_serials: vec![], pxe: false };
            store.arm_node(&node, Some(&keel_registry::secret::hash(&token)), keel_registry::store::now() + 600).await.unwrap();
        });
        for i in 31..=40 {
            up.send(json!({ "event": "done", "step": format!("s{i}"), "journal_seq": i }));
        }
        let end = up.finish(Duration::from_secs(60), Some(json!({ "result": "ok", "step_seconds": { "s1": 1.5 } })));
        assert_eq!(end, UplinkEnd { enrolled: Some("lab-node-01".into()), delivered: 40, waiting: 0, reported: true, last_error: None });
        let report = rt.block_on(store.report("lab-node-01")).unwrap().unwrap();
        assert!(report.contains("\"step_seconds\""), "{report}");
        let events = rt.block_on(store.events("lab-node-01", 0, 1000)).unwrap();
        let order: Vec<i64> = events.iter().map(|(_, b)| serde_json::from_str::<Value>(b).unwrap()["journal_seq"].as_i64().unwrap()).collect();
        assert_eq!(order, (1..=40).collect::<Vec<_>>());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&creds_path).unwrap().permissions().mode() & 0o777, 0o600);
        // a resumed install with the same registry and token finds the enrollment; another token starts over
        let again = Credentials::load_or_new(&creds_path, &format!("http://127.0.0.1:{port}"), None, &token);
        assert_eq!(again.enrollment.as_ref().map(|e| e.hostname.as_str()), Some("lab-node-01"));
        assert_eq!(Credentials::load_or_new(&creds_path, &format!("http://127.0.0.1:{port}"), None, "another").enrollment, None);
    }

    /// Registry never comes: finish gives up after the grace time, everything stays spooled.
    #[test]
    fn without_a_registry_the_events_stay_in_the_spool() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::new(&format!("http://127.0.0.1:{}", tests::free_port()), None).unwrap();
        let creds = Credentials::load_or_new(&dir.path().join("registry.json"), "http://127.0.0.1:1", None, "t");
        let up = Uplink::start(reg, creds, dir.path().join("registry.json"), json!({}), dir.path().join("spool")).unwrap();
        for i in 1..=5 {
            up.send(json!({ "event": "start", "journal_seq": i }));
        }
        let end = up.finish(Duration::from_millis(300), Some(json!({ "result": "ok" })));
        assert_eq!((end.enrolled, end.delivered, end.waiting, end.reported), (None, 0, 5, false));
        assert!(end.last_error.unwrap().contains("enrolling at"));
        assert_eq!(keel_installer::exec::spool::Spool::open(&dir.path().join("spool")).unwrap().backlog(), 5);
    }
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    /// A registry serving HTTPS with a self-signed certificate: the pinned fingerprint lets
    /// keel in; another fingerprint, or no pin (the certificate is not from a known CA), does not.
    #[test]
    fn a_pinned_certificate_is_trusted_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
        let pin = keel_registry::tls::fingerprint(cert.cert.pem().as_bytes()).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let db = dir.path().join("registry.db");
        let (cp, kp) = (cert_path.clone(), key_path.clone());
        let (ready_tx, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let store = keel_registry::Store::open(&format!("sqlite:{}", db.display())).await.unwrap();
                let state = Arc::new(keel_registry::AppState::new(store, "x"));
                ready_tx.send(()).unwrap();
                keel_registry::tls::serve(listener, keel_registry::router(state), &cp, &kp).await.unwrap();
            });
        });
        ready.recv().unwrap();
        let url = format!("https://127.0.0.1:{port}");
        let inv = json!({});
        // pinned: the TLS handshake passes and the registry answers (an unknown token: 401)
        let err = Registry::new(&url, Some(&pin)).unwrap().enroll("nope", &inv).unwrap_err().to_string();
        assert!(err.contains("401") && err.contains("enrollment token"), "{err}");
        // another pin: refused in the handshake, saying why
        let other = format!("sha256:{}", "00".repeat(32));
        let err = format!("{:#}", Registry::new(&url, Some(&other)).unwrap().enroll("nope", &inv).unwrap_err());
        assert!(err.contains("not the pinned one") && err.contains(&pin), "{err}");
        // no pin: a self-signed certificate is not trusted (refused in the handshake, so the
        // registry never answered; not "401", which the port number itself can contain)
        let err = format!("{:#}", Registry::new(&url, None).unwrap().enroll("nope", &inv).unwrap_err());
        assert!(err.contains("invalid peer certificate") && !err.contains("enrollment token"), "{err}");
    }
}

#[cfg(test)]
mod fetch_tests {
    use super::*;
    use keel_registry::{secret, store::NewNode};

    fn ws(path: &str) -> String {
        format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))
    }

    /// A registry holding lab-node-02's profile and the qemu-lab spec;
    /// lab-node-02 armed with a token. Returns (url, token, store).
    fn lab_registry(dir: &std::path::Path) -> (String, String, keel_registry::Store) {
        let port = tests::free_port();
        let store = tests::start_registry(port, &dir.join("registry.db"));
        let token = secret::generate();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            store.put_document("profile", "lab-node-02", &std::fs::read_to_string(ws("profiles/lab-node-02.toml")).unwrap(), "x").await.unwrap();
            store.put_document("spec", "qemu-lab", &std::fs::read_to_string(ws("hardware-specs/qemu-lab.toml")).unwrap(), "x").await.unwrap();
            let node = NewNode { hostname: "lab-node-02".into(), profile: "lab-node-02".into(), mac: Some("52:54:00:a4:41:02".into()), dmi_serial: None, disk_serials: vec![], pxe: false };
            store.arm_node(&node, Some(&secret::hash(&token)), keel_registry::store::now() + 600).await.unwrap();
        });
        (format!("http://127.0.0.1:{port}"), token, store)
    }

    /// Without --profile: enroll, fetch profile + spec; the result loads exactly like the
    /// repository's profile, and a second fetch needs no new token.
    #[test]
    fn the_profile_comes_from_the_registry_with_its_spec() {
        let dir = tempfile::tempdir().unwrap();
        let (url, token, _store) = lab_registry(dir.path());
        let creds_path = dir.path().join("keel/registry.json");
        let mut creds = Credentials::load_or_new(&creds_path, &url, None, &token);
        let inv = json!({ "nics": [{ "mac": "52:54:00:A4:41:02" }] });
        let out = dir.path().join("keel/from-registry");
        let p = fetch_profile(&mut creds, &creds_path, &inv, &out, Duration::from_secs(5)).unwrap();
        assert_eq!(p, out.join("profiles/lab-node-02.toml"));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), std::fs::read_to_string(ws("profiles/lab-node-02.toml")).unwrap());
        assert_eq!(std::fs::read_to_string(out.join("hardware-specs/qemu-lab.toml")).unwrap(), std::fs::read_to_string(ws("hardware-specs/qemu-lab.toml")).unwrap());
        let loaded = keel_installer::profile::Profile::load(&p).unwrap();
        assert_eq!(loaded.profile.node.hostname, "lab-node-02");
        // the token is spent; the saved enrollment still fetches (a resumed install)
        let mut again = Credentials::load_or_new(&creds_path, &url, None, &token);
        assert!(again.enrollment.is_some());
        fetch_profile(&mut again, &creds_path, &inv, &out, Duration::from_secs(5)).unwrap();
        // the spent token again (another machine trying it): refused at once
        let mut other = Credentials::load_or_new(&dir.path().join("other.json"), &url, None, &token);
        let t = std::time::Instant::now();
        let err = format!("{:#}", fetch_profile(&mut other, &dir.path().join("other.json"), &inv, &dir.path().join("o"), Duration::from_secs(60)).unwrap_err());
        assert!(err.contains("409") && err.contains("single-use"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(5), "a refusal is not retried");
    }

    /// A PXE boot: no token on the command line; keel enrolls with its inventory alone, and
    /// the registry takes it for the armed node only when the drives its profile pins are
    /// there (a machine with the MAC but other drives is refused, and told nothing).
    #[test]
    fn a_pxe_node_enrolls_without_a_token_by_its_drives() {
        let dir = tempfile::tempdir().unwrap();
        let (url, _token, store) = lab_registry(dir.path());
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let pinned = std::fs::read_to_string(ws("profiles/lab-node-02.toml")).unwrap().replacen("serials = []", "serials = [\"LABNVME0001\", \"LABNVME0002\"]", 1);
            store.put_document("profile", "lab-node-02", &pinned, "x").await.unwrap();
            let node = NewNode { hostname: "lab-node-02".into(), profile: "lab-node-02".into(), mac: Some("52:54:00:a4:41:02".into()), dmi_serial: None, disk_serials: vec!["LABNVME0001".into(), "LABNVME0002".into()], pxe: true };
            store.arm_node(&node, None, keel_registry::store::now() + 600).await.unwrap();
        });
        let (reg_url, token, _) = from_cmdline(&format!("initrd=initrd.img keel.registry={url} BOOTIF=01-52-54-00-a4-41-02")).unwrap();
        assert_eq!(token, "");
        let reg = Registry::new(&reg_url, None).unwrap();
        let disks = |a: &str, b: &str| json!({ "nics": [{ "mac": "52:54:00:A4:41:02" }], "disks": [{ "serial": a }, { "serial": b }] });
        let err = format!("{:#}", reg.enroll(&token, &disks("LABNVME0001", "OTHER")).unwrap_err());
        assert!(err.contains("403") && !err.contains("LABNVME") && !err.contains("lab-node-02"), "{err}");
        let node = reg.enroll(&token, &disks("LABNVME0002", "LABNVME0001")).unwrap();
        assert_eq!((node.hostname.as_str(), node.profile.as_str()), ("lab-node-02", "lab-node-02"));
        assert!(reg.profile(&node).unwrap().contains("LABNVME0001"));
    }

    #[test]
    fn an_unreachable_registry_is_waited_for_then_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{}", tests::free_port());
        let mut creds = Credentials::load_or_new(&dir.path().join("r.json"), &url, None, "t");
        let err = format!("{:#}", fetch_profile(&mut creds, &dir.path().join("r.json"), &json!({}), dir.path(), Duration::from_secs(2)).unwrap_err());
        assert!(err.contains("did not answer within 2 s (--registry-wait)") && err.contains("enrolling at"), "{err}");
    }

    #[test]
    fn the_kernel_command_line_names_the_registry() {
        let line = "BOOT_IMAGE=/vmlinuz ip=dhcp keel.registry=https://reg:8443 keel.token=abc123 keel.fingerprint=sha256:00ff quiet\n";
        assert_eq!(from_cmdline(line), Some(("https://reg:8443".into(), "abc123".into(), Some("sha256:00ff".into()))));
        assert_eq!(from_cmdline("keel.registry=http://r keel.token=t"), Some(("http://r".into(), "t".into(), None)));
        assert_eq!(from_cmdline("keel.registry=http://r"), Some(("http://r".into(), String::new(), None)), "no token: a PXE enrollment by the hardware");
        assert_eq!(from_cmdline("keel.registry= keel.token=t"), None);
        assert_eq!(from_cmdline("BOOT_IMAGE=/vmlinuz quiet"), None);
    }
}
