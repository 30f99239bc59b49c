//! The HTTP API, versioned under `/v1` (described in `registry/openapi.yaml`):
//! - admin (bearer admin token): profiles and hardware specs (validated like `keel validate`),
//!   nodes with their enrollment tokens, a node's events and report;
//! - node: `POST /v1/enroll` (token + inventory -> per-node secret), then with
//!   `Authorization: Bearer HOSTNAME:SECRET`: `GET /v1/profile`, `POST /v1/events`, `POST /v1/report`;
//! - `GET /ipxe/{mac}`: the boot script of an armed PXE node, which carries no secret; a PXE
//!   node enrolls without a token, by the hardware the network cannot see (README, "Enrollment
//!   and its threat model").

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use keel_installer::source::SourceFile;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::secret;
use crate::store::{NewEvent, NewNode, Node, Store, StoreError};

/// Largest request body accepted (a batch of events, a report); other endpoints take less.
pub const BODY_LIMIT: usize = 1 << 20;
/// Largest body of an enrollment (the inventory), a first-boot report, a profile or a spec.
pub const SMALL_BODY_LIMIT: usize = 256 << 10;
/// Largest cluster root key upload.
pub const KEY_BODY_LIMIT: usize = 16 << 10;
/// Most events accepted in one request, and the largest single event.
pub const MAX_EVENTS_PER_REQUEST: usize = 1000;
pub const MAX_EVENT_BYTES: usize = 64 << 10;
/// What one install may store: events and bytes of event bodies (an install sends a few hundred
/// events of a few hundred bytes).
pub const EVENT_QUOTA: crate::store::Quota = crate::store::Quota { events: 20_000, bytes: 32 << 20 };
/// Enrollments refused for a hardware mismatch before the token is spent (the PXE window closed).
pub const MAX_REFUSALS: i64 = 3;
/// How long a body may stall between two reads, and a handler take to answer.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
pub const HANDLER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// The range an enrollment token's or a PXE window's lifetime may take, in seconds.
pub const TOKEN_TTL_RANGE: std::ops::RangeInclusive<i64> = 60..=30 * 86400;

/// `--token-ttl` / `ttl_seconds`: checked once, with what to give instead.
pub fn check_token_ttl(secs: i64) -> Result<i64, String> {
    if TOKEN_TTL_RANGE.contains(&secs) {
        Ok(secs)
    } else {
        Err(format!("a token lifetime of {secs} s is outside {}..={} s (1 minute to 30 days)", TOKEN_TTL_RANGE.start(), TOKEN_TTL_RANGE.end()))
    }
}

pub struct AppState {
    pub store: Store,
    /// SHA-256 of the admin token.
    pub admin_hash: String,
    /// How long an enrollment token stays valid unless the request says otherwise.
    pub token_ttl_secs: i64,
    /// The registry's own URL as nodes reach it (put into iPXE scripts).
    pub public_url: String,
    /// Kernel and initrds (in order) of the live system the iPXE script boots.
    pub boot_kernel: Option<String>,
    pub boot_initrd: Vec<String>,
    /// Kernel arguments the live system needs, appended to the iPXE script's kernel line.
    pub boot_args: Option<String>,
    /// `sha256:HEX` of the registry's TLS certificate when it serves HTTPS: iPXE scripts carry
    /// it (`keel.fingerprint=`) so that a node pins a self-signed registry.
    pub tls_fingerprint: Option<String>,
    /// Folder of root images (`keel image build` output: IMAGE and IMAGE.json), served as files
    /// under /v1/images/ with range requests; none: no images.
    pub images_dir: Option<std::path::PathBuf>,
    /// How long a request body may stall between two reads before the request ends (408).
    pub body_read_timeout: std::time::Duration,
}

impl AppState {
    /// A registry with this admin token, default token lifetime (1 day) and no PXE boot files.
    pub fn new(store: Store, admin_token: &str) -> AppState {
        AppState {
            store,
            admin_hash: secret::hash(admin_token),
            token_ttl_secs: 86400,
            public_url: String::new(),
            boot_kernel: None,
            boot_initrd: Vec::new(),
            boot_args: None,
            tls_fingerprint: None,
            images_dir: None,
            body_read_timeout: BODY_READ_TIMEOUT,
        }
    }
}

