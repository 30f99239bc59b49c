//! The status page: every node with its state, step, progress, last event, result and
//! duration (`GET /`), and one node's event log with its reports (`GET /nodes/{hostname}`).
//! Plain server-rendered HTML that reloads itself every few seconds; no script needed.
//! Admin only: the browser asks for a password, which is the admin token (HTTP Basic).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use crate::api::{Admin, Shared};
use crate::error::ApiError;
use crate::store::{now, Node};

/// Seconds between reloads.
pub const REFRESH_SECS: u32 = 5;

/// HTML text escaping.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A page asks the browser for the admin token (as the password) when it is missing or wrong.
pub async fn nodes_page(admin: Result<Admin, ApiError>, State(st): State<Shared>) -> Result<Response, ApiError> {
    if let Err(e) = admin {
        return Ok(ask_password(e));
    }
    let mut rows = String::new();
    let nodes = st.store.nodes().await?;
    for n in &nodes {
        let last = st.store.last_events(&n.hostname, 1).await?.into_iter().next().and_then(|(_, b)| serde_json::from_str::<Value>(&b).ok());
        let progress = progress_of(&st, n).await?;
        let result = result_of(&st, n).await?;
        rows.push_str(&format!(
            "<tr class=\"state-{state}\"><td><a href=\"/nodes/{h}\">{h}</a></td><td>{state}</td><td>{step}</td><td>{progress}</td><td>{last}</td><td>{result}</td><td>{dur}</td></tr>\n",
            h = esc(&n.hostname),
            state = esc(&n.state),
            step = esc(n.step.as_deref().unwrap_or("")),
            progress = progress,
            last = last.map(|e| esc(&describe(&e))).unwrap_or_default(),
            result = esc(&result),
            dur = duration(n),
        ));
    }
    if nodes.is_empty() {
        rows.push_str("<tr><td colspan=\"7\">no nodes yet: issue a token with POST /v1/admin/nodes</td></tr>\n");
    }
    let body = format!(
        "<table><thead><tr><th>node</th><th>state</th><th>step</th><th>progress</th><th>last event</th><th>result</th><th>duration</th></tr></thead>\n<tbody>\n{rows}</tbody></table>\n"
    );
    Ok(page("keel-registry: nodes", &format!("keel-registry: {} node(s)", nodes.len()), &body))
}

pub async fn node_page(admin: Result<Admin, ApiError>, State(st): State<Shared>, Path(hostname): Path<String>) -> Result<Response, ApiError> {
    if let Err(e) = admin {
        return Ok(ask_password(e));
    }
    let n = st.store.node(&hostname).await?.ok_or_else(|| ApiError::not_found(format!("no node {hostname:?}")))?;
    let mut body = format!(
        "<p><a href=\"/\">all nodes</a></p>\n<p>state <b>{}</b>, step {}, progress {}, duration {}, result {}</p>\n",
        esc(&n.state),
        esc(n.step.as_deref().unwrap_or("-")),
        progress_of(&st, &n).await?,
        duration(&n),
        esc(&result_of(&st, &n).await?)
    );
    if let Some(r) = st.store.boot_report(&hostname).await?.and_then(|t| serde_json::from_str::<Value>(&t).ok()) {
        body.push_str(&format!("<h2>first boot</h2>\n<pre>{}</pre>\n", esc(&serde_json::to_string_pretty(&r).unwrap_or_default())));
    }
    if let Some(r) = st.store.report(&hostname).await?.and_then(|t| serde_json::from_str::<Value>(&t).ok()) {
        let mut brief = r.clone();
        if let Some(o) = brief.as_object_mut() {
            o.remove("inventory");
        }
        body.push_str(&format!("<h2>install report</h2>\n<pre>{}</pre>\n", esc(&serde_json::to_string_pretty(&brief).unwrap_or_default())));
    }
    let events = st.store.events(&hostname, 0, 10000).await?;
    body.push_str(&format!("<h2>events ({})</h2>\n<table><thead><tr><th>seq</th><th>time</th><th>event</th></tr></thead>\n<tbody>\n", events.len()));
    for (seq, b) in &events {
        let e: Value = serde_json::from_str(b).unwrap_or(Value::Null);
        body.push_str(&format!("<tr><td>{seq}</td><td>{}</td><td>{}</td></tr>\n", esc(e["ts"].as_str().unwrap_or("")), esc(&describe(&e))));
    }
    body.push_str("</tbody></table>\n");
    Ok(page(&format!("keel-registry: {}", n.hostname), &n.hostname, &body))
}

