//! The HTTP API, versioned under `/v1` (described in `registry/openapi.yaml`):
//! - admin (bearer admin token): profiles and hardware specs (validated like `keel validate`),
//!   nodes with their enrollment tokens, a node's events and report;
//! - node: `POST /v1/enroll` (token + inventory -> per-node secret), then with
//!   `Authorization: Bearer HOSTNAME:SECRET`: `GET /v1/profile`, `POST /v1/events`, `POST /v1/report`;
//! - `GET /ipxe/{mac}`: the boot script of a PXE node, with a fresh single-use token.

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
use crate::store::{NewNode, Node, Store};

/// Largest request body accepted (a profile, a batch of events, a report).
pub const BODY_LIMIT: usize = 1 << 20;
/// Most events accepted in one request.
pub const MAX_EVENTS_PER_REQUEST: usize = 1000;

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
        }
    }
}

pub type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    // Root images are plain files, read with range requests (a broken download resumes).
    // They hold no secrets: keel snapshots the OS before any node configuration, without SSH
    // host keys; so no token is asked for, as for the iPXE boot files.
    let images = match &state.images_dir {
        Some(dir) => Router::new().nest_service("/v1/images", tower_http::services::ServeDir::new(dir)),
        None => Router::new().route("/v1/images/{*name}", get(|| async { ApiError::not_found("this registry serves no images: start it with --images DIR") })),
    };
    Router::new()
        .merge(images)
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/v1/admin/profiles", get(list_profiles))
        .route("/v1/admin/profiles/{name}", put(put_profile).get(get_profile))
        .route("/v1/admin/specs", get(list_specs))
        .route("/v1/admin/specs/{name}", put(put_spec).get(get_spec))
        .route("/v1/admin/nodes", get(list_nodes).post(issue_token))
        .route("/v1/admin/nodes/{hostname}", get(show_node))
        .route("/v1/admin/nodes/{hostname}/events", get(node_events))
        .route("/v1/admin/nodes/{hostname}/report", get(node_report))
        .route("/v1/admin/nodes/{hostname}/boot", get(node_boot_report))
        .route("/v1/admin/cluster-keys/{cluster}", put(put_cluster_key).get(get_cluster_key_meta))
        .route("/", get(crate::status_page::nodes_page))
        .route("/nodes/{hostname}", get(crate::status_page::node_page))
        .route("/v1/enroll", post(enroll))
        .route("/v1/profile", get(node_profile))
        .route("/v1/spec", get(node_spec))
        .route("/v1/cluster-key", get(node_cluster_key))
        .route("/v1/cluster", get(node_cluster))
        .route("/v1/boot", post(post_boot))
        .route("/v1/events", post(post_events))
        .route("/v1/report", post(post_report))
        .route("/ipxe/{mac}", get(ipxe))
        .fallback(|| async { ApiError::not_found("no such endpoint: see registry/openapi.yaml") })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// JSON bodies whose rejections (malformed, wrong type, too large) are JSON errors too.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(JsonRejection::BytesRejection(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("the body is larger than {BODY_LIMIT} bytes")))
            }
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
                Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("the body is larger than {BODY_LIMIT} bytes")))
            }
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

async fn issue_token(_: Admin, State(st): State<Shared>, JsonBody(req): JsonBody<TokenRequest>) -> Result<Response, ApiError> {
    check_name(&req.hostname)?;
    let mac = match &req.mac {
        Some(m) => Some(normalize_mac(m).ok_or_else(|| ApiError::bad_request("bad_mac", format!("mac {m:?} is not a MAC address")))?),
        None => None,
    };
    if mac.is_none() && req.dmi_serial.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return Err(ApiError::bad_request("unbound", "a token is bound to the node's hardware: give mac or dmi_serial (or both)"));
    }
    if req.pxe && mac.is_none() {
        return Err(ApiError::bad_request("unbound", "a PXE node is found by its MAC: give mac"));
    }
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
    if let Some(m) = &mac {
        if let Some(other) = st.store.node_by_mac(m).await?.filter(|n| n.hostname != req.hostname) {
            return Err(ApiError::conflict("mac_taken", format!("mac {m} belongs to node {:?}: a MAC finds one node only (re-arm that node, or correct the MAC)", other.hostname)));
        }
    }
    let ttl = req.ttl_seconds.unwrap_or(st.token_ttl_secs);
    if !(60..=30 * 86400).contains(&ttl) {
        return Err(ApiError::bad_request("bad_ttl", "ttl_seconds must be between 60 and 2592000 (30 days)"));
    }
    let token = secret::generate();
    let expires_at = crate::store::now() + ttl;
    let node = NewNode { hostname: req.hostname.clone(), profile: req.profile, mac, dmi_serial: req.dmi_serial, pxe: req.pxe };
    st.store.arm_node(&node, &secret::hash(&token), expires_at).await?;
    Ok((StatusCode::CREATED, Json(json!({ "hostname": req.hostname, "token": token, "expires_at": expires_at }))).into_response())
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
    token: String,
    /// keel's hardware inventory (`keel detect --json`).
    inventory: Value,
}

/// The MACs and the DMI serial an inventory reports.
fn identity(inv: &Value) -> (Vec<String>, Option<String>) {
    let macs = inv["nics"].as_array().map(|a| a.iter().filter_map(|n| n["mac"].as_str()).filter_map(normalize_mac).collect()).unwrap_or_default();
    let serial = inv["dmi"]["product_serial"].as_str().map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    (macs, serial)
}

