//! The status page: every node with its state, step, progress, last event, result and
//! duration (`GET /`), and one node's event log with its reports (`GET /nodes/{hostname}`).
//! Plain server-rendered HTML that reloads itself every few seconds; no script needed.
//! Admin only: the browser asks for a password, which is the admin token (HTTP Basic).

use axum::extract::{Path, Query, State};
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

/// Events per page of a node's event log.
pub const EVENTS_PER_PAGE: i64 = 200;

/// A page asks the browser for the admin token (as the password) when it is missing or wrong.
/// One query: the nodes with what the page shows of each (kept beside the node as events
/// arrive), no event body and no report read.
pub async fn nodes_page(admin: Result<Admin, ApiError>, State(st): State<Shared>) -> Result<Response, ApiError> {
    if let Err(e) = admin {
        return Ok(ask_password(e));
    }
    let mut rows = String::new();
    let nodes = st.store.nodes().await?;
    for n in &nodes {
        rows.push_str(&format!(
            "<tr class=\"state-{state}\"><td><a href=\"/nodes/{h}\">{h}</a></td><td>{state}</td><td>{step}</td><td>{progress}</td><td>{last}</td><td>{result}</td><td>{dur}</td></tr>\n",
            h = esc(&n.hostname),
            state = esc(&n.state),
            step = esc(n.step.as_deref().unwrap_or("")),
            progress = progress_of(n),
            last = esc(n.last_event.as_deref().unwrap_or("")),
            result = esc(&result_of(n)),
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

#[derive(serde::Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    page: i64,
}

/// One node: its reports and one page of its event log (`?page=N`, from 0), each event as the
/// one line stored with it.
pub async fn node_page(admin: Result<Admin, ApiError>, State(st): State<Shared>, Path(hostname): Path<String>, Query(q): Query<PageQuery>) -> Result<Response, ApiError> {
    if let Err(e) = admin {
        return Ok(ask_password(e));
    }
    let n = st.store.node(&hostname).await?.ok_or_else(|| ApiError::not_found(format!("no node {hostname:?}")))?;
    let mut body = format!(
        "<p><a href=\"/\">all nodes</a></p>\n<p>state <b>{}</b>, step {}, progress {}, duration {}, result {}</p>\n",
        esc(&n.state),
        esc(n.step.as_deref().unwrap_or("-")),
        progress_of(&n),
        duration(&n),
        esc(&result_of(&n))
    );
    if n.refusals > 0 {
        body.push_str(&format!("<p class=\"warn\">{} enrollment(s) refused: the machine was not the hardware the node is bound to (the registry's log says what differed)</p>\n", n.refusals));
    }
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
    let pages = ((n.events + EVENTS_PER_PAGE - 1) / EVENTS_PER_PAGE).max(1);
    let page_no = q.page.clamp(0, pages - 1);
    let events = st.store.event_lines(&hostname, page_no * EVENTS_PER_PAGE, EVENTS_PER_PAGE).await?;
    body.push_str(&format!("<h2>events ({}; page {} of {pages})</h2>\n", n.events, page_no + 1));
    let link = |p: i64, label: &str| format!("<a href=\"/nodes/{}?page={p}\">{label}</a>", esc(&n.hostname));
    let mut nav = Vec::new();
    if page_no > 0 {
        nav.push(link(page_no - 1, "older"));
    }
    if page_no + 1 < pages {
        nav.push(link(page_no + 1, "newer"));
    }
    if !nav.is_empty() {
        body.push_str(&format!("<p>{}</p>\n", nav.join(" · ")));
    }
    body.push_str("<table><thead><tr><th>seq</th><th>received</th><th>event</th></tr></thead>\n<tbody>\n");
    for (seq, at, line) in &events {
        let when = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs((*at).max(0) as u64));
        body.push_str(&format!("<tr><td>{seq}</td><td>{when}</td><td>{}</td></tr>\n", esc(line)));
    }
    body.push_str("</tbody></table>\n");
    Ok(page(&format!("keel-registry: {}", n.hostname), &n.hostname, &body))
}

/// One line for an event: its kind, step and what it says (at most 240 characters).
pub fn describe(e: &Value) -> String {
    let kind = e["event"].as_str().unwrap_or("?");
    let step = e["step"].as_str().map(|s| format!(" {s}")).unwrap_or_default();
    let detail = ["title", "message", "command", "why", "error"].iter().find_map(|k| e[*k].as_str()).map(|d| format!(": {d}")).unwrap_or_default();
    let detail: String = detail.chars().take(200).collect();
    format!("{kind}{step}{detail}").chars().take(240).collect()
}

/// "n/total" of the newest step that started, with a bar.
fn progress_of(n: &Node) -> String {
    if n.state == "installed" || n.state == "booted" || n.state == "ready" {
        return "<progress value=\"1\" max=\"1\"></progress> done".into();
    }
    let parsed = n.progress.as_deref().and_then(|p| p.split_once('/')).and_then(|(i, t)| Some((i.parse::<u64>().ok()?, t.parse::<u64>().ok()?)));
    match parsed {
        Some((i, t)) => format!("<progress value=\"{i}\" max=\"{t}\"></progress> {i}/{t}"),
        None => String::new(),
    }
}

/// The install's result and, when there is one, the first boot's.
fn result_of(n: &Node) -> String {
    let some = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    match (some(&n.install_result), some(&n.boot_phase)) {
        (Some(i), Some(b)) => format!("install {i}, first boot {b}"),
        (Some(i), None) => format!("install {i}"),
        (None, Some(b)) => format!("first boot {b}"),
        (None, None) => String::new(),
    }
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
tr.state-installing td{background:#fff7dd}td:first-child,td:nth-child(4),td:last-child{white-space:nowrap}pre{background:#f6f6f6;padding:.6em;font-size:12px}.foot{color:#888;font-size:12px}.warn{color:#a00}";

fn ask_password(e: ApiError) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, format!("{}\nThe status page's password is the registry's admin token.\n", e.message)).into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"keel-registry\", charset=\"UTF-8\""));
    r
}
