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
    /// Open connections at most; one more is closed at once [default: 512]. Keep it below the
    /// open-file limit (`ulimit -n`).
    #[arg(long, env = "KEEL_REGISTRY_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Open connections from one IP address at most [default: 32].
    #[arg(long, env = "KEEL_REGISTRY_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// Seconds a connection has to send a request head; also how long a kept-alive connection
    /// may stay idle [default: 10].
    #[arg(long, env = "KEEL_REGISTRY_HEADER_TIMEOUT")]
    header_timeout: Option<u64>,
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
            max_connections: self.max_connections.or(file.max_connections),
            max_connections_per_ip: self.max_connections_per_ip.or(file.max_connections_per_ip),
            header_timeout: self.header_timeout.or(file.header_timeout),
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
    let token_ttl = keel_registry::api::check_token_ttl(args.token_ttl.unwrap_or(86400)).map_err(|e| anyhow::anyhow!("--token-ttl: {e}"))?;
    let mut limits = keel_registry::server::Limits::default();
    if let Some(n) = args.max_connections {
        if n == 0 {
            bail!("--max-connections 0: give at least 1");
        }
        limits.max_connections = n;
    }
    if let Some(n) = args.max_connections_per_ip {
        if n == 0 {
            bail!("--max-connections-per-ip 0: give at least 1");
        }
        limits.max_connections_per_ip = n;
    }
    if let Some(s) = args.header_timeout {
        if !(1..=300).contains(&s) {
            bail!("--header-timeout {s}: give 1 to 300 seconds");
        }
        limits.header_read_timeout = std::time::Duration::from_secs(s);
    }
    if let Some(files) = keel_registry::server::open_files_limit() {
        // the database, the listener and the images take some files too
        if limits.max_connections as u64 + 64 > files {
            bail!(
                "--max-connections {} does not fit the open-file limit {files} (ulimit -n) with 64 files left for the database and images: lower it to {} or raise the limit",
                limits.max_connections,
                files.saturating_sub(64)
            );
        }
    }
    let shown_database = keel_registry::store::redact_url(&database);
    let store = Store::open(&database).await?;
    let tls_fingerprint = match &args.tls_cert {
        Some(cert) => Some(keel_registry::tls::fingerprint(&std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?)?),
        None => None,
    };
    let state = Arc::new(AppState {
        tls_fingerprint,
        token_ttl_secs: token_ttl,
        public_url: args.public_url.unwrap_or_else(|| format!("{}://{listen}", if args.tls_cert.is_some() { "https" } else { "http" })),
        boot_kernel: args.boot_kernel,
        boot_initrd: args.boot_initrd,
        boot_args: args.boot_args,
        images_dir: args.images,
        ..AppState::new(store, token)
    });
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            keel_registry::tls::config(cert, key).await.with_context(|| format!("loading the TLS certificate {} and key {}", cert.display(), key.display()))?,
        ),
        _ => None,
    };
    let listener = std::net::TcpListener::bind(&listen).with_context(|| format!("listening on {listen}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let pin = state.tls_fingerprint.as_deref().map(|f| format!("; nodes pin it with --registry-fingerprint {f}")).unwrap_or_default();
    eprintln!(
        "keel-registry: listening on {scheme}://{} ({} database {shown_database}; at most {} connections, {} s to send a request head{pin})",
        listener.local_addr()?,
        state.store.backend,
        limits.max_connections,
        limits.header_read_timeout.as_secs()
    );
    let handle = axum_server::Handle::new();
    let stop = handle.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    keel_registry::server::serve(listener, router(state), limits, tls, handle).await?;
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