async fn enroll(State(st): State<Shared>, JsonBody(req): JsonBody<EnrollRequest>) -> Result<Response, ApiError> {
    let th = secret::hash(&req.token);
    let denied = || ApiError::unauthorized("unknown, used or expired enrollment token: ask the operator for a new one");
    let node = st.store.node_by_token(&th).await?.ok_or_else(denied)?;
    if node.token_used_at.is_some() {
        return Err(ApiError::conflict("token_used", "this enrollment token was already used: tokens are single-use; ask the operator for a new one"));
    }
    if node.token_expires_at.is_some_and(|t| t < crate::store::now()) {
        return Err(ApiError::unauthorized("this enrollment token has expired: ask the operator for a new one"));
    }
    let (macs, serial) = identity(&req.inventory);
    let mac_ok = node.mac.as_ref().is_none_or(|m| macs.contains(m));
    let serial_ok = node.dmi_serial.as_ref().is_none_or(|s| serial.as_deref() == Some(s.as_str()));
    if !mac_ok || !serial_ok {
        return Err(ApiError::forbidden(format!(
            "the token is bound to {} (mac {}, dmi serial {}); this machine reports macs [{}], dmi serial {}",
            node.hostname,
            node.mac.as_deref().unwrap_or("-"),
            node.dmi_serial.as_deref().unwrap_or("-"),
            macs.join(", "),
            serial.as_deref().unwrap_or("-")
        )));
    }
    let sec = secret::generate();
    if !st.store.enroll(&node.hostname, &th, &secret::hash(&sec)).await? {
        return Err(ApiError::conflict("token_used", "this enrollment token was already used: tokens are single-use; ask the operator for a new one"));
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
    let state = match report["phase"].as_str() {
        Some("booted") => "booted",
        Some("cluster-created") => "cluster-created",
        Some("ready") => "ready",
        Some("failed") => "boot-failed",
        _ => return Err(ApiError::bad_request("bad_report", "the first-boot report needs \"phase\": \"booted\", \"cluster-created\", \"ready\" or \"failed\"")),
    };
    st.store.set_boot_report(&node.hostname, &report.to_string(), state).await?;
    Ok(Json(json!({ "stored": true, "state": state })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsRequest {
    events: Vec<Value>,
}

/// The node state an event moves to ("installing" with its step, "failed", ...).
fn state_of(event: &Value) -> Option<(&'static str, Option<String>)> {
    let step = event["step"].as_str().map(String::from);
    match event["event"].as_str()? {
        "failed" => Some(("failed", step)),
        "finished" => Some(("installed", step)),
        "booted" => Some(("booted", step)),
        _ => Some(("installing", step)),
    }
}

async fn post_events(EnrolledNode(node): EnrolledNode, State(st): State<Shared>, JsonBody(req): JsonBody<EventsRequest>) -> Result<Json<Value>, ApiError> {
    if req.events.len() > MAX_EVENTS_PER_REQUEST {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_many", format!("at most {MAX_EVENTS_PER_REQUEST} events per request")));
    }
    let mut rows = Vec::with_capacity(req.events.len());
    for (i, e) in req.events.iter().enumerate() {
        let seq = e["seq"].as_i64().filter(|s| *s >= 0).ok_or_else(|| ApiError::bad_request("bad_event", format!("event {i}: needs a non-negative integer \"seq\"")))?;
        if !e["event"].is_string() {
            return Err(ApiError::bad_request("bad_event", format!("event {i} (seq {seq}): needs a string \"event\"")));
        }
        rows.push((seq, e.to_string()));
    }
    let last = req.events.iter().max_by_key(|e| e["seq"].as_i64());
    let state = last.and_then(state_of);
    let added = st.store.add_events(&node.hostname, &rows, state.as_ref().map(|(s, step)| (*s, step.as_deref()))).await?;
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
    st.store.set_report(&node.hostname, &report.to_string(), state).await?;
    Ok(Json(json!({ "stored": true, "state": state })))
}

/// The iPXE script of a PXE node: boots the live/rescue kernel with the registry URL and a fresh
/// single-use enrollment token on its command line.
async fn ipxe(State(st): State<Shared>, Path(mac): Path<String>) -> Result<Response, ApiError> {
    let m = normalize_mac(&mac).ok_or_else(|| ApiError::bad_request("bad_mac", format!("mac {mac:?} is not a MAC address")))?;
    let node = st.store.node_by_mac(&m).await?.filter(|n| n.pxe).ok_or_else(|| ApiError::not_found(format!("no PXE node with mac {m}")))?;
    if node.state != "waiting" {
        return Err(ApiError::conflict("not_armed", format!("{} is {}: issue it a new token (POST /v1/admin/nodes) to install it again", node.hostname, node.state)));
    }
    let (Some(kernel), false) = (&st.boot_kernel, st.boot_initrd.is_empty()) else {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_boot_image", "the registry was started without --boot-kernel and --boot-initrd"));
    };
    let token = secret::generate();
    st.store.set_token(&node.hostname, &secret::hash(&token), crate::store::now() + st.token_ttl_secs).await?;
    let script = crate::ipxe::script(kernel, &st.boot_initrd, &st.public_url, &token, &node.hostname, st.tls_fingerprint.as_deref(), st.boot_args.as_deref());
    Ok(([(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))], script).into_response())
}