pub type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    // Root images are plain files, read with range requests (a broken download resumes).
    // They hold no secrets: keel snapshots the OS before any node configuration, without SSH
    // host keys; so no token is asked for, as for the iPXE boot files.
    use axum::extract::DefaultBodyLimit;
    let small = || DefaultBodyLimit::max(SMALL_BODY_LIMIT);
    Router::new()
        .route("/v1/images/{*name}", get(crate::images::serve))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/v1/admin/profiles", get(list_profiles))
        .route("/v1/admin/profiles/{name}", put(put_profile).layer(small()).get(get_profile))
        .route("/v1/admin/specs", get(list_specs))
        .route("/v1/admin/specs/{name}", put(put_spec).layer(small()).get(get_spec))
        .route("/v1/admin/nodes", get(list_nodes).post(issue_token).layer(small()))
        .route("/v1/admin/nodes/{hostname}", get(show_node))
        .route("/v1/admin/nodes/{hostname}/events", get(node_events))
        .route("/v1/admin/nodes/{hostname}/report", get(node_report))
        .route("/v1/admin/nodes/{hostname}/boot", get(node_boot_report))
        .route("/v1/admin/cluster-keys/{cluster}", put(put_cluster_key).layer(DefaultBodyLimit::max(KEY_BODY_LIMIT)).get(get_cluster_key_meta))
        .route("/", get(crate::status_page::nodes_page))
        .route("/nodes/{hostname}", get(crate::status_page::node_page))
        .route("/v1/enroll", post(enroll).layer(small()))
        .route("/v1/profile", get(node_profile))
        .route("/v1/spec", get(node_spec))
        .route("/v1/cluster-key", get(node_cluster_key))
        .route("/v1/cluster", get(node_cluster))
        .route("/v1/boot", post(post_boot).layer(small()))
        .route("/v1/events", post(post_events))
        .route("/v1/report", post(post_report))
        .route("/v1/disk-replaced", post(post_disk_replaced).layer(small()))
        .route("/ipxe/{mac}", get(ipxe))
        .fallback(|| async { ApiError::not_found("no such endpoint: see registry/openapi.yaml") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // a body that stalls, and a handler that hangs, end the request (the connection's own
        // limits, header read and idle, are the server's: `crate::server`)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(state.body_read_timeout))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, HANDLER_TIMEOUT))
        .with_state(state)
}

/// Whether a body read failed because the body stalled (`RequestBodyTimeoutLayer`).
fn stalled(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(x) = cur {
        if x.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cur = x.source();
    }
    false
}

fn stalled_error() -> ApiError {
    ApiError::new(StatusCode::REQUEST_TIMEOUT, "body_timeout", format!("the request body stalled for more than {} s", BODY_READ_TIMEOUT.as_secs()))
}

fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the body is larger than this endpoint takes (registry/openapi.yaml gives each limit)")
}

/// JSON bodies whose rejections (malformed, wrong type, too large) are JSON errors too.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(JsonRejection::BytesRejection(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(too_large())
            }
            Err(e) if stalled(&e) => Err(stalled_error()),
            Err(e) => Err(ApiError::new(e.status(), "bad_json", e.body_text())),
        }
    }
}

/// Text bodies (profiles and specs are TOML), with the same size limit and JSON errors.
pub struct TextBody(pub String);

impl<S: Send + Sync> FromRequest<S> for TextBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match String::from_request(req, state).await {
            Ok(s) => Ok(TextBody(s)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(too_large())
            }
            Err(e) if stalled(&e) => Err(stalled_error()),
            Err(e) => Err(ApiError::bad_request("bad_body", e.body_text())),
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts.headers.get(AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

/// The password of `Authorization: Basic` (what a browser sends for the status page).
fn basic_password(parts: &Parts) -> Option<String> {
    use base64::Engine;
    let b64 = parts.headers.get(AUTHORIZATION)?.to_str().ok()?.strip_prefix("Basic ")?;
    let text = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?).ok()?;
    text.split_once(':').map(|(_, p)| p.to_string())
}

/// The operator: `Authorization: Bearer ADMIN_TOKEN`.
pub struct Admin;

impl FromRequestParts<Shared> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let given = bearer(parts).map(String::from).or_else(|| basic_password(parts));
        match given {
            Some(t) if secret::matches(&t, &state.admin_hash) => Ok(Admin),
            Some(_) => Err(ApiError::unauthorized("wrong admin token")),
            None => Err(ApiError::unauthorized("admin endpoints need Authorization: Bearer ADMIN_TOKEN (or Basic with the admin token as password)")),
        }
    }
}

/// An enrolled node: `Authorization: Bearer HOSTNAME:SECRET`.
pub struct EnrolledNode(pub Node);

