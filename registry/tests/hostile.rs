//! A hostile client against a registry on a real socket (findings 4, 5, 7, 8 and 10 of the
//! registry-hardening issue; the API-level ones are in tests/api.rs): idle and half-sent
//! connections are closed, one address cannot hold every connection, a stalled body ends the
//! request, the database files are private, images stay inside their folder, no log line
//! carries a password, and a bad token lifetime stops the server at start.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_registry::server::Limits;
use keel_registry::{router, AppState, Store};

const ADMIN: &str = "hostile-admin-token-0123456789abcdef0123456789";

struct Running {
    port: u16,
    dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

fn start(limits: Limits, body_timeout: Duration) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let db = format!("sqlite:{}", dir.path().join("registry.db").display());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        let state = Arc::new(AppState { images_dir: Some(images), body_read_timeout: body_timeout, ..AppState::new(store, ADMIN) });
        tokio::spawn(keel_registry::server::serve(listener, router(state), limits, None, axum_server::Handle::new()));
    });
    Running { port, dir, _rt: rt }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads until the server closes; the text read.
fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get(port: u16, path: &str) -> String {
    let mut s = connect(port);
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    read_to_close(&mut s)
}

#[test]
fn idle_and_half_sent_connections_are_closed() {
    let limits = Limits { header_read_timeout: Duration::from_secs(1), ..Limits::default() };
    let r = start(limits, Duration::from_secs(1));
    let t = Instant::now();
    let mut idle: Vec<TcpStream> = (0..20).map(|_| connect(r.port)).collect();
    let mut half = connect(r.port);
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap(); // never ends its head
    for s in idle.iter_mut().chain([&mut half]) {
        read_to_close(s);
    }
    let took = t.elapsed();
    assert!(took < Duration::from_secs(5), "closed after {took:?}, the header timeout is 1 s");
    // a kept-alive connection that sends nothing more is closed too
    let mut kept = connect(r.port);
    write!(kept, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let t = Instant::now();
    let text = read_to_close(&mut kept);
    assert!(text.starts_with("HTTP/1.1 200") && t.elapsed() < Duration::from_secs(5), "{text:?} after {:?}", t.elapsed());
    // a body that stalls ends the request with 408
    let mut slow = connect(r.port);
    write!(slow, "POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"inv").unwrap();
    let text = read_to_close(&mut slow);
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    assert!(get(r.port, "/healthz").ends_with("ok\n"));
}

#[test]
fn one_address_cannot_hold_every_connection() {
    let limits = Limits { max_connections: 40, max_connections_per_ip: 8, header_read_timeout: Duration::from_secs(30) };
    let r = start(limits, Duration::from_secs(5));
    let mut held: Vec<TcpStream> = (0..8).map(|_| connect(r.port)).collect();
    for s in &mut held {
        s.write_all(b"GET").unwrap(); // started, never finished: each holds its slot
    }
    std::thread::sleep(Duration::from_millis(500)); // all 8 accepted
    // the 9th from 127.0.0.1 is closed at once, without an answer
    let mut ninth = connect(r.port);
    write!(ninth, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").ok();
    let t = Instant::now();
    assert_eq!(read_to_close(&mut ninth), "");
    assert!(t.elapsed() < Duration::from_secs(5));
    // another address (127.0.0.2, loopback too) is still served
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", r.port).parse().unwrap();
    let mut other = r._rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        s.connect(addr).await.unwrap().into_std().unwrap()
    });
    other.set_nonblocking(false).unwrap();
    other.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(other, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    assert!(read_to_close(&mut other).ends_with("ok\n"));
    // closing one of the held gives its slot back
    held.pop();
    std::thread::sleep(Duration::from_millis(300));
    assert!(get(r.port, "/healthz").ends_with("ok\n"));
    drop(held);
}

#[test]
fn the_database_files_are_private() {
    let r = start(Limits::default(), Duration::from_secs(5));
    // a write, so that the WAL and shared-memory files exist
    let mut s = connect(r.port);
    let profile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles/pve-node-01.toml")).unwrap();
    write!(s, "PUT /v1/admin/profiles/pve-node-01 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{profile}", profile.len()).unwrap();
    assert!(read_to_close(&mut s).starts_with("HTTP/1.1 201"));
    for f in ["registry.db", "registry.db-wal", "registry.db-shm"] {
        let mode = std::fs::metadata(r.dir.path().join(f)).unwrap_or_else(|e| panic!("{f}: {e}")).permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}: {mode:o}");
    }
}

#[test]
fn images_are_only_regular_files_inside_the_folder() {
    let r = start(Limits::default(), Duration::from_secs(5));
    let images = r.dir.path().join("images");
    std::fs::write(images.join("base.zfs.zst"), b"IMAGE").unwrap();
    std::fs::write(images.join(".env"), b"DOTFILE").unwrap();
    std::fs::write(r.dir.path().join("secret"), b"SECRET").unwrap();
    std::os::unix::fs::symlink(r.dir.path().join("secret"), images.join("link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", images.join("passwd")).unwrap();
    assert!(get(r.port, "/v1/images/base.zfs.zst").ends_with("IMAGE"));
    for path in ["/v1/images/link", "/v1/images/passwd", "/v1/images/.env", "/v1/images/..%2fsecret", "/v1/images/%2e%2e/secret", "/v1/images/registry.db"] {
        let text = get(r.port, path);
        assert!(text.starts_with("HTTP/1.1 404") || text.starts_with("HTTP/1.1 400"), "{path}: {text}");
        for leak in ["SECRET", "DOTFILE", "root:x:"] {
            assert!(!text.contains(leak), "{path}: {text}");
        }
    }
}

#[test]
fn no_password_in_what_the_registry_prints() {
    assert_eq!(keel_registry::store::redact_url("postgres://keel:hunter2@db:5432/keel"), "postgres://keel:***@db:5432/keel");
    assert_eq!(keel_registry::store::redact_url("postgres://keel@db/keel"), "postgres://keel@db/keel");
    assert_eq!(keel_registry::store::redact_url("sqlite:/var/lib/r.db"), "sqlite:/var/lib/r.db");
    // a server that cannot be reached: the error names it without the password
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin");
    std::fs::write(&token, ADMIN).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keel-registry"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", "postgres://keel:hunter2@127.0.0.1:1/keel", "--admin-token-file"])
        .arg(&token)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("keel:***@127.0.0.1:1"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn a_bad_token_lifetime_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin");
    std::fs::write(&token, ADMIN).unwrap();
    for ttl in ["2", "-5", "9223372036854775807"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_keel-registry"))
            .args(["serve", "--listen", "127.0.0.1:0", &format!("--token-ttl={ttl}"), "--admin-token-file"])
            .arg(&token)
            .arg("--database")
            .arg(format!("sqlite:{}", dir.path().join("r.db").display()))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && text.contains("--token-ttl") && text.contains("30 days"), "{ttl}: {text}");
    }
}

/// Finding 4's low file limit: a cap that does not fit `ulimit -n` stops the server at start,
/// saying what to do; one that fits starts.
#[test]
fn a_connection_cap_over_the_file_limit_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin");
    std::fs::write(&token, ADMIN).unwrap();
    let run = |cap: &str| {
        let script = format!(
            "ulimit -n 200 && exec timeout 3 {} serve --listen 127.0.0.1:0 --max-connections {cap} --admin-token-file {} --database sqlite:{}/r.db",
            env!("CARGO_BIN_EXE_keel-registry"),
            token.display(),
            dir.path().display()
        );
        std::process::Command::new("sh").arg("-c").arg(script).output().unwrap()
    };
    let out = run("512");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("open-file limit 200") && text.contains("lower it to 136"), "{text}");
    let out = run("100");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("listening on http://127.0.0.1:") && text.contains("at most 100 connections"), "{text}");
}
