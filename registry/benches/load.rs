//! Load benchmark on loopback, against the real server (`server::serve`, caps raised for one
//! client address). Two measurements, each on SQLite and, when KEEL_TEST_POSTGRES_URL is set,
//! PostgreSQL:
//! - saturation: N simulated nodes (default 500) enroll at once and stream M progress events
//!   each (default 200, one event per request), every node posting as fast as it can: the
//!   throughput, and latencies that are mostly queueing;
//! - open loop: the same N nodes enroll together, then each sends one event per second on a
//!   fixed schedule (nodes spread over the second) for S seconds (default 30): the offered load
//!   of a fleet installing at once. Latency is measured from each event's scheduled time (a late
//!   send counts as late), so queueing shows; every answer must be 200 and every event stored.
//! Prints throughput, p50/p99 latency per request kind, and checks the stored event count.
//! The saturation run goes twice: one event per request, then BATCH per request (default 10:
//! the agent sends what waits in its spool, up to 100, in one request).
//!   cargo bench -p keel-registry --bench load [-- NODES EVENTS SECONDS BATCH]

use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_registry::{router, secret, AppState, Store};
use serde_json::{json, Value};

const ADMIN: &str = "bench-admin-token-0123456789abcdef0123456789";

struct Server {
    url: String,
    store: Store,
}

