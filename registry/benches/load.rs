//! Load benchmark on loopback: N simulated nodes (default 500) enroll at once and stream M
//! progress events each (default 200, one event per request, as the agent sends them while it
//! installs). Prints throughput, p50/p99 latency per request kind, and checks that the stored
//! event count is exact. SQLite by default; PostgreSQL too when KEEL_TEST_POSTGRES_URL is set.
//!   cargo bench -p keel-registry --bench load [-- NODES EVENTS]

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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    Server { url, store }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn run(label: &str, db_url: &str, nodes: usize, events: usize) {
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

    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (host, mac, token) in tokens {
        let http = http.clone();
        let url = srv.url.clone();
        tasks.push(tokio::spawn(async move {
            let mut enroll_lat = Vec::with_capacity(1);
            let mut event_lat = Vec::with_capacity(events);
            let t = Instant::now();
            let r = http
                .post(format!("{url}/v1/enroll"))
                .json(&json!({ "token": token, "inventory": { "nics": [{ "mac": mac }], "dmi": { "product_serial": host } } }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let sec: Value = r.json().await.unwrap();
            enroll_lat.push(t.elapsed());
            let cred = format!("{host}:{}", sec["secret"].as_str().unwrap());
            for seq in 1..=events {
                let ev = json!({ "events": [{ "seq": seq, "event": if seq % 2 == 1 { "started" } else { "done" }, "step": format!("step-{}", seq / 2), "at": "2026-11-27T10:00:00Z" }] });
                let t = Instant::now();
                let r = http.post(format!("{url}/v1/events")).bearer_auth(&cred).json(&ev).send().await.unwrap();
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
        "load {label}: {nodes} nodes x {events} events: {requests} requests in {wall:.1} s = {:.0} req/s ({:.0} events/s); \
         enroll p50 {:.1} ms p99 {:.1} ms; event p50 {:.1} ms p99 {:.1} ms; stored events {stored} (expected {expected}) {}",
        requests as f64 / wall,
        ev.len() as f64 / wall,
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
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        run("sqlite", &format!("sqlite:{}", dir.path().join("load.db").display()), nodes, events).await;
        if let Ok(base) = std::env::var("KEEL_TEST_POSTGRES_URL") {
            use sqlx::Connection;
            let name = format!("keel_load_{}", &secret::generate()[..12]);
            let mut c = sqlx::PgConnection::connect(&base).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut c).await.unwrap();
            let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
            run("postgres", &url, nodes, events).await;
        }
    });
}
