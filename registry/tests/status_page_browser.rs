//! The status page in a real browser: headless Chromium (Debian's `chromium`) loads it with the
//! admin token as the HTTP Basic password, from a registry on loopback holding nodes in several
//! states; the rendered DOM must show each node's state, step, progress and result, and a
//! screenshot is written to target/status-page.png (the README's picture comes from there).
//! Skipped when chromium is missing, unless KEEL_REQUIRE_TOOLS is set (.ci/run sets it).

use std::process::Command;

use keel_registry::{router, secret, store::NewNode, AppState, Store};
use serde_json::json;

const ADMIN: &str = "admin-token-for-the-browser-test-0123456789";

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"].iter().find(|b| Command::new("sh").arg("-c").arg(format!("command -v {b}")).output().is_ok_and(|o| o.status.success())).map(|b| b.to_string())
}

/// Three nodes: one installing (step 12 of 27), one installed whose first boot is ready, one failed.
async fn fleet(store: &Store) {
    for (i, host) in ["pve-node-01", "pve-node-02", "pve-node-03"].iter().enumerate() {
        let node = NewNode { hostname: host.to_string(), profile: "pve-node-01".into(), mac: Some(format!("52:54:00:a4:41:0{}", i + 1)), dmi_serial: None, disk_serials: vec![], pxe: false };
        let token = secret::generate();
        store.arm_node(&node, Some(&secret::hash(&token)), keel_registry::store::now() + 600).await.unwrap();
        assert!(store.enroll(host, &secret::hash(&token), &secret::hash("s")).await.unwrap());
    }
    let ev = |seq: i64, event: &str, step: &str, n: u64| json!({ "seq": seq, "event": event, "step": step, "n": n, "total": 27, "title": format!("{step} title"), "ts": "2026-11-27T21:00:00Z" });
    let add = |host: &'static str, events: Vec<serde_json::Value>| async move {
        let rows: Vec<_> = events.iter().enumerate().map(|(i, e)| keel_registry::api::new_event(i, e).unwrap()).collect();
        store.add_events(host, &rows, keel_registry::api::EVENT_QUOTA).await.unwrap();
    };
    let installing = vec![ev(1, "start", "partition.disk-1", 5), ev(2, "done", "partition.disk-1", 5), ev(3, "start", "os.debootstrap", 12)];
    add("pve-node-01", installing).await;
    add("pve-node-02", vec![ev(1, "start", "finish.export", 27), json!({ "seq": 2, "event": "finished", "seconds": 1693.0 })]).await;
    store.set_report("pve-node-02", &json!({ "result": "ok" }).to_string(), "installed", "ok").await.unwrap();
    store.set_boot_report("pve-node-02", &json!({ "phase": "ready", "cluster": { "action": "join", "ok": true } }).to_string(), "ready", "ready").await.unwrap();
    add("pve-node-03", vec![ev(1, "start", "os.pve-key", 9), json!({ "seq": 2, "event": "failed", "step": "os.pve-key", "error": "SHA-512 mismatch" })]).await;
    store.set_report("pve-node-03", &json!({ "result": "failed" }).to_string(), "failed", "failed").await.unwrap();
}

#[test]
fn the_status_page_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(std::env::var_os("KEEL_REQUIRE_TOOLS").is_none(), "chromium is missing (apt-get install chromium)");
        eprintln!("skipped: no chromium");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = format!("sqlite:{}", dir.path().join("registry.db").display());
    let port = rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        fleet(&store).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = router(std::sync::Arc::new(AppState::new(store, ADMIN)));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        port
    });
    let url = format!("http://admin:{ADMIN}@127.0.0.1:{port}/");
    let profile = dir.path().join("chromium-profile");
    let run = |extra: &[&str]| {
        let out = Command::new(&browser)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = run(&["--dump-dom"]);
    assert!(dom.contains("keel-registry: 3 node(s)"), "{dom}");
    for want in [
        "<a href=\"/nodes/pve-node-01\">pve-node-01</a>",
        "<progress value=\"12\" max=\"27\"></progress> 12/27",
        "start os.debootstrap: os.debootstrap title",
        "install ok, first boot ready",
        "<tr class=\"state-ready\">",
        "install failed",
        "failed os.pve-key: SHA-512 mismatch",
    ] {
        assert!(dom.contains(want), "{want:?} not in the page:\n{dom}");
    }
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/status-page.png");
    let _ = std::fs::remove_file(&shot);
    run(&[&format!("--screenshot={}", shot.display()), "--window-size=1100,330"]);
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 10_000, "a page with content, not a blank: {} bytes", png.len());
    // without the token the browser gets no page, only the password question
    let bare = Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("--user-data-dir={}", dir.path().join("p2").display()))
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    let bare = String::from_utf8_lossy(&bare.stdout);
    assert!(!bare.contains("pve-node-01"), "{bare}");
}