async fn start(db_url: &str) -> Server {
    let store = Store::open(db_url).await.expect("database");
    let state = Arc::new(AppState::new(store.clone(), ADMIN));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // every simulated node comes from 127.0.0.1: the per-address cap is raised for them
    let limits = keel_registry::server::Limits { max_connections: 4096, max_connections_per_ip: 4096, ..Default::default() };
    tokio::spawn(keel_registry::server::serve(listener, router(state), limits, None, axum_server::Handle::new()));
    Server { url, store }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// A registry with N armed nodes: (server, http client, [(host, mac, token)]).
async fn setup(db_url: &str, nodes: usize) -> (Server, reqwest::Client, Vec<(String, String, String)>) {
    let srv = start(db_url).await;
    let http = reqwest::Client::builder().pool_max_idle_per_host(nodes).build().unwrap();
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles/pve-node-01.toml")).unwrap();
    // setup (not timed): one profile and one token per simulated node
    let mut tokens = Vec::with_capacity(nodes);
    for i in 0..nodes {
        let host = format!("sim-{i:04}");
        let profile = base.replace("pve-node-01", &host);
        let r = http.put(format!("{}/v1/admin/profiles/{host}", srv.url)).bearer_auth(ADMIN).body(profile).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let mac = format!("02:00:00:00:{:02x}:{:02x}", i / 256, i % 256);
        let r: Value = http
            .post(format!("{}/v1/admin/nodes", srv.url))
            .bearer_auth(ADMIN)
            .json(&json!({ "hostname": host, "profile": host, "mac": mac }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push((host, mac, r["token"].as_str().unwrap().to_string()));
    }
    (srv, http, tokens)
}

async fn enroll(http: &reqwest::Client, url: &str, host: &str, mac: &str, token: &str) -> String {
    let r = http
        .post(format!("{url}/v1/enroll"))
        .json(&json!({ "token": token, "inventory": { "nics": [{ "mac": mac }], "dmi": { "product_serial": host } } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sec: Value = r.json().await.unwrap();
    format!("{host}:{}", sec["secret"].as_str().unwrap())
}

fn one(seq: usize) -> Value {
    json!({ "seq": seq, "event": if seq % 2 == 1 { "started" } else { "done" }, "step": format!("step-{}", seq / 2), "at": "2026-11-27T10:00:00Z" })
}

fn event(seq: usize) -> Value {
    json!({ "events": [one(seq)] })
}

/// Events `first..first+n` in one request: what the agent sends when events wait in its spool
/// (`Spool::flush`, up to 100 per request).
fn batch(first: usize, n: usize) -> Value {
    json!({ "events": (first..first + n).map(one).collect::<Vec<_>>() })
}

/// Open loop: every node enrolls at t=0, then sends event k at t = 1 s + k s + (its offset in
/// the second).
async fn open_loop(label: &str, db_url: &str, nodes: usize, seconds: usize) {
    let (srv, http, tokens) = setup(db_url, nodes).await;
    let t0 = tokio::time::Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::new();
    for (i, (host, mac, token)) in tokens.into_iter().enumerate() {
        let (http, url) = (http.clone(), srv.url.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(t0).await;
            let t = tokio::time::Instant::now();
            let cred = enroll(&http, &url, &host, &mac, &token).await;
            let enroll_lat = t.elapsed();
            let offset = Duration::from_secs_f64(i as f64 / nodes as f64);
            let mut lat = Vec::with_capacity(seconds);
            let mut bad = 0usize;
            for seq in 1..=seconds {
                let due = t0 + Duration::from_secs(seq as u64) + offset;
                tokio::time::sleep_until(due).await;
                let r = http.post(format!("{url}/v1/events")).bearer_auth(&cred).json(&event(seq)).send().await.unwrap();
                if r.status() != 200 {
                    bad += 1;
                }
                let _ = r.bytes().await;
                lat.push(due.elapsed());
            }
            (enroll_lat, lat, bad)
        }));
    }
    let (mut enroll_lat, mut ev, mut bad) = (Vec::new(), Vec::new(), 0);
    for t in tasks {
        let (e, v, b) = t.await.unwrap();
        enroll_lat.push(e);
        ev.extend(v);
        bad += b;
    }
    enroll_lat.sort();
    ev.sort();
    let stored = srv.store.event_count().await.unwrap();
    let expected = (nodes * seconds) as i64;
    println!(
        "open-loop {label}: {nodes} nodes enrolling together, then 1 event/s each for {seconds} s ({nodes} events/s offered): \
         enroll p50 {:.1} ms p99 {:.1} ms max {:.1} ms; event p50 {:.1} ms p99 {:.1} ms max {:.1} ms (from the scheduled time); \
         non-200 answers {bad}; stored events {stored} (expected {expected}) {}",
        percentile(&enroll_lat, 0.5),
        percentile(&enroll_lat, 0.99),
        percentile(&enroll_lat, 1.0),
        percentile(&ev, 0.5),
        percentile(&ev, 0.99),
        percentile(&ev, 1.0),
        if stored == expected && bad == 0 { "exact, none lost" } else { "MISMATCH" }
    );
    assert_eq!((stored, bad), (expected, 0), "stored event count, refused requests");
}

/// Saturation: every node enrolls, then posts its events back to back, `per_request` at a time.
async fn run(label: &str, db_url: &str, nodes: usize, events: usize, per_request: usize) {
    let (srv, http, tokens) = setup(db_url, nodes).await;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (host, mac, token) in tokens {
        let http = http.clone();
        let url = srv.url.clone();
        tasks.push(tokio::spawn(async move {
            let mut enroll_lat = Vec::with_capacity(1);
            let mut event_lat = Vec::with_capacity(events);
            let t = Instant::now();
            let cred = enroll(&http, &url, &host, &mac, &token).await;
            enroll_lat.push(t.elapsed());
            for first in (1..=events).step_by(per_request) {
                let t = Instant::now();
                let body = batch(first, per_request.min(events + 1 - first));
                let r = http.post(format!("{url}/v1/events")).bearer_auth(&cred).json(&body).send().await.unwrap();
                assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
                let _ = r.bytes().await;
                event_lat.push(t.elapsed());
            }
            (enroll_lat, event_lat)
        }));
    }
    let mut enroll = Vec::new();
    let mut ev = Vec::new();
    for t in tasks {
        let (e, v) = t.await.unwrap();
        enroll.extend(e);
        ev.extend(v);
    }
    let wall = t0.elapsed().as_secs_f64();
    enroll.sort();
    ev.sort();
    let stored = srv.store.event_count().await.unwrap();
    let expected = (nodes * events) as i64;
    let requests = enroll.len() + ev.len();
    println!(
        "saturation {label}: {nodes} nodes x {events} events, {per_request} per request: {requests} requests in {wall:.1} s = {:.0} req/s ({:.0} events/s); \
         enroll p50 {:.1} ms p99 {:.1} ms; event p50 {:.1} ms p99 {:.1} ms; stored events {stored} (expected {expected}) {}",
        requests as f64 / wall,
        expected as f64 / wall,
        percentile(&enroll, 0.5),
        percentile(&enroll, 0.99),
        percentile(&ev, 0.5),
        percentile(&ev, 0.99),
        if stored == expected { "exact" } else { "MISMATCH" }
    );
    assert_eq!(stored, expected, "stored event count");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let nodes = args.first().and_then(|a| a.parse().ok()).unwrap_or(500);
    let events = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let seconds = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(30);
    let per_request: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(10).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut dbs = vec![(
            "sqlite",
            [format!("sqlite:{}", dir.path().join("load.db").display()), format!("sqlite:{}", dir.path().join("batched.db").display())],
            format!("sqlite:{}", dir.path().join("open.db").display()),
        )];
        if let Ok(base) = std::env::var("KEEL_TEST_POSTGRES_URL") {
            use sqlx::Connection;
            let mut urls = Vec::new();
            for _ in 0..3 {
                let name = format!("keel_load_{}", &secret::generate()[..12]);
                let mut c = sqlx::PgConnection::connect(&base).await.unwrap();
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut c).await.unwrap();
                urls.push(format!("{}/{name}", base.rsplit_once('/').unwrap().0));
            }
            dbs.push(("postgres", [urls[0].clone(), urls[2].clone()], urls[1].clone()));
        }
        for (label, saturation_db, open_db) in dbs {
            if seconds > 0 {
                open_loop(label, &open_db, nodes, seconds).await;
            }
            if events > 0 {
                run(label, &saturation_db[0], nodes, events, 1).await;
                if per_request > 1 {
                    run(label, &saturation_db[1], nodes, events, per_request).await;
                }
            }
        }
    });
}