impl FromRequestParts<Shared> for EnrolledNode {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let Some((host, sec)) = bearer(parts).and_then(|b| b.split_once(':')) else {
            return Err(ApiError::unauthorized("node endpoints need Authorization: Bearer HOSTNAME:SECRET (the secret POST /v1/enroll returned)"));
        };
        let node = state.store.node(host).await?;
        match node {
            Some(n) if n.secret_hash.as_deref().is_some_and(|h| secret::matches(sec, h)) => Ok(EnrolledNode(n)),
            _ => Err(ApiError::unauthorized("unknown node or wrong node secret: enroll again with a new token")),
        }
    }
}

// --- admin: documents

fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok && !name.starts_with('.') {
        Ok(())
    } else {
        Err(ApiError::bad_request("bad_name", format!("name {name:?}: use 1-64 characters of A-Z a-z 0-9 - _ .")))
    }
}

/// Validates a profile the way `keel validate` does; files it names stay where the install runs.
fn validate_profile(name: &str, text: &str) -> Result<keel_installer::profile::Profile, ApiError> {
    let src = SourceFile::from_text(format!("{name}.toml"), text);
    keel_installer::profile::Profile::from_source(&src)
        .map(|l| l.profile)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_profile", e.to_string()))
}

async fn put_profile(_: Admin, State(st): State<Shared>, Path(name): Path<String>, TextBody(text): TextBody) -> Result<Response, ApiError> {
    check_name(&name)?;
    let p = validate_profile(&name, &text)?;
    let sha = secret::sha256_hex(text.as_bytes());
    st.store.put_document("profile", &name, &text, &sha).await?;
    Ok((StatusCode::CREATED, Json(json!({ "name": name, "sha256": sha, "hostname": p.node.hostname }))).into_response())
}

async fn put_spec(_: Admin, State(st): State<Shared>, Path(name): Path<String>, TextBody(text): TextBody) -> Result<Response, ApiError> {
    check_name(&name)?;
    let src = SourceFile::from_text(format!("{name}.toml"), text.as_str());
    keel_installer::spec::Spec::load(&src).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_spec", e.to_string()))?;
    let sha = secret::sha256_hex(text.as_bytes());
    st.store.put_document("spec", &name, &text, &sha).await?;
    Ok((StatusCode::CREATED, Json(json!({ "name": name, "sha256": sha }))).into_response())
}

async fn list_profiles(_: Admin, State(st): State<Shared>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "profiles": st.store.documents("profile").await? })))
}

async fn list_specs(_: Admin, State(st): State<Shared>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "specs": st.store.documents("spec").await? })))
}