/// One line for an event: its kind, step and what it says.
fn describe(e: &Value) -> String {
    let kind = e["event"].as_str().unwrap_or("?");
    let step = e["step"].as_str().map(|s| format!(" {s}")).unwrap_or_default();
    let detail = ["title", "message", "command", "why", "error"].iter().find_map(|k| e[*k].as_str()).map(|d| format!(": {d}")).unwrap_or_default();
    let detail: String = detail.chars().take(200).collect();
    format!("{kind}{step}{detail}")
}

/// "n/total" of the newest step that started, with a bar.
async fn progress_of(st: &Shared, n: &Node) -> Result<String, ApiError> {
    if n.state == "installed" || n.state == "booted" || n.state == "ready" {
        return Ok("<progress value=\"1\" max=\"1\"></progress> done".into());
    }
    for (_, b) in st.store.last_events(&n.hostname, 50).await? {
        let e: Value = serde_json::from_str(&b).unwrap_or(Value::Null);
        if let (Some(i), Some(t)) = (e["n"].as_u64(), e["total"].as_u64()) {
            return Ok(format!("<progress value=\"{i}\" max=\"{t}\"></progress> {i}/{t}"));
        }
    }
    Ok(String::new())
}

/// The install's result and, when there is one, the first boot's.
async fn result_of(st: &Shared, n: &Node) -> Result<String, ApiError> {
    let install = st.store.report(&n.hostname).await?.and_then(|t| serde_json::from_str::<Value>(&t).ok()).and_then(|r| r["result"].as_str().map(String::from));
    let boot = st.store.boot_report(&n.hostname).await?.and_then(|t| serde_json::from_str::<Value>(&t).ok()).and_then(|r| r["phase"].as_str().map(String::from));
    Ok(match (install, boot) {
        (Some(i), Some(b)) => format!("install {i}, first boot {b}"),
        (Some(i), None) => format!("install {i}"),
        (None, Some(b)) => format!("first boot {b}"),
        (None, None) => String::new(),
    })
}

/// From enrollment to the install's end (or now, while it runs).
fn duration(n: &Node) -> String {
    let Some(start) = n.enrolled_at else { return String::new() };
    let end = n.finished_at.unwrap_or_else(now);
    let s = (end - start).max(0);
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn page(title: &str, heading: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
<title>{t}</title><style>{STYLE}</style></head>\n<body><h1>{h}</h1>\n{body}<p class=\"foot\">keel-registry {v}, refreshes every {REFRESH_SECS} s</p></body></html>\n",
        t = esc(title),
        h = esc(heading),
        v = env!("CARGO_PKG_VERSION"),
    );
    Html(html).into_response()
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}\
th,td{border-bottom:1px solid #ccc;padding:.3em .7em;text-align:left;font-size:14px}th{background:#f0f0f0}\
tr.state-failed td,tr.state-boot-failed td{background:#fde2e2}tr.state-installed td,tr.state-ready td,tr.state-booted td{background:#e3f6e3}\
tr.state-installing td{background:#fff7dd}td:first-child,td:nth-child(4),td:last-child{white-space:nowrap}pre{background:#f6f6f6;padding:.6em;font-size:12px}.foot{color:#888;font-size:12px}";

fn ask_password(e: ApiError) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, format!("{}\nThe status page's password is the registry's admin token.\n", e.message)).into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"keel-registry\", charset=\"UTF-8\""));
    r
}
