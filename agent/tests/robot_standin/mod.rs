//! A stand-in for the Hetzner Robot webservice on loopback, following its documented shapes:
//! HTTP Basic auth, form-encoded POSTs, JSON answers and `{"error": {"status", "code",
//! "message", ...}}` errors (UNAUTHORIZED, RATE_LIMIT_EXCEEDED with max_request/interval,
//! SERVER_NOT_FOUND, BOOT_ALREADY_ENABLED, INVALID_INPUT). Only the calls keel makes:
//! GET /server, GET|POST /boot/{n}/rescue, POST /reset/{n}. It records every request (without
//! the Authorization header) so tests can check what was asked and that no secret leaked.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub const USER: &str = "#ws+keeltest";
pub const PASSWORD: &str = "robot-password-never-logged";
/// The operator's key as Robot lists it (MD5 fingerprint).
pub const KEY: &str = "56:29:99:a4:5d:ed:ac:95:c1:f5:88:82:90:5d:bd:10";

#[derive(Default)]
pub struct World {
    /// server number -> (active, accepted key fingerprints)
    pub rescue: BTreeMap<u64, (bool, Vec<String>)>,
    pub resets: Vec<(u64, String)>,
    /// "METHOD path body" of every request
    pub log: Vec<String>,
    /// Answer RATE_LIMIT_EXCEEDED from this many requests on.
    pub rate_limit_after: Option<usize>,
    /// Everything the requests carried, headers included (to look for leaked secrets).
    pub raw: Vec<String>,
    /// Runs on each accepted reset (a test makes the "server" come back as a rescue system).
    pub on_reset: Option<Box<dyn FnMut() + Send>>,
}

pub type Shared = Arc<Mutex<World>>;

pub fn servers() -> Value {
    json!([
        { "server": { "server_ip": "203.0.113.10", "server_ipv6_net": "2001:db8:10:1::", "server_number": 2001, "server_name": "pve-node-01", "product": "AX41-NVMe", "dc": "FSN1-DC14", "traffic": "unlimited", "status": "ready", "cancelled": false, "paid_until": "2026-12-31" } },
        { "server": { "server_ip": "203.0.113.20", "server_ipv6_net": "2001:db8:10:2::", "server_number": 2002, "server_name": "pve-node-02", "product": "AX41-NVMe", "dc": "FSN1-DC14", "traffic": "unlimited", "status": "ready", "cancelled": false, "paid_until": "2026-12-31" } }
    ])
}

fn error(status: StatusCode, code: &str, message: &str, extra: Value) -> Response {
    let mut e = json!({ "status": status.as_u16(), "code": code, "message": message });
    if let (Some(o), Some(x)) = (e.as_object_mut(), extra.as_object()) {
        o.extend(x.clone());
    }
    (status, Json(json!({ "error": e }))).into_response()
}

fn decode(s: &str) -> String {
    let b = s.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form(body: &str) -> Vec<(String, String)> {
    body.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (decode(k), decode(v))
    }).collect()
}

