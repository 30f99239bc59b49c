//! The registry's API, every endpoint with its bad cases, run against SQLite (a temporary file)
//! and, when KEEL_TEST_POSTGRES_URL names a server (.ci/run starts one), against PostgreSQL.
//! Requests go through the router in process (no socket); the load bench uses real HTTP.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use keel_registry::{router, secret, store::NewNode, AppState, Store};
use serde_json::{json, Value};
use tower::ServiceExt;

const ADMIN: &str = "admin-token-0123456789abcdef0123456789abcdef";
const MAC1: &str = "52:54:00:a4:41:01";
const MAC2: &str = "52:54:00:a4:41:02";

fn ws(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

struct Reg {
    app: axum::Router,
    store: Store,
    _dir: Option<tempfile::TempDir>,
}

struct Answer {
    status: StatusCode,
    body: Value,
    text: String,
}

impl Reg {
    async fn sqlite() -> Reg {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("registry.db").display());
        Self::with(&url, Some(dir)).await
    }

    /// A fresh schema on the PostgreSQL server (each test its own database objects).
    async fn postgres(base: &str) -> Reg {
        use sqlx::Connection;
        let name = format!("keel_test_{}", &secret::generate()[..12]);
        let mut c = sqlx::PgConnection::connect(base).await.expect("PostgreSQL server");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut c).await.unwrap();
        let url = match base.rsplit_once('/') {
            Some((head, _)) => format!("{head}/{name}"),
            None => panic!("KEEL_TEST_POSTGRES_URL must name a database: postgres://user@host/db"),
        };
        Self::with(&url, None).await
    }

    async fn with(url: &str, dir: Option<tempfile::TempDir>) -> Reg {
        let store = Store::open(url).await.unwrap();
        let state = Arc::new(AppState {
            token_ttl_secs: 3600,
            public_url: "http://registry.test:8440".into(),
            boot_kernel: Some("http://boot.test/vmlinuz".into()),
            boot_initrd: vec!["http://boot.test/initrd.img".into()],
            tls_fingerprint: Some(format!("sha256:{}", "ab".repeat(32))),
            ..AppState::new(store.clone(), ADMIN)
        });
        Reg { app: router(state), store, _dir: dir }
    }

    async fn call(&self, method: &str, uri: &str, auth: Option<&str>, body: Option<Body>, content_type: &str) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(a) = auth {
            req = req.header("authorization", format!("Bearer {a}"));
        }
        req = req.header("content-type", content_type);
        let res = self.app.clone().oneshot(req.body(body.unwrap_or_else(Body::empty)).unwrap()).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
    }

    async fn json(&self, method: &str, uri: &str, auth: Option<&str>, body: Value) -> Answer {
        self.call(method, uri, auth, Some(Body::from(body.to_string())), "application/json").await
    }

    async fn get(&self, uri: &str, auth: Option<&str>) -> Answer {
        self.call("GET", uri, auth, None, "application/json").await
    }

    async fn put_text(&self, uri: &str, auth: Option<&str>, text: &str) -> Answer {
        self.call("PUT", uri, auth, Some(Body::from(text.to_string())), "application/toml").await
    }

    /// Both seed profiles uploaded.
    async fn with_profiles(self) -> Reg {
        for n in ["pve-node-01", "pve-node-02"] {
            let a = self.put_text(&format!("/v1/admin/profiles/{n}"), Some(ADMIN), &ws(&format!("profiles/{n}.toml"))).await;
            assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        }
        self
    }

    async fn token(&self, host: &str, mac: &str) -> String {
        let a = self.json("POST", "/v1/admin/nodes", Some(ADMIN), json!({ "hostname": host, "profile": host, "mac": mac })).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.body["token"].as_str().unwrap().to_string()
    }

    /// Enrolled: the node's bearer credential `HOST:SECRET`.
    async fn enrolled(&self, host: &str, mac: &str) -> String {
        let token = self.token(host, mac).await;
        let a = self.json("POST", "/v1/enroll", None, json!({ "token": token, "inventory": inventory(mac, "SER-1") })).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        format!("{host}:{}", a.body["secret"].as_str().unwrap())
    }
}

fn inventory(mac: &str, serial: &str) -> Value {
    json!({ "schema": "keel.inventory/1", "nics": [{ "name": "eth0", "mac": mac }], "dmi": { "product_serial": serial } })
}

fn is_error(a: &Answer, status: StatusCode, code: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.body["error"], code, "{}", a.text);
    assert!(a.body["message"].as_str().is_some_and(|m| m.len() > 10), "{}", a.text);
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Reg::sqlite().await).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                match std::env::var("KEEL_TEST_POSTGRES_URL") {
                    Ok(url) => super::$name(super::Reg::postgres(&url).await).await,
                    Err(_) if std::env::var_os("KEEL_REQUIRE_TOOLS").is_some() => panic!("KEEL_TEST_POSTGRES_URL is not set (.ci/run starts a server)"),
                    Err(_) => eprintln!("skipped: KEEL_TEST_POSTGRES_URL is not set"),
                }
            })*
        }
    };
}

suite!(
    admin_endpoints_need_the_admin_token,
    profiles_and_specs_are_validated_like_keel_validate,
    tokens_are_bound_to_a_profile_of_that_node_and_to_hardware,
    enrollment_token_is_single_use_and_checks_the_hardware,
    expired_and_unknown_tokens_are_refused,
    a_node_reads_only_its_own_profile,
    events_are_idempotent_by_sequence_number,
    bad_bodies_get_json_errors,
    the_report_finishes_the_node,
    ipxe_scripts_hold_no_secret_and_a_get_changes_nothing,
    a_stranger_with_the_mac_cannot_enroll_as_a_pxe_node,
    token_lifetimes_are_checked,
    racing_arms_with_one_mac_cannot_both_win,
    node_state_follows_stored_events_only,
    event_quotas_and_a_status_page_that_reads_no_bodies,
    a_node_fetches_its_spec_and_its_clusters_root_key,
    a_node_sees_its_cluster_and_who_created_it,
    a_mac_belongs_to_one_node,
    the_first_boot_report_moves_the_node_to_ready,
    the_status_page_lists_nodes_for_the_admin_only,
    a_replaced_disk_is_an_event_after_the_installs,
);

