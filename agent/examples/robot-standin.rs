//! The Robot webservice stand-in of the tests (`agent/tests/robot_standin`) as a program, for
//! the QEMU lab's `keel rebuild` scenario (scripts/lab/run-all.sh): it listens on a free
//! loopback port, writes `KEEL_ROBOT_URL`, `KEEL_ROBOT_USER` and `KEEL_ROBOT_PASSWORD` as shell
//! assignments to `--env FILE`, runs `--on-reset COMMAND` (with `sh -c`) on each reset it
//! accepts (the lab powers the guest off and boots it into its rescue system again), and keeps
//! the calls it received ("METHOD path body", one per line) in `--log FILE`.
//!   cargo run -p keel --example robot-standin -- --env F --log F --on-reset 'COMMAND'

#[allow(dead_code)]
#[path = "../tests/robot_standin/mod.rs"]
mod robot_standin;

use std::time::Duration;

fn main() {
    let mut env_file = None;
    let mut log_file = None;
    let mut on_reset = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--env" => env_file = args.next(),
            "--log" => log_file = args.next(),
            "--on-reset" => on_reset = args.next(),
            _ => {
                eprintln!("usage: robot-standin --env FILE --log FILE [--on-reset COMMAND]");
                std::process::exit(2);
            }
        }
    }
    let (Some(env_file), Some(log_file)) = (env_file, log_file) else {
        eprintln!("usage: robot-standin --env FILE --log FILE [--on-reset COMMAND]");
        std::process::exit(2);
    };
    let (url, world) = robot_standin::start();
    if let Some(cmd) = on_reset {
        world.lock().unwrap().on_reset = Some(Box::new(move || {
            match std::process::Command::new("sh").arg("-c").arg(&cmd).status() {
                Ok(s) if s.success() => {}
                other => eprintln!("robot-standin: the reset command {cmd:?} failed: {other:?}"),
            }
        }));
    }
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let env = format!(
        "KEEL_ROBOT_URL={}\nKEEL_ROBOT_USER={}\nKEEL_ROBOT_PASSWORD={}\n",
        quote(&url),
        quote(robot_standin::USER),
        quote(robot_standin::PASSWORD)
    );
    if let Err(e) = std::fs::write(&env_file, env) {
        eprintln!("robot-standin: writing {env_file}: {e}");
        std::process::exit(1);
    }
    eprintln!("robot-standin: listening on {url}");
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let text: String = world.lock().unwrap().log.iter().map(|l| format!("{l}\n")).collect();
        let _ = std::fs::write(&log_file, text);
    }
}
