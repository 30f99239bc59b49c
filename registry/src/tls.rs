//! HTTPS for the registry: rustls (ring) with the operator's certificate and key (PEM).
//! Nodes pin the certificate by its SHA-256 (`keel install --registry-fingerprint`), which
//! `fingerprint` prints for a given certificate file.

use std::path::Path;

use anyhow::{Context, Result};
use axum_server::tls_rustls::RustlsConfig;

/// The SHA-256 of the first certificate in a PEM file, as `sha256:HEX`.
pub fn fingerprint(cert_pem: &[u8]) -> Result<String> {
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::pem_slice_iter(cert_pem)
        .next()
        .context("no CERTIFICATE block in the PEM file")?
        .context("the CERTIFICATE block is damaged")?;
    Ok(format!("sha256:{}", crate::secret::sha256_hex(der.as_ref())))
}

/// The server's TLS settings from the operator's certificate and key (PEM).
pub async fn config(cert: &Path, key: &Path) -> std::io::Result<RustlsConfig> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    RustlsConfig::from_pem_file(cert, key).await
}

/// Serves `app` over HTTPS on `listener` with the default connection limits, until the process
/// ends (`keel-registry serve` itself goes through `server::serve`).
pub async fn serve(listener: std::net::TcpListener, app: axum::Router, cert: &Path, key: &Path) -> Result<()> {
    let tls = config(cert, key).await.with_context(|| format!("loading the TLS certificate {} and key {}", cert.display(), key.display()))?;
    crate::server::serve(listener, app, crate::server::Limits::default(), Some(tls), axum_server::Handle::new()).await?;
    Ok(())
}