fn toml_text(body: String) -> Response {
    ([(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/toml"))], body).into_response()
}

async fn get_profile(_: Admin, State(st): State<Shared>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let d = st.store.document("profile", &name).await?.ok_or_else(|| ApiError::not_found(format!("no profile {name:?}")))?;
    Ok(toml_text(d.body))
}

async fn get_spec(_: Admin, State(st): State<Shared>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let d = st.store.document("spec", &name).await?.ok_or_else(|| ApiError::not_found(format!("no spec {name:?}")))?;
    Ok(toml_text(d.body))
}

// --- admin: nodes and tokens

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    hostname: String,
    profile: String,
    mac: Option<String>,
    dmi_serial: Option<String>,
    ttl_seconds: Option<i64>,
    #[serde(default)]
    pxe: bool,
}

/// A MAC in the form keel's inventory uses: lower case, colon separated.
pub fn normalize_mac(mac: &str) -> Option<String> {
    let hex: String = mac.chars().filter(|c| c.is_ascii_hexdigit()).collect::<String>().to_ascii_lowercase();
    let seps_ok = mac.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '-');
    if hex.len() != 12 || !seps_ok {
        return None;
    }
    Some(hex.as_bytes().chunks(2).map(|c| std::str::from_utf8(c).unwrap_or("")).collect::<Vec<_>>().join(":"))
}

/// Arms a node. With a token (the rescue path: `keel install --registry --token`), bound to
/// its MAC and/or DMI serial. A PXE node gets no token: arming opens its enrollment window
/// (`ttl_seconds`), which its first matching enrollment closes; since the network sees its MAC,
/// it must be bound to something the network cannot see too: its DMI serial, or the drive
/// serials its profile pins (`disks.serials`).
async fn issue_token(_: Admin, State(st): State<Shared>, JsonBody(req): JsonBody<TokenRequest>) -> Result<Response, ApiError> {
    check_name(&req.hostname)?;
    let mac = match &req.mac {
        Some(m) => Some(normalize_mac(m).ok_or_else(|| ApiError::bad_request("bad_mac", format!("mac {m:?} is not a MAC address")))?),
        None => None,
    };
    let dmi_serial = req.dmi_serial.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    if mac.is_none() && dmi_serial.is_none() {
        return Err(ApiError::bad_request("unbound", "a token is bound to the node's hardware: give mac or dmi_serial (or both)"));
    }
    if req.pxe && mac.is_none() {
        return Err(ApiError::bad_request("unbound", "a PXE node is found by its MAC: give mac"));
    }
    let ttl = check_token_ttl(req.ttl_seconds.unwrap_or(st.token_ttl_secs)).map_err(|e| ApiError::bad_request("bad_ttl", format!("ttl_seconds: {e}")))?;
    let doc = st.store.document("profile", &req.profile).await?.ok_or_else(|| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "no_profile", format!("no profile {:?}: upload it first (PUT /v1/admin/profiles/{{name}})", req.profile))
    })?;
    let p = validate_profile(&req.profile, &doc.body)?;
    if p.node.hostname != req.hostname {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "profile_mismatch",
            format!("profile {:?} is for node {:?}, not {:?}", req.profile, p.node.hostname, req.hostname),
        ));
    }
    if req.pxe && dmi_serial.is_none() && p.disks.serials.is_empty() {
        return Err(ApiError::bad_request(
            "unbound",
            "a PXE node enrolls without a token, by hardware the network cannot see: give dmi_serial, or pin the drives' serials in its profile (disks.serials)",
        ));
    }
    if req.pxe && (st.boot_kernel.is_none() || st.boot_initrd.is_empty()) {
        return Err(ApiError::conflict("no_boot_image", "this registry was started without --boot-kernel and --boot-initrd: it has no iPXE script to serve a PXE node"));
    }
    if let Some(m) = &mac {
        if let Some(other) = st.store.node_by_mac(m).await?.filter(|n| n.hostname != req.hostname) {
            return Err(mac_taken(m, Some(&other.hostname)));
        }
    }
    let expires_at = crate::store::now().saturating_add(ttl);
    let node = NewNode { hostname: req.hostname.clone(), profile: req.profile, mac: mac.clone(), dmi_serial, disk_serials: p.disks.serials.clone(), pxe: req.pxe };
    let token = (!req.pxe).then(secret::generate);
    match st.store.arm_node(&node, token.as_deref().map(secret::hash).as_deref(), expires_at).await {
        Err(StoreError::MacTaken) => return Err(mac_taken(mac.as_deref().unwrap_or("?"), None)),
        r => r?,
    }
    Ok(match token {
        Some(t) => (StatusCode::CREATED, Json(json!({ "hostname": req.hostname, "token": t, "expires_at": expires_at }))).into_response(),
        None => (StatusCode::CREATED, Json(json!({ "hostname": req.hostname, "pxe": true, "window_closes_at": expires_at }))).into_response(),
    })
}

fn mac_taken(mac: &str, other: Option<&str>) -> ApiError {
    let who = other.map(|h| format!("node {h:?}")).unwrap_or_else(|| "another node".into());
    ApiError::conflict("mac_taken", format!("mac {mac} belongs to {who}: a MAC finds one node only (re-arm that node, or correct the MAC)"))
}

async fn list_nodes(_: Admin, State(st): State<Shared>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "nodes": st.store.nodes().await? })))
}

async fn known_node(st: &Shared, hostname: &str) -> Result<Node, ApiError> {
    st.store.node(hostname).await?.ok_or_else(|| ApiError::not_found(format!("no node {hostname:?}")))
}

async fn show_node(_: Admin, State(st): State<Shared>, Path(hostname): Path<String>) -> Result<Json<Node>, ApiError> {
    Ok(Json(known_node(&st, &hostname).await?))
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: i64,
    limit: Option<i64>,
}

async fn node_events(_: Admin, State(st): State<Shared>, Path(hostname): Path<String>, Query(q): Query<EventsQuery>) -> Result<Json<Value>, ApiError> {
    known_node(&st, &hostname).await?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 10000);
    let events = st.store.events(&hostname, q.after, limit).await?;
    let events: Vec<Value> = events.into_iter().map(|(_, body)| serde_json::from_str(&body).unwrap_or(Value::Null)).collect();
    Ok(Json(json!({ "hostname": hostname, "events": events })))
}