/// Auth, rate limit and logging for every request; None = go on.
fn gate(w: &Shared, headers: &HeaderMap, line: String) -> Option<Response> {
    let mut w = w.lock().unwrap();
    w.raw.push(format!("{line} {headers:?}"));
    w.log.push(line);
    if w.rate_limit_after.is_some_and(|n| w.log.len() > n) {
        return Some(error(StatusCode::FORBIDDEN, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded", json!({ "max_request": 200, "interval": 3600 })));
    }
    use base64::Engine;
    let want = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}")));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
        return Some(error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Unauthorized", json!({})));
    }
    None
}

fn server_exists(n: u64) -> bool {
    servers().as_array().unwrap().iter().any(|s| s["server"]["server_number"] == n)
}

async fn list(State(w): State<Shared>, h: HeaderMap) -> Response {
    if let Some(r) = gate(&w, &h, "GET /server".into()) {
        return r;
    }
    Json(servers()).into_response()
}

fn rescue_json(n: u64, active: bool, keys: &[String], password: Option<&str>) -> Value {
    json!({ "rescue": { "server_ip": "203.0.113.10", "server_ipv6_net": "2001:db8:10:1::", "server_number": n, "os": if active { json!("linux") } else { json!(["linux", "vkvm"]) }, "active": active,
        "password": password, "authorized_key": keys.iter().map(|k| json!({ "key": { "name": "operator", "fingerprint": k, "type": "ED25519", "size": 256 } })).collect::<Vec<_>>(), "host_key": [] } })
}

async fn rescue_get(State(w): State<Shared>, h: HeaderMap, Path(n): Path<u64>) -> Response {
    if let Some(r) = gate(&w, &h, format!("GET /boot/{n}/rescue")) {
        return r;
    }
    if !server_exists(n) {
        return error(StatusCode::NOT_FOUND, "SERVER_NOT_FOUND", "Server not found", json!({}));
    }
    let (active, keys) = w.lock().unwrap().rescue.get(&n).cloned().unwrap_or_default();
    Json(rescue_json(n, active, &keys, None)).into_response()
}

async fn rescue_post(State(w): State<Shared>, h: HeaderMap, Path(n): Path<u64>, body: String) -> Response {
    if let Some(r) = gate(&w, &h, format!("POST /boot/{n}/rescue {body}")) {
        return r;
    }
    if !server_exists(n) {
        return error(StatusCode::NOT_FOUND, "SERVER_NOT_FOUND", "Server not found", json!({}));
    }
    let f = form(&body);
    let os = f.iter().find(|(k, _)| k == "os").map(|(_, v)| v.as_str());
    let keys: Vec<String> = f.iter().filter(|(k, _)| k == "authorized_key[]" || k == "authorized_key").map(|(_, v)| v.clone()).collect();
    if os != Some("linux") {
        return error(StatusCode::BAD_REQUEST, "INVALID_INPUT", "Invalid input parameters", json!({ "missing": null, "invalid": ["os"] }));
    }
    if keys.iter().any(|k| k != KEY) {
        return error(StatusCode::BAD_REQUEST, "INVALID_INPUT", "Invalid input parameters", json!({ "missing": null, "invalid": ["authorized_key"] }));
    }
    let mut world = w.lock().unwrap();
    if world.rescue.get(&n).is_some_and(|(a, _)| *a) {
        return error(StatusCode::CONFLICT, "BOOT_ALREADY_ENABLED", "A boot option is already active", json!({}));
    }
    world.rescue.insert(n, (true, keys.clone()));
    let password = if keys.is_empty() { Some("generated-rescue-password") } else { None };
    Json(rescue_json(n, true, &keys, password)).into_response()
}

async fn reset(State(w): State<Shared>, h: HeaderMap, Path(n): Path<u64>, body: String) -> Response {
    if let Some(r) = gate(&w, &h, format!("POST /reset/{n} {body}")) {
        return r;
    }
    if !server_exists(n) {
        return error(StatusCode::NOT_FOUND, "SERVER_NOT_FOUND", "Server not found", json!({}));
    }
    let t = form(&body).into_iter().find(|(k, _)| k == "type").map(|(_, v)| v).unwrap_or_default();
    if !["sw", "hw", "man", "power"].contains(&t.as_str()) {
        return error(StatusCode::BAD_REQUEST, "INVALID_INPUT", "Invalid input parameters", json!({ "missing": null, "invalid": ["type"] }));
    }
    let mut world = w.lock().unwrap();
    world.resets.push((n, t.clone()));
    // the rescue system is used by the next boot, then Robot deactivates it
    if let Some(r) = world.rescue.get_mut(&n) {
        r.0 = false;
    }
    if let Some(hook) = world.on_reset.as_mut() {
        hook();
    }
    Json(json!({ "reset": { "server_ip": "203.0.113.10", "type": t } })).into_response()
}

/// Starts the stand-in on a free loopback port in its own thread; returns its URL and state.
pub fn start() -> (String, Shared) {
    let world: Shared = Arc::new(Mutex::new(World::default()));
    let app = Router::new()
        .route("/server", get(list))
        .route("/boot/{n}/rescue", get(rescue_get).post(rescue_post))
        .route("/reset/{n}", post(reset))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "NOT_FOUND", "Not found", json!({})) })
        .with_state(world.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().port()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (format!("http://127.0.0.1:{}", rx.recv().unwrap()), world)
}
