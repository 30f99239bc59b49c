//! `keel robot` against the Robot stand-in on loopback (tests/robot_standin): the happy path and
//! each documented error, with clear messages and no secret in any output.

mod robot_standin;

use std::process::Command;

use robot_standin::{KEY, PASSWORD, USER};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn keel(url: &str, password: &str, args: &[&str]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_keel"))
        .arg("robot")
        .args(args)
        .env("KEEL_ROBOT_URL", url)
        .env("KEEL_ROBOT_USER", USER)
        .env("KEEL_ROBOT_PASSWORD", password)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let out = Out { code: o.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&o.stdout).into(), stderr: String::from_utf8_lossy(&o.stderr).into() };
    assert!(!out.stdout.contains(password) && !out.stderr.contains(password), "the password leaked:\n{}{}", out.stdout, out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out
}

#[test]
fn servers_rescue_and_reset_on_the_happy_path() {
    let (url, world) = robot_standin::start();
    let list = keel(&url, PASSWORD, &["servers"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stdout.contains("2001") && list.stdout.contains("pve-node-01") && list.stdout.contains("203.0.113.20") && list.stdout.contains("AX41-NVMe"), "{}", list.stdout);

    let r = keel(&url, PASSWORD, &["rescue", "pve-node-01", "--key-fingerprint", KEY]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("rescue system active for the next boot of pve-node-01 (#2001, 203.0.113.10)") && r.stdout.contains(KEY), "{}", r.stdout);
    assert_eq!(world.lock().unwrap().rescue.get(&2001), Some(&(true, vec![KEY.to_string()])));
    // again (a resumed rebuild): Robot says BOOT_ALREADY_ENABLED; with our key that is fine
    let again = keel(&url, PASSWORD, &["rescue", "203.0.113.10", "--key-fingerprint", KEY]);
    assert_eq!(again.code, 0, "{}", again.stderr);

    // no terminal and no --yes: nothing is reset
    let refused = keel(&url, PASSWORD, &["reset", "pve-node-01"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("confirm with --yes"), "{}", refused.stderr);
    assert!(world.lock().unwrap().resets.is_empty());
    let reset = keel(&url, PASSWORD, &["reset", "2001", "--yes"]);
    assert_eq!(reset.code, 0, "{}", reset.stderr);
    assert_eq!(world.lock().unwrap().resets, vec![(2001, "hw".to_string())]);
    // what the stand-in saw: the form fields Robot documents, the key fingerprint as given
    let log = world.lock().unwrap().log.clone();
    assert!(log.contains(&format!("POST /boot/2001/rescue os=linux&authorized_key%5B%5D={}", KEY.replace(':', "%3A"))), "{log:?}");
    assert!(log.contains(&"POST /reset/2001 type=hw".to_string()), "{log:?}");
}

#[test]
fn each_robot_error_says_what_to_do() {
    let (url, world) = robot_standin::start();
    let e = keel(&url, "wrong-password", &["servers"]);
    assert_eq!(e.code, 1);
    assert!(e.stderr.contains("Robot server list: 401 UNAUTHORIZED") && e.stderr.contains("Webservice and app settings"), "{}", e.stderr);

    let e = keel(&url, PASSWORD, &["rescue", "pve-node-09", "--key-fingerprint", KEY]);
    assert_eq!(e.code, 1);
    assert!(e.stderr.contains("no server \"pve-node-09\" in this Robot account") && e.stderr.contains("pve-node-02 #2002 203.0.113.20"), "{}", e.stderr);

    let e = keel(&url, PASSWORD, &["rescue", "pve-node-02", "--key-fingerprint", "00:11:22"]);
    assert_eq!(e.code, 1);
    assert!(e.stderr.contains("400 INVALID_INPUT") && e.stderr.contains("authorized_key"), "{}", e.stderr);

    // another boot configuration already active (not ours): refused, saying so
    world.lock().unwrap().rescue.insert(2002, (true, vec!["ff:ff".into()]));
    let e = keel(&url, PASSWORD, &["rescue", "pve-node-02", "--key-fingerprint", KEY]);
    assert_eq!(e.code, 1);
    assert!(e.stderr.contains("409 BOOT_ALREADY_ENABLED") && e.stderr.contains("another boot configuration is active on server 2002"), "{}", e.stderr);

    world.lock().unwrap().rate_limit_after = Some(0);
    let e = keel(&url, PASSWORD, &["servers"]);
    assert_eq!(e.code, 1);
    assert!(e.stderr.contains("403 RATE_LIMIT_EXCEEDED") && e.stderr.contains("allows 200 requests per 3600 s"), "{}", e.stderr);
    // the password went only into the Authorization header, never into a URL or body
    let w = world.lock().unwrap();
    assert!(w.log.iter().all(|l| !l.contains(PASSWORD)), "{:?}", w.log);
}

#[test]
fn credentials_come_from_a_private_file_or_the_environment_only() {
    let (url, _world) = robot_standin::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("robot.toml");
    std::fs::write(&file, format!("user = \"{USER}\"\npassword = \"{PASSWORD}\"\nurl = \"{url}\"\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_keel")).args(args).env_remove("KEEL_ROBOT_USER").env_remove("KEEL_ROBOT_PASSWORD").env("HOME", dir.path()).env_remove("XDG_CONFIG_HOME").output().unwrap();
        (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = run(&["robot", "servers", "--credentials", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("can be read by others (mode 644)") && err.contains("chmod 600") && !err.contains(PASSWORD), "{err}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, out, err) = run(&["robot", "servers", "--credentials", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pve-node-02"), "{out}");
    // the default place: ~/.config/keel/robot.toml; missing: says where and what
    let (code, _, err) = run(&["robot", "servers"]);
    assert_eq!(code, 1);
    assert!(err.contains(".config/keel/robot.toml is missing") && err.contains("KEEL_ROBOT_USER"), "{err}");
    // there is no flag for the password
    let (code, _, err) = run(&["robot", "servers", "--password", "x"]);
    assert_eq!(code, 2, "{err}");
}
