//! HTTPS for the registry: rustls (ring) with the operator's certificate and key (PEM).
//! Nodes pin the certificate by its SHA-256 (`keel install --registry-fingerprint`), which
//! `fingerprint` prints for a given certificate file.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use axum::Router;
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

/// Serves `app` over HTTPS on `listener` until the process ends.
pub async fn serve(listener: std::net::TcpListener, app: Router, cert: &Path, key: &Path) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = RustlsConfig::from_pem_file(cert, key).await.with_context(|| format!("loading the TLS certificate {} and key {}", cert.display(), key.display()))?;
    listener.set_nonblocking(true)?;
    axum_server::from_tcp_rustls(listener, config).serve(app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