async fn node_report(_: Admin, State(st): State<Shared>, Path(hostname): Path<String>) -> Result<Json<Value>, ApiError> {
    known_node(&st, &hostname).await?;
    let report = st.store.report(&hostname).await?.ok_or_else(|| ApiError::not_found(format!("node {hostname:?} has sent no report yet")))?;
    Ok(Json(serde_json::from_str(&report).unwrap_or(Value::Null)))
}

async fn node_boot_report(_: Admin, State(st): State<Shared>, Path(hostname): Path<String>) -> Result<Json<Value>, ApiError> {
    known_node(&st, &hostname).await?;
    let report = st.store.boot_report(&hostname).await?.ok_or_else(|| ApiError::not_found(format!("node {hostname:?} has not reported a first boot yet")))?;
    Ok(Json(serde_json::from_str(&report).unwrap_or(Value::Null)))
}

/// Size limits of a cluster root key (an OpenSSH private key; RSA 4096 is about 3.4 KiB).
const CLUSTER_KEY_SIZES: std::ops::RangeInclusive<usize> = 300..=16384;

/// The cluster's root SSH key: an OpenSSH private key (`ssh-keygen -t rsa -b 4096 -N '' -f
/// FILE`, once per cluster). A node's first boot installs it as `/root/.ssh/id_rsa` and accepts
/// its public half for root from the cluster network only: the trust `pvecm add --use_ssh`
/// needs, without passwords. Nodes of a profile with that `cluster.name` fetch it; never listed.
async fn put_cluster_key(_: Admin, State(st): State<Shared>, Path(cluster): Path<String>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    check_name(&cluster)?;
    let text = std::str::from_utf8(&body).ok().map(str::trim_end).unwrap_or("");
    let pem = text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") && text.ends_with("-----END OPENSSH PRIVATE KEY-----");
    if !pem || !CLUSTER_KEY_SIZES.contains(&body.len()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_cluster_key",
            format!("the body ({} bytes) is not an OpenSSH private key: make one with `ssh-keygen -t rsa -b 4096 -N '' -f FILE` and upload FILE (not FILE.pub)", body.len()),
        ));
    }
    let sha = secret::sha256_hex(&body);
    st.store.put_document("cluster-key", &cluster, &format!("{text}\n"), &sha).await?;
    Ok((StatusCode::CREATED, Json(json!({ "cluster": cluster, "sha256": sha, "bytes": body.len() }))).into_response())
}

/// Whether the key is there, and its digest (never the key itself).
async fn get_cluster_key_meta(_: Admin, State(st): State<Shared>, Path(cluster): Path<String>) -> Result<Json<Value>, ApiError> {
    let d = st.store.document("cluster-key", &cluster).await?.ok_or_else(|| ApiError::not_found(format!("no root key for cluster {cluster:?}")))?;
    Ok(Json(json!({ "cluster": cluster, "sha256": d.sha256, "uploaded_at": d.uploaded_at })))
}

// --- node side

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollRequest {
    /// The single-use token; none: a PXE node, found by its MACs and checked by its binding.
    #[serde(default)]
    token: Option<String>,
    /// keel's hardware inventory (`keel detect --json`).
    inventory: Value,
}

/// What an inventory says the machine is: its MACs, DMI serial and drive serials.
struct Claimed {
    macs: Vec<String>,
    dmi_serial: Option<String>,
    disk_serials: Vec<String>,
}

fn identity(inv: &Value) -> Claimed {
    let list = |key: &str, field: &str| -> Vec<String> {
        inv[key].as_array().map(|a| a.iter().filter_map(|n| n[field].as_str()).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).take(64).collect()).unwrap_or_default()
    };
    Claimed {
        macs: list("nics", "mac").iter().filter_map(|m| normalize_mac(m)).collect(),
        dmi_serial: inv["dmi"]["product_serial"].as_str().map(str::trim).filter(|s| !s.is_empty()).map(String::from),
        disk_serials: list("disks", "serial"),
    }
}

