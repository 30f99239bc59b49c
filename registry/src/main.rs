//! `keel-registry serve`: the phone-home registry. Settings come from flags, from environment
//! variables (KEEL_REGISTRY_*), or from a TOML file (`--config`), in that order of precedence.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use keel_registry::{router, AppState, Store};
use serde::Deserialize;

#[derive(Parser)]
#[command(name = "keel-registry", version, about = "keel's phone-home registry: enrollment, profiles, progress, reports, iPXE")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, the iPXE scripts and the status page.
    Serve(ServeArgs),
}

#[derive(clap::Args, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ServeArgs {
    /// A TOML file with any of these settings (listen, database, admin-token-file, ...).
    #[arg(long, env = "KEEL_REGISTRY_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8440].
    #[arg(long, env = "KEEL_REGISTRY_LISTEN")]
    listen: Option<String>,
    /// `sqlite:PATH` (the default: sqlite:keel-registry.db) or `postgres://user:pass@host/db`.
    #[arg(long, env = "KEEL_REGISTRY_DATABASE")]
    database: Option<String>,
    /// File holding the admin token (the bearer token of the /v1/admin endpoints).
    #[arg(long, env = "KEEL_REGISTRY_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// The URL nodes reach the registry at (written into iPXE scripts) [default: http://LISTEN].
    #[arg(long, env = "KEEL_REGISTRY_PUBLIC_URL")]
    public_url: Option<String>,
    /// How long an enrollment token is valid, in seconds [default: 86400].
    #[arg(long, env = "KEEL_REGISTRY_TOKEN_TTL")]
    token_ttl: Option<i64>,
    /// URL of the live system's kernel that iPXE boots.
    #[arg(long, env = "KEEL_REGISTRY_BOOT_KERNEL")]
    boot_kernel: Option<String>,
    /// URL of an initrd iPXE loads for the live system, in order; repeat it (or comma-separate)
    /// for more than one: keel-live's initrd.img, then keel's archive (`keel live-archive`).
    #[arg(long, env = "KEEL_REGISTRY_BOOT_INITRD", value_delimiter = ',')]
    #[serde(default)]
    boot_initrd: Vec<String>,
    /// Kernel arguments the live system needs (appended to the iPXE script's kernel line).
    #[arg(long, env = "KEEL_REGISTRY_BOOT_ARGS", allow_hyphen_values = true)]
    boot_args: Option<String>,
    /// Serve HTTPS with this certificate (PEM); needs --tls-key.
    #[arg(long, env = "KEEL_REGISTRY_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "KEEL_REGISTRY_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve the root images in this folder (`keel image build` output) under /v1/images/.
    #[arg(long, env = "KEEL_REGISTRY_IMAGES")]
    images: Option<PathBuf>,
}

impl ServeArgs {
    /// Flags and environment win over the file.
    fn merged(self) -> Result<ServeArgs> {
        let Some(path) = &self.config else { return Ok(self) };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the config file {}", path.display()))?;
        let file: ServeArgs = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(ServeArgs {
            config: self.config,
            listen: self.listen.or(file.listen),
            database: self.database.or(file.database),
            admin_token_file: self.admin_token_file.or(file.admin_token_file),
            public_url: self.public_url.or(file.public_url),
            token_ttl: self.token_ttl.or(file.token_ttl),
            boot_kernel: self.boot_kernel.or(file.boot_kernel),
            boot_initrd: if self.boot_initrd.is_empty() { file.boot_initrd } else { self.boot_initrd },
            boot_args: self.boot_args.or(file.boot_args),
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            images: self.images.or(file.images),
        })
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let args = args.merged()?;
    let listen = args.listen.unwrap_or_else(|| "127.0.0.1:8440".into());
    let database = args.database.unwrap_or_else(|| "sqlite:keel-registry.db".into());
    let Some(token_file) = args.admin_token_file else {
        bail!("no admin token: give --admin-token-file FILE (or KEEL_REGISTRY_ADMIN_TOKEN_FILE); make one with: openssl rand -hex 32 > FILE");
    };
    let token = std::fs::read_to_string(&token_file).with_context(|| format!("reading the admin token file {}", token_file.display()))?;
    let token = token.trim();
    if token.len() < 32 {
        bail!("the admin token in {} is shorter than 32 characters: make one with openssl rand -hex 32", token_file.display());
    }
    let store = Store::open(&database).await?;
    let tls_fingerprint = match &args.tls_cert {
        Some(cert) => Some(keel_registry::tls::fingerprint(&std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?)?),
        None => None,
    };
    let state = Arc::new(AppState {
        tls_fingerprint,
        token_ttl_secs: args.token_ttl.unwrap_or(86400),
        public_url: args.public_url.unwrap_or_else(|| format!("{}://{listen}", if args.tls_cert.is_some() { "https" } else { "http" })),
        boot_kernel: args.boot_kernel,
        boot_initrd: args.boot_initrd,
        boot_args: args.boot_args,
        images_dir: args.images,
        ..AppState::new(store, token)
    });
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let listener = std::net::TcpListener::bind(&listen).with_context(|| format!("listening on {listen}"))?;
        eprintln!(
            "keel-registry: listening on https://{} ({} database {database}); nodes pin it with --registry-fingerprint {}",
            listener.local_addr()?,
            state.store.backend,
            state.tls_fingerprint.as_deref().unwrap_or("?")
        );
        return keel_registry::tls::serve(listener, router(state), cert, key).await;
    }
    let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("listening on {listen}"))?;
    tracing::info!("keel-registry on http://{} ({} database)", listener.local_addr()?, state.store.backend);
    eprintln!("keel-registry: listening on http://{} ({} database {database})", listener.local_addr()?, state.store.backend);
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::try_from_env("KEEL_REGISTRY_LOG").unwrap_or_else(|_| "warn".into())).init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keel-registry: error: starting the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Serve(a) => serve(a).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keel-registry: error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
