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
#[derive(Debug, Clone)]
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

/// The registry's own words for a refused request (`{"error", "message"}`), or the body.
fn refusal(url: &str, r: reqwest::blocking::Response) -> anyhow::Error {
    let status = r.status();
    let text = r.text().unwrap_or_default();
    let why = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["message"].as_str().map(String::from)).unwrap_or(text);
    anyhow!("registry {url} answered {status}: {why}")
}

impl Registry {
    pub fn new(url: &str, fingerprint: Option<&str>) -> Result<Registry> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            bail!("--registry {url}: expected an http:// or https:// URL");
        }
        let mut b = reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).connect_timeout(Duration::from_secs(5));
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
        Ok(Registry { base, http: b.build().context("HTTP client setup")? })
    }

    pub fn enroll(&self, token: &str, inventory: &Value) -> Result<Enrolled> {
        let url = format!("{}/v1/enroll", self.base);
        let r = self.http.post(&url).json(&json!({ "token": token, "inventory": inventory })).send().with_context(|| format!("enrolling at {url}"))?;
        if !r.status().is_success() {
            return Err(refusal(&url, r));
        }
        let v: Value = r.json().with_context(|| format!("reading the answer of {url}"))?;
        let field = |k: &str| v[k].as_str().map(String::from).ok_or_else(|| anyhow!("registry {url}: the answer has no {k}"));
        Ok(Enrolled { hostname: field("hostname")?, secret: field("secret")?, profile: field("profile")? })
    }

    /// The node's own profile, as TOML text.
    pub fn profile(&self, node: &Enrolled) -> Result<String> {
        let url = format!("{}/v1/profile", self.base);
        let r = self.http.get(&url).bearer_auth(node.bearer()).send().with_context(|| format!("fetching the profile from {url}"))?;
        if !r.status().is_success() {
            return Err(refusal(&url, r));
        }
        r.text().with_context(|| format!("reading the profile from {url}"))
    }

    pub fn report(&self, node: &Enrolled, report: &Value) -> Result<()> {
        let url = format!("{}/v1/report", self.base);
        let r = self.http.post(&url).bearer_auth(node.bearer()).json(report).send().with_context(|| format!("sending the report to {url}"))?;
        if !r.status().is_success() {
            return Err(refusal(&url, r));
        }
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
        if r.status().is_success() {
            Ok(())
        } else {
            Err(refusal(&url, r).to_string())
        }
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