/// Why the machine is not the one the node is bound to (for the log only), or None.
fn binding_mismatch(node: &Node, c: &Claimed) -> Option<String> {
    let mut why = Vec::new();
    if let Some(m) = &node.mac {
        if !c.macs.contains(m) {
            why.push(format!("mac {m} not among [{}]", c.macs.join(", ")));
        }
    }
    if let Some(s) = &node.dmi_serial {
        if c.dmi_serial.as_deref() != Some(s.as_str()) {
            why.push(format!("dmi serial {s:?}, the machine says {:?}", c.dmi_serial.as_deref().unwrap_or("")));
        }
    }
    let missing: Vec<&String> = node.disk_serials.iter().filter(|s| !c.disk_serials.contains(s)).collect();
    if !missing.is_empty() {
        why.push(format!("drive serial(s) {missing:?} of the profile not among {:?}", c.disk_serials));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// Enrollment: with a token (single-use, bound to the hardware), or a PXE node without one (an
/// armed PXE node with one of the machine's MACs, inside its window). Either way the machine
/// must match every binding; a refusal says no more than that (the registry's log says what
/// differed), and the `MAX_REFUSALS`-th spends the token or closes the window.
async fn enroll(State(st): State<Shared>, JsonBody(req): JsonBody<EnrollRequest>) -> Result<Response, ApiError> {
    let claimed = identity(&req.inventory);
    let used = || ApiError::conflict("token_used", "this enrollment token was already used: tokens are single-use; ask the operator for a new one");
    let node = match &req.token {
        Some(token) => {
            let th = secret::hash(token);
            let node = st.store.node_by_token(&th).await?.ok_or_else(|| ApiError::unauthorized("unknown, used or expired enrollment token: ask the operator for a new one"))?;
            if node.token_used_at.is_some() {
                return Err(used());
            }
            if node.token_expires_at.is_some_and(|t| t < crate::store::now()) {
                return Err(ApiError::unauthorized("this enrollment token has expired: ask the operator for a new one"));
            }
            node
        }
        None => {
            let mut armed = None;
            for m in &claimed.macs {
                if let Some(n) = st.store.node_by_mac(m).await?.filter(|n| n.pxe_window_open(crate::store::now())) {
                    armed = Some(n);
                    break;
                }
            }
            armed.ok_or_else(|| {
                ApiError::unauthorized("no PXE install is armed for this machine: the operator arms it (POST /v1/admin/nodes with \"pxe\": true), or gives a token")
            })?
        }
    };
    if let Some(why) = binding_mismatch(&node, &claimed) {
        let (n, locked) = st.store.refuse(&node.hostname, MAX_REFUSALS).await?;
        tracing::warn!("enrollment as {} refused ({n} of {MAX_REFUSALS}{}): {why}", node.hostname, if locked { "; locked until armed again" } else { "" });
        return Err(ApiError::forbidden(if locked {
            "this machine is not the hardware the enrollment is bound to; that was the last try: the operator must arm the node again".to_string()
        } else {
            format!("this machine is not the hardware the enrollment is bound to (the registry's log says what differs); {} tries left", MAX_REFUSALS - n)
        }));
    }
    let sec = secret::generate();
    let won = match &req.token {
        Some(token) => st.store.enroll(&node.hostname, &secret::hash(token), &secret::hash(&sec)).await?,
        None => st.store.enroll_pxe(&node.hostname, &secret::hash(&sec)).await?,
    };
    if !won {
        return Err(used());
    }
    Ok(Json(json!({ "hostname": node.hostname, "secret": sec, "profile": node.profile })).into_response())
}

#[derive(Deserialize)]
struct ProfileQuery {
    mac: Option<String>,
    dmi_serial: Option<String>,
}

/// The enrolled node's own profile. A node asking by another node's MAC or serial is refused.
async fn node_profile(EnrolledNode(node): EnrolledNode, State(st): State<Shared>, Query(q): Query<ProfileQuery>) -> Result<Response, ApiError> {
    if let Some(m) = &q.mac {
        let m = normalize_mac(m).ok_or_else(|| ApiError::bad_request("bad_mac", format!("mac {m:?} is not a MAC address")))?;
        if node.mac.as_deref() != Some(m.as_str()) {
            return Err(ApiError::forbidden(format!("{} may only read its own profile; mac {m} is not its MAC", node.hostname)));
        }
    }
    if let Some(s) = &q.dmi_serial {
        if node.dmi_serial.as_deref() != Some(s.as_str()) {
            return Err(ApiError::forbidden(format!("{} may only read its own profile; dmi serial {s} is not its serial", node.hostname)));
        }
    }
    let (body, _) = own_profile(&st, &node).await?;
    Ok(toml_text(body))
}

/// The stored profile of an enrolled node, parsed.
async fn own_profile(st: &Shared, node: &Node) -> Result<(String, keel_installer::profile::Profile), ApiError> {
    let d = st.store.document("profile", &node.profile).await?.ok_or_else(|| ApiError::not_found(format!("profile {:?} was removed", node.profile)))?;
    let p = validate_profile(&node.profile, &d.body)?;
    Ok((d.body, p))
}

/// The hardware spec the node's profile names (`hardware-spec`).
async fn node_spec(EnrolledNode(node): EnrolledNode, State(st): State<Shared>) -> Result<Response, ApiError> {
    let (_, p) = own_profile(&st, &node).await?;
    let name = p.hardware_spec.clone().ok_or_else(|| ApiError::not_found(format!("profile {:?} names no hardware-spec", node.profile)))?;
    let d = st.store.document("spec", &name).await?.ok_or_else(|| ApiError::not_found(format!("profile {:?} names hardware spec {name:?}, which is not uploaded (PUT /v1/admin/specs/{name})", node.profile)))?;
    Ok(toml_text(d.body))
}

/// The root SSH key of the node's cluster (`cluster.name` of its profile).
async fn node_cluster_key(EnrolledNode(node): EnrolledNode, State(st): State<Shared>) -> Result<Response, ApiError> {
    let (_, p) = own_profile(&st, &node).await?;
    let name = p.cluster.name.clone();
    let d = st.store.document("cluster-key", &name).await?.ok_or_else(|| ApiError::not_found(format!("no root key for cluster {name:?} (PUT /v1/admin/cluster-keys/{name})")))?;
    Ok(([(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], d.body).into_response())
}

/// The node's cluster as the registry knows it: every enrolled node whose profile names the
/// same `cluster.name`, with its state and its last first-boot report (phase, cluster step,
/// SSH host key fingerprints). A first boot decides from it whether the cluster exists, whom to
/// join, and which host key that node has.
async fn node_cluster(EnrolledNode(node): EnrolledNode, State(st): State<Shared>) -> Result<Json<Value>, ApiError> {
    let (_, own) = own_profile(&st, &node).await?;
    let mut members = Vec::new();
    for n in st.store.nodes().await? {
        let Ok((_, p)) = own_profile(&st, &n).await else { continue };
        if p.cluster.name != own.cluster.name {
            continue;
        }
        let boot = st.store.boot_report(&n.hostname).await?.and_then(|r| serde_json::from_str::<Value>(&r).ok()).unwrap_or(Value::Null);
        let id = p.cluster.nodes.iter().find(|c| c.name == p.node.hostname).map(|c| c.id);
        members.push(json!({
            "hostname": n.hostname,
            "node_id": id,
            "self": n.hostname == node.hostname,
            "state": n.state,
            "phase": boot["phase"],
            "cluster": boot["cluster"],
            "ssh_host_keys": boot["ssh_host_keys"],
        }));
    }
    Ok(Json(json!({ "cluster": own.cluster.name, "members": members })))
}

/// The first boot's report: `phase` "booted" (with the new host keys), then "ready" (cluster
/// step done) or "failed". Each newer report replaces the previous one.
async fn post_boot(EnrolledNode(node): EnrolledNode, State(st): State<Shared>, JsonBody(report): JsonBody<Value>) -> Result<Json<Value>, ApiError> {
    let phase = report["phase"].as_str().unwrap_or("");
    let state = match report["phase"].as_str() {
        Some("booted") => "booted",
        Some("cluster-created") => "cluster-created",
        Some("ready") => "ready",
        Some("failed") => "boot-failed",
        _ => return Err(ApiError::bad_request("bad_report", "the first-boot report needs \"phase\": \"booted\", \"cluster-created\", \"ready\" or \"failed\"")),
    };
    st.store.set_boot_report(&node.hostname, &report.to_string(), state, phase).await?;
    Ok(Json(json!({ "stored": true, "state": state })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsRequest {
    events: Vec<Value>,
}

/// The node state an event moves to ("installing" with its step, "failed", ...).
fn state_of(event: &Value) -> (&'static str, Option<String>) {
    let step = event["step"].as_str().map(String::from);
    match event["event"].as_str() {
        Some("failed") => ("failed", step),
        Some("finished") => ("installed", step),
        Some("booted") => ("booted", step),
        _ => ("installing", step),
    }
}

/// Event `i` of a request as the store keeps it, or why it is refused.
pub fn new_event(i: usize, e: &Value) -> Result<NewEvent, ApiError> {
    let seq = e["seq"].as_i64().filter(|s| *s >= 0).ok_or_else(|| ApiError::bad_request("bad_event", format!("event {i}: needs a non-negative integer \"seq\"")))?;
    if !e["event"].is_string() {
        return Err(ApiError::bad_request("bad_event", format!("event {i} (seq {seq}): needs a string \"event\"")));
    }
    let body = e.to_string();
    if body.len() > MAX_EVENT_BYTES {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("event {i} (seq {seq}) is {} bytes; one event may have {MAX_EVENT_BYTES}", body.len())));
    }
    let (state, step) = state_of(e);
    let progress = match (e["n"].as_u64(), e["total"].as_u64()) {
        (Some(n), Some(t)) => Some(format!("{n}/{t}")),
        _ => None,
    };
    Ok(NewEvent { seq, body, summary: crate::status_page::describe(e), state, step, progress })
}

async fn post_events(EnrolledNode(node): EnrolledNode, State(st): State<Shared>, JsonBody(req): JsonBody<EventsRequest>) -> Result<Json<Value>, ApiError> {
    if req.events.len() > MAX_EVENTS_PER_REQUEST {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_many", format!("at most {MAX_EVENTS_PER_REQUEST} events per request")));
    }
    let rows = req.events.iter().enumerate().map(|(i, e)| new_event(i, e)).collect::<Result<Vec<_>, _>>()?;
    let added = st.store.add_events(&node.hostname, &rows, EVENT_QUOTA).await?;
    Ok(Json(json!({ "accepted": added, "duplicates": rows.len() as u64 - added })))
}

async fn post_report(EnrolledNode(node): EnrolledNode, State(st): State<Shared>, JsonBody(report): JsonBody<Value>) -> Result<Json<Value>, ApiError> {
    if !report.is_object() {
        return Err(ApiError::bad_request("bad_report", "the report is a JSON object"));
    }
    let state = match report["result"].as_str() {
        Some("ok") => "installed",
        Some("failed") => "failed",
        _ => return Err(ApiError::bad_request("bad_report", "the report needs \"result\": \"ok\" or \"failed\"")),
    };
    st.store.set_report(&node.hostname, &report.to_string(), state, report["result"].as_str().unwrap_or("")).await?;
    Ok(Json(json!({ "stored": true, "state": state })))
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct DiskReplaced {
    /// The drive that died (as its old path or the profile named it), when known.
    old_serial: Option<String>,
    new_serial: String,
    survivor_serial: String,
    /// When the replace began (its journal's first line): the same replace sent twice is one event.
    started_at: String,
    seconds: f64,
}

/// `keel disk replace` on an installed node: recorded among the node's events as
/// `disk-replaced` with the old and new serial; the node's state does not change.
async fn post_disk_replaced(EnrolledNode(node): EnrolledNode, State(st): State<Shared>, JsonBody(req): JsonBody<DiskReplaced>) -> Result<Json<Value>, ApiError> {
    let ok = |s: &str| !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_graphic());
    if !ok(&req.new_serial) || !ok(&req.survivor_serial) || req.old_serial.as_deref().is_some_and(|s| !ok(s)) || req.started_at.len() > 64 {
        return Err(ApiError::bad_request("bad_event", "serials are 1-64 printable ASCII characters"));
    }
    let mut body = serde_json::to_value(&req).map_err(|e| ApiError::bad_request("bad_event", e.to_string()))?;
    body["event"] = json!("disk-replaced");
    let summary = format!("disk-replaced: {} -> {} (survivor {})", req.old_serial.as_deref().unwrap_or("?"), req.new_serial, req.survivor_serial);
    let added = st.store.add_node_event(&node.hostname, &body.to_string(), &summary).await?;
    Ok(Json(json!({ "stored": added, "duplicate": !added })))
}

/// The iPXE script for a MAC. An armed PXE node inside its window gets the live system's boot
/// script, which carries no token, no host name and no other secret: the node enrolls by its
/// hardware. Every other MAC (unknown, not a PXE node, installed, locked, window closed) gets
/// the same script, which hands the boot back to the firmware's next device; a GET creates and
/// changes nothing.
async fn ipxe(State(st): State<Shared>, Path(mac): Path<String>) -> Result<Response, ApiError> {
    let m = normalize_mac(&mac).ok_or_else(|| ApiError::bad_request("bad_mac", format!("mac {mac:?} is not a MAC address")))?;
    let armed = st.store.node_by_mac(&m).await?.is_some_and(|n| n.pxe_window_open(crate::store::now()));
    let script = match (&st.boot_kernel, armed) {
        (Some(kernel), true) if !st.boot_initrd.is_empty() => crate::ipxe::script(kernel, &st.boot_initrd, &st.public_url, st.tls_fingerprint.as_deref(), st.boot_args.as_deref()),
        _ => crate::ipxe::NEXT_DEVICE.to_string(),
    };
    Ok(([(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))], script).into_response())
}