async fn admin_endpoints_need_the_admin_token(r: Reg) {
    is_error(&r.get("/v1/admin/nodes", None).await, StatusCode::UNAUTHORIZED, "unauthorized");
    is_error(&r.get("/v1/admin/nodes", Some("not-the-token")).await, StatusCode::UNAUTHORIZED, "unauthorized");
    is_error(&r.put_text("/v1/admin/profiles/x", Some("nope"), "x").await, StatusCode::UNAUTHORIZED, "unauthorized");
    let a = r.get("/v1/admin/nodes", Some(ADMIN)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, json!({ "nodes": [] }));
    is_error(&r.get("/v1/nothing-here", None).await, StatusCode::NOT_FOUND, "not_found");
}

async fn profiles_and_specs_are_validated_like_keel_validate(r: Reg) {
    let r = r.with_profiles().await;
    let list = r.get("/v1/admin/profiles", Some(ADMIN)).await;
    let names: Vec<&str> = list.body["profiles"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["pve-node-01", "pve-node-02"]);
    assert_eq!(list.body["profiles"][0]["sha256"], secret::sha256_hex(ws("profiles/pve-node-01.toml").as_bytes()));
    let got = r.get("/v1/admin/profiles/pve-node-01", Some(ADMIN)).await;
    assert_eq!(got.text, ws("profiles/pve-node-01.toml"));
    // a broken profile: file:line:column and the field, as keel validate says it
    let bad = ws("profiles/pve-node-01.toml").replace("ashift = 12", "ashift = 99");
    assert_ne!(bad, ws("profiles/pve-node-01.toml"));
    let a = r.put_text("/v1/admin/profiles/broken", Some(ADMIN), &bad).await;
    is_error(&a, StatusCode::UNPROCESSABLE_ENTITY, "invalid_profile");
    assert!(a.body["message"].as_str().unwrap().contains("broken.toml:"), "{}", a.text);
    assert!(a.body["message"].as_str().unwrap().contains("ashift"), "{}", a.text);
    is_error(&r.put_text("/v1/admin/profiles/not%20ok", Some(ADMIN), &ws("profiles/pve-node-01.toml")).await, StatusCode::BAD_REQUEST, "bad_name");
    is_error(&r.put_text("/v1/admin/profiles/syntax", Some(ADMIN), "[node\nhostname=").await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_profile");
    // specs
    let a = r.put_text("/v1/admin/specs/ax41-nvme", Some(ADMIN), &ws("hardware-specs/ax41-nvme.toml")).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    is_error(&r.put_text("/v1/admin/specs/bad", Some(ADMIN), "what = [").await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_spec");
    let specs = r.get("/v1/admin/specs", Some(ADMIN)).await;
    assert_eq!(specs.body["specs"].as_array().unwrap().len(), 1);
    assert_eq!(r.get("/v1/admin/specs/ax41-nvme", Some(ADMIN)).await.text, ws("hardware-specs/ax41-nvme.toml"));
}

async fn tokens_are_bound_to_a_profile_of_that_node_and_to_hardware(r: Reg) {
    let r = r.with_profiles().await;
    let a = r.json("POST", "/v1/admin/nodes", Some(ADMIN), json!({ "hostname": "pve-node-01", "profile": "nope", "mac": MAC1 })).await;
    is_error(&a, StatusCode::UNPROCESSABLE_ENTITY, "no_profile");
    let a = r.json("POST", "/v1/admin/nodes", Some(ADMIN), json!({ "hostname": "pve-node-01", "profile": "pve-node-02", "mac": MAC1 })).await;
    is_error(&a, StatusCode::UNPROCESSABLE_ENTITY, "profile_mismatch");
    let a = r.json("POST", "/v1/admin/nodes", Some(ADMIN), json!({ "hostname": "pve-node-01", "profile": "pve-node-01" })).await;
    is_error(&a, StatusCode::BAD_REQUEST, "unbound");
    let a = r.json("POST", "/v1/admin/nodes", Some(ADMIN), json!({ "hostname": "pve-node-01", "profile": "pve-node-01", "mac": "zz:zz" })).await;
    is_error(&a, StatusCode::BAD_REQUEST, "bad_mac");
    let a = r.json("POST", "/v1/admin/nodes", Some(ADMIN), json!({ "hostname": "pve-node-01", "profile": "pve-node-01", "mac": MAC1, "ttl_seconds": 5 })).await;
    is_error(&a, StatusCode::BAD_REQUEST, "bad_ttl");
    let a = r.json("POST", "/v1/admin/nodes", Some(ADMIN), json!({ "hostname": "pve-node-01", "profile": "pve-node-01", "mac": "52-54-00-A4-41-01" })).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.body["token"].as_str().unwrap().len(), 64);
    // the token is stored only as its hash
    let n = r.store.node("pve-node-01").await.unwrap().unwrap();
    assert_eq!(n.token_hash.as_deref(), Some(secret::hash(a.body["token"].as_str().unwrap()).as_str()));
    assert_eq!(n.mac.as_deref(), Some(MAC1), "MACs are kept normalised");
    let shown = r.get("/v1/admin/nodes/pve-node-01", Some(ADMIN)).await;
    assert_eq!(shown.body["state"], "waiting");
    assert!(shown.body.get("token_hash").is_none() && !shown.text.contains(a.body["token"].as_str().unwrap()), "{}", shown.text);
    is_error(&r.get("/v1/admin/nodes/pve-node-09", Some(ADMIN)).await, StatusCode::NOT_FOUND, "not_found");
}

async fn enrollment_token_is_single_use_and_checks_the_hardware(r: Reg) {
    let r = r.with_profiles().await;
    let token = r.token("pve-node-01", MAC1).await;
    // other hardware: refused without a word of what the token is bound to, and the token
    // stays usable for the right machine (the third refusal would spend it)
    let a = r.json("POST", "/v1/enroll", None, json!({ "token": token, "inventory": inventory(MAC2, "SER-1") })).await;
    is_error(&a, StatusCode::FORBIDDEN, "forbidden");
    let m = a.body["message"].as_str().unwrap();
    assert!(!m.contains(MAC1) && !m.contains(MAC2) && !m.contains("pve-node-01") && m.contains("2 tries left"), "{}", a.text);
    let a = r.json("POST", "/v1/enroll", None, json!({ "token": token, "inventory": inventory(MAC1, "SER-1") })).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["hostname"], "pve-node-01");
    assert_eq!(a.body["profile"], "pve-node-01");
    let sec = a.body["secret"].as_str().unwrap().to_string();
    assert_eq!(r.store.node("pve-node-01").await.unwrap().unwrap().secret_hash, Some(secret::hash(&sec)));
    // replayed
    let a = r.json("POST", "/v1/enroll", None, json!({ "token": token, "inventory": inventory(MAC1, "SER-1") })).await;
    is_error(&a, StatusCode::CONFLICT, "token_used");
    assert_eq!(r.get("/v1/admin/nodes/pve-node-01", Some(ADMIN)).await.body["state"], "enrolled");
    // a DMI-serial-bound token
    let a = r.json("POST", "/v1/admin/nodes", Some(ADMIN), json!({ "hostname": "pve-node-02", "profile": "pve-node-02", "dmi_serial": "HZ-778899" })).await;
    let t2 = a.body["token"].as_str().unwrap().to_string();
    is_error(&r.json("POST", "/v1/enroll", None, json!({ "token": t2, "inventory": inventory(MAC2, "HZ-000000") })).await, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(r.json("POST", "/v1/enroll", None, json!({ "token": t2, "inventory": inventory(MAC2, "HZ-778899") })).await.status, StatusCode::OK);
}

async fn expired_and_unknown_tokens_are_refused(r: Reg) {
    let r = r.with_profiles().await;
    let token = secret::generate();
    let node = NewNode { hostname: "pve-node-01".into(), profile: "pve-node-01".into(), mac: Some(MAC1.into()), dmi_serial: None, disk_serials: vec![], pxe: false };
    r.store.arm_node(&node, Some(&secret::hash(&token)), keel_registry::store::now() - 1).await.unwrap();
    let a = r.json("POST", "/v1/enroll", None, json!({ "token": token, "inventory": inventory(MAC1, "S") })).await;
    is_error(&a, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(a.body["message"].as_str().unwrap().contains("expired"), "{}", a.text);
    let a = r.json("POST", "/v1/enroll", None, json!({ "token": secret::generate(), "inventory": inventory(MAC1, "S") })).await;
    is_error(&a, StatusCode::UNAUTHORIZED, "unauthorized");
    // re-arming (a rebuild) makes a new token; the old one is dead
    let fresh = r.token("pve-node-01", MAC1).await;
    is_error(&r.json("POST", "/v1/enroll", None, json!({ "token": token, "inventory": inventory(MAC1, "S") })).await, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(r.json("POST", "/v1/enroll", None, json!({ "token": fresh, "inventory": inventory(MAC1, "S") })).await.status, StatusCode::OK);
}

async fn a_node_reads_only_its_own_profile(r: Reg) {
    let r = r.with_profiles().await;
    let a_cred = r.enrolled("pve-node-01", MAC1).await;
    let b_cred = r.enrolled("pve-node-02", MAC2).await;
    let a = r.get("/v1/profile", Some(&a_cred)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.text, ws("profiles/pve-node-01.toml"));
    assert_eq!(r.get(&format!("/v1/profile?mac={MAC1}"), Some(&a_cred)).await.text, ws("profiles/pve-node-01.toml"));
    assert_eq!(r.get("/v1/profile", Some(&b_cred)).await.text, ws("profiles/pve-node-02.toml"));
    // node A asking by node B's MAC
    is_error(&r.get(&format!("/v1/profile?mac={MAC2}"), Some(&a_cred)).await, StatusCode::FORBIDDEN, "forbidden");
    is_error(&r.get("/v1/profile?dmi_serial=OTHER", Some(&a_cred)).await, StatusCode::FORBIDDEN, "forbidden");
    // node A's secret with node B's name, no credentials, the admin token
    let secret_a = a_cred.split_once(':').unwrap().1;
    is_error(&r.get("/v1/profile", Some(&format!("pve-node-02:{secret_a}"))).await, StatusCode::UNAUTHORIZED, "unauthorized");
    is_error(&r.get("/v1/profile", None).await, StatusCode::UNAUTHORIZED, "unauthorized");
    is_error(&r.get("/v1/profile", Some(ADMIN)).await, StatusCode::UNAUTHORIZED, "unauthorized");
}

fn ev(seq: i64, event: &str, step: &str) -> Value {
    json!({ "seq": seq, "event": event, "step": step, "at": "2026-11-27T10:00:00Z" })
}

async fn events_are_idempotent_by_sequence_number(r: Reg) {
    let r = r.with_profiles().await;
    let cred = r.enrolled("pve-node-01", MAC1).await;
    let first = json!({ "events": [ev(1, "started", "wipe"), ev(2, "done", "wipe"), ev(3, "started", "partition")] });
    let a = r.json("POST", "/v1/events", Some(&cred), first.clone()).await;
    assert_eq!(a.body, json!({ "accepted": 3, "duplicates": 0 }), "{}", a.text);
    // a resend (the agent lost the answer) with one new event
    let again = json!({ "events": [ev(2, "done", "wipe"), ev(3, "started", "partition"), ev(1, "started", "wipe"), ev(4, "done", "partition")] });
    let a = r.json("POST", "/v1/events", Some(&cred), again).await;
    assert_eq!(a.body, json!({ "accepted": 1, "duplicates": 3 }), "{}", a.text);
    let list = r.get("/v1/admin/nodes/pve-node-01/events", Some(ADMIN)).await;
    let seqs: Vec<i64> = list.body["events"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let after = r.get("/v1/admin/nodes/pve-node-01/events?after=2&limit=1", Some(ADMIN)).await;
    assert_eq!(after.body["events"], json!([ev(3, "started", "partition")]));
    let node = r.get("/v1/admin/nodes/pve-node-01", Some(ADMIN)).await;
    assert_eq!((node.body["state"].as_str(), node.body["step"].as_str(), node.body["events"].as_i64()), (Some("installing"), Some("partition"), Some(4)));
    assert_eq!(r.store.event_count().await.unwrap(), 4);
    // a rebuild re-arms the node: the new install numbers its events from 1 again
    let cred = r.enrolled("pve-node-01", MAC1).await;
    assert_eq!(r.get("/v1/admin/nodes/pve-node-01", Some(ADMIN)).await.body["events"], 0);
    let a = r.json("POST", "/v1/events", Some(&cred), json!({ "events": [ev(1, "start", "preflight")] })).await;
    assert_eq!(a.body, json!({ "accepted": 1, "duplicates": 0 }), "{}", a.text);
    // events of an unenrolled caller are refused
    is_error(&r.json("POST", "/v1/events", None, first).await, StatusCode::UNAUTHORIZED, "unauthorized");
}

async fn bad_bodies_get_json_errors(r: Reg) {
    let r = r.with_profiles().await;
    let cred = r.enrolled("pve-node-01", MAC1).await;
    let a = r.call("POST", "/v1/events", Some(&cred), Some(Body::from("{\"events\": [")), "application/json").await;
    is_error(&a, StatusCode::BAD_REQUEST, "bad_json");
    let a = r.call("POST", "/v1/enroll", None, Some(Body::from("{}")), "text/plain").await;
    is_error(&a, StatusCode::UNSUPPORTED_MEDIA_TYPE, "bad_json");
    is_error(&r.json("POST", "/v1/enroll", None, json!({ "token": 5 })).await, StatusCode::UNPROCESSABLE_ENTITY, "bad_json");
    is_error(&r.json("POST", "/v1/enroll", None, json!({ "token": "x", "inventory": {}, "extra": 1 })).await, StatusCode::UNPROCESSABLE_ENTITY, "bad_json");
    is_error(&r.json("POST", "/v1/events", Some(&cred), json!({ "events": [{ "event": "done" }] })).await, StatusCode::BAD_REQUEST, "bad_event");
    is_error(&r.json("POST", "/v1/events", Some(&cred), json!({ "events": [{ "seq": 1 }] })).await, StatusCode::BAD_REQUEST, "bad_event");
    // over the body limit
    let big = json!({ "events": [{ "seq": 1, "event": "x", "pad": "a".repeat(keel_registry::api::BODY_LIMIT) }] });
    is_error(&r.json("POST", "/v1/events", Some(&cred), big).await, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    let many: Vec<Value> = (0..1001).map(|i| ev(i, "x", "s")).collect();
    is_error(&r.json("POST", "/v1/events", Some(&cred), json!({ "events": many })).await, StatusCode::PAYLOAD_TOO_LARGE, "too_many");
    assert_eq!(r.store.event_count().await.unwrap(), 0, "nothing of a refused request is stored");
}

async fn the_report_finishes_the_node(r: Reg) {
    let r = r.with_profiles().await;
    let cred = r.enrolled("pve-node-01", MAC1).await;
    is_error(&r.get("/v1/admin/nodes/pve-node-01/report", Some(ADMIN)).await, StatusCode::NOT_FOUND, "not_found");
    is_error(&r.json("POST", "/v1/report", Some(&cred), json!({ "result": "maybe" })).await, StatusCode::BAD_REQUEST, "bad_report");
    is_error(&r.json("POST", "/v1/report", Some(&cred), json!([1, 2])).await, StatusCode::BAD_REQUEST, "bad_report");
    let report = json!({
        "result": "ok", "plan_digest": "sha256:abc", "inventory": inventory(MAC1, "S"),
        "pools": { "rpool": "ONLINE" }, "versions": { "proxmox-ve": "8.2.0" },
        "ssh_host_keys": ["SHA256:xyz (ED25519)"], "step_seconds": { "os.packages": 412.5 }
    });
    let a = r.json("POST", "/v1/report", Some(&cred), report.clone()).await;
    assert_eq!(a.body, json!({ "stored": true, "state": "installed" }), "{}", a.text);
    assert_eq!(r.get("/v1/admin/nodes/pve-node-01/report", Some(ADMIN)).await.body, report);
    let node = r.get("/v1/admin/nodes/pve-node-01", Some(ADMIN)).await;
    assert_eq!(node.body["state"], "installed");
    assert!(node.body["finished_at"].as_i64().is_some());
}

/// A seed profile with its drives' serials pinned: what a PXE node is bound to besides its MAC.
fn pinned_profile(host: &str) -> String {
    ws(&format!("profiles/{host}.toml")).replacen("serials = []", "serials = [\"NVME-A1\", \"NVME-A2\"]", 1)
}

/// An inventory with MAC, DMI serial and drive serials.
fn machine(mac: &str, dmi: &str, disks: &[&str]) -> Value {
    let disks: Vec<Value> = disks.iter().map(|s| json!({ "name": "nvme0n1", "serial": s })).collect();
    json!({ "schema": "keel.inventory/1", "nics": [{ "name": "eth0", "mac": mac }], "dmi": { "product_serial": dmi }, "disks": disks })
}

const NEXT_DEVICE: &str = "#!ipxe\n# keel: no install is armed for this machine; booting the next device\nexit\n";

/// Findings 1 and 3: the iPXE script holds no token and no host name; a GET creates and changes
/// nothing; every MAC without an armed install gets the same answer (no 404/409 oracle).
async fn ipxe_scripts_hold_no_secret_and_a_get_changes_nothing(r: Reg) {
    let r = r.with_profiles().await;
    let a = r.json("POST", "/v1/admin/nodes", Some(ADMIN), json!({ "hostname": "pve-node-01", "profile": "pve-node-01", "pxe": true })).await;
    is_error(&a, StatusCode::BAD_REQUEST, "unbound");
    // the MAC alone is not enough for a PXE node: the network sees it
    let a = r.json("POST", "/v1/admin/nodes", Some(ADMIN), json!({ "hostname": "pve-node-01", "profile": "pve-node-01", "mac": MAC1, "pxe": true })).await;
    is_error(&a, StatusCode::BAD_REQUEST, "unbound");
    assert!(a.text.contains("disks.serials") && a.text.contains("dmi_serial"), "{}", a.text);
    assert_eq!(r.put_text("/v1/admin/profiles/pve-node-01", Some(ADMIN), &pinned_profile("pve-node-01")).await.status, StatusCode::CREATED);
    let a = r.json("POST", "/v1/admin/nodes", Some(ADMIN), json!({ "hostname": "pve-node-01", "profile": "pve-node-01", "mac": MAC1, "pxe": true })).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert!(a.body.get("token").is_none() && a.body["window_closes_at"].as_i64().is_some(), "a PXE node gets no token: {}", a.text);
    let before = r.store.node("pve-node-01").await.unwrap().unwrap();
    assert_eq!(before.token_hash, None);
    r.token("pve-node-02", MAC2).await; // not a PXE node
    is_error(&r.get("/ipxe/not-a-mac", None).await, StatusCode::BAD_REQUEST, "bad_mac");
    let s = r.get("/ipxe/52-54-00-A4-41-01", None).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    assert!(s.text.starts_with("#!ipxe\n") && s.text.contains("kernel http://boot.test/vmlinuz ") && s.text.contains("keel.registry=http://registry.test:8440 "), "{}", s.text);
    assert!(s.text.contains(&format!(" keel.fingerprint=sha256:{} ", "ab".repeat(32))), "the node pins the registry's certificate: {}", s.text);
    assert!(!s.text.contains("keel.token") && !s.text.contains("pve-node-01"), "no token, no host name: {}", s.text);
    // fetched again and again: the same script, and the node unchanged
    for _ in 0..5 {
        assert_eq!(r.get("/ipxe/52:54:00:a4:41:01", None).await.text, s.text);
    }
    let after = r.store.node("pve-node-01").await.unwrap().unwrap();
    assert_eq!((after.token_hash, after.token_expires_at, after.state.as_str()), (None, before.token_expires_at, "waiting"));
    // unknown, not PXE: the same answer, which boots the next device
    for mac in ["02:00:00:00:00:99", MAC2] {
        let a = r.get(&format!("/ipxe/{mac}"), None).await;
        assert_eq!((a.status, a.text.as_str()), (StatusCode::OK, NEXT_DEVICE), "{mac}");
    }
    // the real machine enrolls without a token; then its MAC boots the disk like any other
    let a = r.json("POST", "/v1/enroll", None, json!({ "inventory": machine(MAC1, "HZ-1", &["NVME-A2", "NVME-A1"]) })).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["hostname"], "pve-node-01");
    assert_eq!(r.get("/ipxe/52:54:00:a4:41:01", None).await.text, NEXT_DEVICE);
    // a second enrollment (the same window) loses
    let a = r.json("POST", "/v1/enroll", None, json!({ "inventory": machine(MAC1, "HZ-1", &["NVME-A2", "NVME-A1"]) })).await;
    is_error(&a, StatusCode::UNAUTHORIZED, "unauthorized");
}

/// Finding 1: a stranger who knows the MAC (and reads the script) cannot enroll as the node,
/// read its profile or cluster key, or report for it; finding 2: a refusal names nothing, and
/// the third one closes the window, which only the operator opens again.
async fn a_stranger_with_the_mac_cannot_enroll_as_a_pxe_node(r: Reg) {
    let r = r.with_profiles().await;
    assert_eq!(r.put_text("/v1/admin/profiles/pve-node-01", Some(ADMIN), &pinned_profile("pve-node-01")).await.status, StatusCode::CREATED);
    let arm = json!({ "hostname": "pve-node-01", "profile": "pve-node-01", "mac": MAC1, "dmi_serial": "HZ-1", "pxe": true });
    assert_eq!(r.json("POST", "/v1/admin/nodes", Some(ADMIN), arm.clone()).await.status, StatusCode::CREATED);
    let script = r.get(&format!("/ipxe/{MAC1}"), None).await.text;
    let guesses = [machine(MAC1, "", &[]), machine(MAC1, "HZ-1", &["NVME-A1"]), machine(MAC1, "HZ-2", &["NVME-A1", "NVME-A2"])];
    for (i, g) in guesses.iter().enumerate() {
        let a = r.json("POST", "/v1/enroll", None, json!({ "inventory": g })).await;
        is_error(&a, StatusCode::FORBIDDEN, "forbidden");
        assert!(a.body.get("secret").is_none());
        for leak in [MAC1, "HZ-1", "NVME-A1", "NVME-A2", "pve-node-01"] {
            assert!(!a.text.contains(leak), "refusal {i} names {leak}: {}", a.text);
        }
        assert!(!script.contains("HZ-1") && !script.contains("NVME-A"), "{script}");
    }
    let n = r.store.node("pve-node-01").await.unwrap().unwrap();
    assert_eq!((n.state.as_str(), n.refusals, n.secret_hash), ("locked", 3, None));
    // locked: now even the right machine is refused, and the script boots the disk
    let right = machine(MAC1, "HZ-1", &["NVME-A1", "NVME-A2"]);
    is_error(&r.json("POST", "/v1/enroll", None, json!({ "inventory": right })).await, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(r.get(&format!("/ipxe/{MAC1}"), None).await.text, NEXT_DEVICE);
    // what a node reads or posts needs the node's secret, which no stranger got
    for (m, path) in [("GET", "/v1/profile"), ("GET", "/v1/cluster-key"), ("GET", "/v1/spec"), ("POST", "/v1/report"), ("POST", "/v1/boot")] {
        let a = r.call(m, path, Some("pve-node-01:"), Some(Body::from("{\"result\":\"ok\",\"phase\":\"ready\"}")), "application/json").await;
        is_error(&a, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // the operator arms it again: the refusals start over and the right machine enrolls
    assert_eq!(r.json("POST", "/v1/admin/nodes", Some(ADMIN), arm).await.status, StatusCode::CREATED);
    assert_eq!(r.store.node("pve-node-01").await.unwrap().unwrap().refusals, 0);
    let a = r.json("POST", "/v1/enroll", None, json!({ "inventory": right })).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // a token path node: three mismatches spend the token
    let token = r.token("pve-node-02", MAC2).await;
    for _ in 0..3 {
        is_error(&r.json("POST", "/v1/enroll", None, json!({ "token": token, "inventory": inventory(MAC1, "X") })).await, StatusCode::FORBIDDEN, "forbidden");
    }
    is_error(&r.json("POST", "/v1/enroll", None, json!({ "token": token, "inventory": inventory(MAC2, "X") })).await, StatusCode::UNAUTHORIZED, "unauthorized");
}

/// Finding 10: a token lifetime outside 1 minute .. 30 days is refused, never born expired.
async fn token_lifetimes_are_checked(r: Reg) {
    let r = r.with_profiles().await;
    for ttl in [json!(2), json!(-5), json!(i64::MAX), json!(30 * 86400 + 1)] {
        let a = r.json("POST", "/v1/admin/nodes", Some(ADMIN), json!({ "hostname": "pve-node-01", "profile": "pve-node-01", "mac": MAC1, "ttl_seconds": ttl })).await;
        is_error(&a, StatusCode::BAD_REQUEST, "bad_ttl");
    }
    let a = r.json("POST", "/v1/admin/nodes", Some(ADMIN), json!({ "hostname": "pve-node-01", "profile": "pve-node-01", "mac": MAC1, "ttl_seconds": 30 * 86400 })).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert!(a.body["expires_at"].as_i64().unwrap() > keel_registry::store::now() + 29 * 86400);
    for bad in [2, -5, i64::MAX, 0] {
        assert!(keel_registry::api::check_token_ttl(bad).is_err(), "{bad}");
    }
    assert_eq!(keel_registry::api::check_token_ttl(86400), Ok(86400));
}

/// Finding 11: two arms racing for one MAC: one wins, the other is refused, every time; the
/// store itself refuses a second node with a MAC (the unique index, not the API's check).
async fn racing_arms_with_one_mac_cannot_both_win(r: Reg) {
    let r = r.with_profiles().await;
    let node2 = NewNode { hostname: "pve-node-02".into(), profile: "pve-node-02".into(), mac: Some(MAC1.into()), dmi_serial: None, disk_serials: vec![], pxe: false };
    r.token("pve-node-01", MAC1).await;
    assert!(matches!(r.store.arm_node(&node2, Some("h"), keel_registry::store::now() + 60).await, Err(keel_registry::store::StoreError::MacTaken)));
    for round in 0..10 {
        let mac = format!("02:00:00:00:01:{round:02x}");
        let arm = |host: &'static str| {
            let (app, mac) = (r.app.clone(), mac.clone());
            tokio::spawn(async move {
                let body = json!({ "hostname": host, "profile": host, "mac": mac }).to_string();
                let req = Request::post("/v1/admin/nodes").header("authorization", format!("Bearer {ADMIN}")).header("content-type", "application/json");
                app.oneshot(req.body(Body::from(body)).unwrap()).await.unwrap().status()
            })
        };
        let (a, b) = (arm("pve-node-01"), arm("pve-node-02"));
        let mut got = [a.await.unwrap(), b.await.unwrap()];
        got.sort();
        // the loser may lose to the API's check or to the index: 409 either way
        assert_eq!(got, [StatusCode::CREATED, StatusCode::CONFLICT], "round {round}");
        let holders = [r.store.node("pve-node-01").await.unwrap(), r.store.node("pve-node-02").await.unwrap()]
            .into_iter()
            .flatten()
            .filter(|n| n.mac.as_deref() == Some(mac.as_str()))
            .count();
        assert_eq!(holders, 1, "round {round}");
    }
}

/// Finding 9: the node's state follows the newest stored event, not a duplicate that was not
/// stored, nor an older event that arrived late.
async fn node_state_follows_stored_events_only(r: Reg) {
    let r = r.with_profiles().await;
    let cred = r.enrolled("pve-node-01", MAC1).await;
    let state = || async { r.store.node("pve-node-01").await.unwrap().unwrap() };
    r.json("POST", "/v1/events", Some(&cred), json!({ "events": [ev(1, "started", "wipe"), ev(2, "failed", "wipe")] })).await;
    assert_eq!(state().await.state, "failed");
    // a duplicate seq 2 saying something else is not stored, and moves nothing
    let a = r.json("POST", "/v1/events", Some(&cred), json!({ "events": [ev(2, "started", "partition")] })).await;
    assert_eq!(a.body, json!({ "accepted": 0, "duplicates": 1 }));
    let n = state().await;
    assert_eq!((n.state.as_str(), n.step.as_deref()), ("failed", Some("wipe")));
    // a late event older than the newest stored one is stored, and moves nothing either
    r.json("POST", "/v1/events", Some(&cred), json!({ "events": [ev(7, "failed", "os.packages")] })).await;
    let a = r.json("POST", "/v1/events", Some(&cred), json!({ "events": [ev(5, "started", "os.packages")] })).await;
    assert_eq!(a.body["accepted"], 1);
    let n = state().await;
    assert_eq!((n.state.as_str(), n.step.as_deref(), n.events), ("failed", Some("os.packages"), 4));
    assert_eq!(n.last_event.as_deref(), Some("failed os.packages"));
}

/// Finding 6: one event, and one install's events, have a ceiling; the status page shows an
/// event's summary line, never its body, a page at a time.
async fn event_quotas_and_a_status_page_that_reads_no_bodies(r: Reg) {
    use base64::Engine;
    let r = r.with_profiles().await;
    let cred = r.enrolled("pve-node-01", MAC1).await;
    let pad = "p".repeat(keel_registry::api::MAX_EVENT_BYTES);
    let a = r.json("POST", "/v1/events", Some(&cred), json!({ "events": [{ "seq": 1, "event": "x", "pad": pad }] })).await;
    is_error(&a, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    // near the per-event limit, many times: the byte quota ends it, and nothing of the refused batch stays
    let pad = "q".repeat(keel_registry::api::MAX_EVENT_BYTES - 200);
    let quota = keel_registry::api::EVENT_QUOTA;
    let per_batch = 10usize;
    let mut seq = 0i64;
    let mut refused = None;
    for batch in 0..((quota.bytes as usize) / (pad.len() * per_batch) + 2) {
        let events: Vec<Value> = (0..per_batch).map(|_| { seq += 1; json!({ "seq": seq, "event": "log", "step": "os.packages", "title": "big", "pad": pad }) }).collect();
        let a = r.json("POST", "/v1/events", Some(&cred), json!({ "events": events })).await;
        if a.status != StatusCode::OK {
            is_error(&a, StatusCode::PAYLOAD_TOO_LARGE, "quota");
            refused = Some(batch);
            break;
        }
    }
    assert!(refused.is_some(), "the byte quota never refused a batch");
    let n = r.store.node("pve-node-01").await.unwrap().unwrap();
    assert!(n.event_bytes <= quota.bytes && n.events as usize % per_batch == 0, "{} bytes, {} events", n.event_bytes, n.events);
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN}")));
    for path in ["/", "/nodes/pve-node-01", "/nodes/pve-node-01?page=1", "/nodes/pve-node-01?page=999"] {
        let res = r.app.clone().oneshot(Request::get(path).header("authorization", basic.clone()).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let html = res.into_body().collect().await.unwrap().to_bytes();
        assert!(html.len() < 200_000, "{path}: {} bytes (a body leaked into the page?)", html.len());
        assert!(!String::from_utf8_lossy(&html).contains("qqqqqqqq"), "{path}");
    }
}

/// An OpenSSH private key standing in for `ssh-keygen -t rsa -b 4096 -N '' -f FILE` output.
fn cluster_key() -> String {
    let body: String = (0..40).map(|i| format!("{}\n", "QUJD".repeat(17) + &format!("{i:02}"))).collect();
    format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{body}-----END OPENSSH PRIVATE KEY-----\n")
}

async fn a_node_fetches_its_spec_and_its_clusters_root_key(r: Reg) {
    let r = r.with_profiles().await;
    let node = r.enrolled("pve-node-01", MAC1).await;
    // nothing uploaded yet: 404s that say what to upload
    let a = r.get("/v1/spec", Some(&node)).await;
    is_error(&a, StatusCode::NOT_FOUND, "not_found");
    assert!(a.text.contains("ax41-nvme"), "{}", a.text);
    let a = r.get("/v1/cluster-key", Some(&node)).await;
    is_error(&a, StatusCode::NOT_FOUND, "not_found");
    assert!(a.text.contains("/v1/admin/cluster-keys/prod-cluster"), "{}", a.text);
    assert_eq!(r.put_text("/v1/admin/specs/ax41-nvme", Some(ADMIN), &ws("hardware-specs/ax41-nvme.toml")).await.status, StatusCode::CREATED);
    // the root key: admin only, an OpenSSH private key, never shown back to the admin
    let key = cluster_key();
    let put = |auth: Option<&'static str>, bytes: Vec<u8>| r.call("PUT", "/v1/admin/cluster-keys/prod-cluster", auth, Some(Body::from(bytes)), "text/plain");
    is_error(&put(None, key.clone().into_bytes()).await, StatusCode::UNAUTHORIZED, "unauthorized");
    is_error(&put(Some(ADMIN), b"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ public half".to_vec()).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_cluster_key");
    let a = put(Some(ADMIN), key.clone().into_bytes()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let meta = r.get("/v1/admin/cluster-keys/prod-cluster", Some(ADMIN)).await;
    assert_eq!(meta.body["sha256"], secret::sha256_hex(key.as_bytes()));
    assert!(!meta.text.contains("PRIVATE KEY"), "{}", meta.text);
    // the node gets the spec its profile names and the key
    assert_eq!(r.get("/v1/spec", Some(&node)).await.text, ws("hardware-specs/ax41-nvme.toml"));
    assert_eq!(r.get("/v1/cluster-key", Some(&node)).await.text, key);
    // not without the node's secret
    is_error(&r.get("/v1/cluster-key", None).await, StatusCode::UNAUTHORIZED, "unauthorized");
    is_error(&r.get("/v1/cluster-key", Some("pve-node-01:wrong")).await, StatusCode::UNAUTHORIZED, "unauthorized");
}

/// The cluster view: both nodes of prod-cluster, with the first boot's phase, cluster step and
/// host keys; the first node's "cluster-created" is what the second waits for.
async fn a_node_sees_its_cluster_and_who_created_it(r: Reg) {
    let r = r.with_profiles().await;
    let n1 = r.enrolled("pve-node-01", MAC1).await;
    let n2 = r.enrolled("pve-node-02", MAC2).await;
    let view = r.get("/v1/cluster", Some(&n2)).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.text);
    assert_eq!(view.body["cluster"], "prod-cluster");
    let members = view.body["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "{}", view.text);
    let one = members.iter().find(|m| m["hostname"] == "pve-node-01").unwrap();
    assert_eq!((one["node_id"].as_u64(), one["self"].as_bool(), one["phase"].is_null()), (Some(1), Some(false), true));
    let report = json!({ "phase": "cluster-created", "ssh_host_keys": ["ssh-ed25519 SHA256:abc"], "cluster": { "action": "create", "ok": true } });
    let a = r.json("POST", "/v1/boot", Some(&n1), report).await;
    assert_eq!(a.body["state"], "cluster-created", "{}", a.text);
    let view = r.get("/v1/cluster", Some(&n2)).await;
    let one = view.body["members"].as_array().unwrap().iter().find(|m| m["hostname"] == "pve-node-01").unwrap().clone();
    assert_eq!(one["state"], "cluster-created");
    assert_eq!(one["ssh_host_keys"], json!(["ssh-ed25519 SHA256:abc"]));
    assert_eq!(one["cluster"]["action"], "create");
    assert!(view.body["members"].as_array().unwrap().iter().any(|m| m["hostname"] == "pve-node-02" && m["self"] == true));
    is_error(&r.get("/v1/cluster", None).await, StatusCode::UNAUTHORIZED, "unauthorized");
}

async fn a_mac_belongs_to_one_node(r: Reg) {
    let r = r.with_profiles().await;
    r.token("pve-node-01", MAC1).await;
    let a = r.json("POST", "/v1/admin/nodes", Some(ADMIN), json!({ "hostname": "pve-node-02", "profile": "pve-node-02", "mac": MAC1.to_uppercase() })).await;
    is_error(&a, StatusCode::CONFLICT, "mac_taken");
    assert!(a.text.contains("pve-node-01"), "{}", a.text);
    // re-arming the same node with its MAC is fine
    r.token("pve-node-01", MAC1).await;
}

async fn the_first_boot_report_moves_the_node_to_ready(r: Reg) {
    let r = r.with_profiles().await;
    let node = r.enrolled("pve-node-02", MAC2).await;
    is_error(&r.json("POST", "/v1/boot", Some(&node), json!({ "phase": "dancing" })).await, StatusCode::BAD_REQUEST, "bad_report");
    is_error(&r.json("POST", "/v1/boot", None, json!({ "phase": "booted" })).await, StatusCode::UNAUTHORIZED, "unauthorized");
    is_error(&r.get("/v1/admin/nodes/pve-node-02/boot", Some(ADMIN)).await, StatusCode::NOT_FOUND, "not_found");
    let keys = json!(["ssh-ed25519 SHA256:XNRWIicPW0dPIb3dFfNwaHbdOAP97r4cck7GtCI3OaI"]);
    let a = r.json("POST", "/v1/boot", Some(&node), json!({ "phase": "booted", "ssh_host_keys": keys })).await;
    assert_eq!((a.status, a.body["state"].as_str()), (StatusCode::OK, Some("booted")), "{}", a.text);
    let n = r.get("/v1/admin/nodes/pve-node-02", Some(ADMIN)).await;
    assert_eq!(n.body["state"], "booted");
    let booted_at = n.body["booted_at"].as_i64().unwrap();
    let a = r.json("POST", "/v1/boot", Some(&node), json!({ "phase": "ready", "ssh_host_keys": keys, "cluster": { "action": "join", "ok": true } })).await;
    assert_eq!(a.body["state"], "ready");
    let n = r.get("/v1/admin/nodes/pve-node-02", Some(ADMIN)).await;
    assert_eq!((n.body["state"].as_str(), n.body["booted_at"].as_i64()), (Some("ready"), Some(booted_at)), "first boot time kept");
    let b = r.get("/v1/admin/nodes/pve-node-02/boot", Some(ADMIN)).await;
    assert_eq!(b.body["cluster"]["action"], "join");
    assert_eq!(b.body["ssh_host_keys"], keys);
    // a rebuild (re-arm) forgets the old boot
    r.token("pve-node-02", MAC2).await;
    is_error(&r.get("/v1/admin/nodes/pve-node-02/boot", Some(ADMIN)).await, StatusCode::NOT_FOUND, "not_found");
}

async fn the_status_page_lists_nodes_for_the_admin_only(r: Reg) {
    use base64::Engine;
    let r = r.with_profiles().await;
    // no credentials: the browser is asked for them
    let res = r.app.clone().oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic realm=\"keel-registry\""));
    let basic = |pw: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("admin:{pw}")));
    let page = |path: &'static str, auth: String| {
        let app = r.app.clone();
        async move {
            let res = app.oneshot(Request::get(path).header("authorization", auth).body(Body::empty()).unwrap()).await.unwrap();
            let status = res.status();
            (status, String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap())
        }
    };
    assert_eq!(page("/", basic("wrong")).await.0, StatusCode::UNAUTHORIZED);
    let (status, html) = page("/", basic(ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("no nodes yet"), "{html}");
    assert!(html.contains("http-equiv=\"refresh\""), "{html}");
    // one node installing, with a hostile event text that must come out escaped
    let node = r.enrolled("pve-node-01", MAC1).await;
    let events = json!({ "events": [
        { "seq": 1, "event": "start", "step": "zfs.rpool", "n": 7, "total": 27, "title": "create <rpool> & \"friends\"" },
    ]});
    assert_eq!(r.json("POST", "/v1/events", Some(&node), events).await.status, StatusCode::OK);
    let (_, html) = page("/", basic(ADMIN)).await;
    assert!(html.contains("<a href=\"/nodes/pve-node-01\">pve-node-01</a>"), "{html}");
    assert!(html.contains("<progress value=\"7\" max=\"27\"></progress> 7/27"), "{html}");
    assert!(html.contains("create &lt;rpool&gt; &amp; &quot;friends&quot;") && !html.contains("<rpool>"), "{html}");
    let (status, html) = page("/nodes/pve-node-01", basic(ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("events (1; page 1 of 1)") && html.contains("start zfs.rpool"), "{html}");
    assert_eq!(page("/nodes/nobody", basic(ADMIN)).await.0, StatusCode::NOT_FOUND);
}

/// Root images are files under --images, read whole or from an offset (a resumed download);
/// nothing outside the folder is reachable, and a registry without images says so.
#[tokio::test]
async fn images_are_served_with_range_requests() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(images.join("base.zfs.zst"), &data).unwrap();
    std::fs::write(images.join("base.zfs.zst.json"), b"{\"schema\":\"keel.image/v1\"}").unwrap();
    std::fs::write(dir.path().join("secret.txt"), b"not for nodes").unwrap();
    let store = Store::open(&format!("sqlite:{}", dir.path().join("r.db").display())).await.unwrap();
    let with_images = router(Arc::new(AppState { images_dir: Some(images.clone()), ..AppState::new(store.clone(), ADMIN) }));
    let get = |app: axum::Router, uri: &'static str, range: Option<&'static str>| async move {
        let mut req = Request::get(uri);
        if let Some(r) = range {
            req = req.header("range", r);
        }
        let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = res.status();
        (status, res.into_body().collect().await.unwrap().to_bytes().to_vec())
    };
    let (status, body) = get(with_images.clone(), "/v1/images/base.zfs.zst", None).await;
    assert_eq!((status, body == data), (StatusCode::OK, true));
    let (status, body) = get(with_images.clone(), "/v1/images/base.zfs.zst", Some("bytes=150000-")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert!(body == data[150_000..], "the rest from the offset ({} bytes)", body.len());
    let (status, body) = get(with_images.clone(), "/v1/images/base.zfs.zst.json", None).await;
    assert_eq!((status, String::from_utf8(body).unwrap().contains("keel.image/v1")), (StatusCode::OK, true));
    for outside in ["/v1/images/../secret.txt", "/v1/images/%2e%2e/secret.txt", "/v1/images/..%2fsecret.txt"] {
        let (status, body) = get(with_images.clone(), outside, None).await;
        assert!(status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST, "{outside}: {status}");
        assert!(!String::from_utf8_lossy(&body).contains("not for nodes"), "{outside}");
    }
    let without = router(Arc::new(AppState::new(store, ADMIN)));
    let (status, body) = get(without, "/v1/images/base.zfs.zst", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains("serves no images: start it with --images DIR"));
}

/// `keel disk replace` on an installed node: `disk-replaced` is numbered after the install's
/// events, stored once when sent again, and leaves the node's state as it was.
async fn a_replaced_disk_is_an_event_after_the_installs(r: Reg) {
    let r = r.with_profiles().await;
    let cred = r.enrolled("pve-node-01", MAC1).await;
    let a = r.json("POST", "/v1/events", Some(&cred), json!({ "events": [ev(1, "start", "wipe"), ev(2, "finished", "finish.export")] })).await;
    assert_eq!(a.body["accepted"], 2, "{}", a.text);
    let a = r.json("POST", "/v1/report", Some(&cred), json!({ "result": "ok" })).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let replaced = json!({ "old_serial": "S675NX0T100002", "new_serial": "S675NX0T100009", "survivor_serial": "S675NX0T100001", "started_at": "2026-12-01T21:00:00.000Z", "seconds": 312.4 });
    for stored in [true, false] {
        let a = r.json("POST", "/v1/disk-replaced", Some(&cred), replaced.clone()).await;
        assert_eq!((a.status, a.body["stored"].as_bool()), (StatusCode::OK, Some(stored)), "{}", a.text);
    }
    let list = r.get("/v1/admin/nodes/pve-node-01/events", Some(ADMIN)).await;
    let events = list.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 3, "{}", list.text);
    assert_eq!((events[2]["event"].as_str(), events[2]["old_serial"].as_str(), events[2]["new_serial"].as_str()), (Some("disk-replaced"), Some("S675NX0T100002"), Some("S675NX0T100009")));
    let node = r.get("/v1/admin/nodes/pve-node-01", Some(ADMIN)).await;
    assert_eq!((node.body["state"].as_str(), node.body["events"].as_i64()), (Some("installed"), Some(3)), "{}", node.text);
    // another replace later is a new event
    let later = json!({ "old_serial": "S675NX0T100001", "new_serial": "S675NX0T100010", "survivor_serial": "S675NX0T100009", "started_at": "2027-03-01T08:00:00.000Z", "seconds": 290.0 });
    assert_eq!(r.json("POST", "/v1/disk-replaced", Some(&cred), later).await.body["stored"], true);
    is_error(&r.json("POST", "/v1/disk-replaced", Some(&cred), json!({ "new_serial": "", "survivor_serial": "A", "started_at": "x", "seconds": 1 })).await, StatusCode::BAD_REQUEST, "bad_event");
    is_error(&r.json("POST", "/v1/disk-replaced", None, replaced).await, StatusCode::UNAUTHORIZED, "unauthorized");
}
