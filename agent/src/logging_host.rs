//! The real host, with every command and its whole output appended to the install's log file
//! (the journal keeps command lines and failures; the log keeps everything).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use keel_installer::exec::host::command_line;
use keel_installer::exec::host::Layer;
use keel_installer::exec::{Host, HostError, Output, SystemHost};

pub struct LoggingHost {
    inner: SystemHost,
    log: Option<std::fs::File>,
}

impl LoggingHost {
    pub fn new(log: &Path) -> LoggingHost {
        if let Some(dir) = log.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).ok();
        LoggingHost { inner: SystemHost, log: file }
    }

    fn write(&mut self, text: &str) {
        if let Some(f) = &mut self.log {
            let _ = f.write_all(text.as_bytes());
        }
    }
}

impl Layer for LoggingHost {
    fn inner(&mut self) -> &mut dyn Host {
        &mut self.inner
    }
    fn command(&mut self, argv: &[String], run: &mut dyn FnMut(&mut dyn Host) -> Result<Output, HostError>) -> Result<Output, HostError> {
        let start = Instant::now();
        let r = run(&mut self.inner);
        let mut text = format!("{} $ {}\n", keel_installer::exec::journal::now(), command_line(argv));
        match &r {
            Ok(o) => {
                text.push_str(&format!("  exit {} after {:.2}s\n", o.code, start.elapsed().as_secs_f64()));
                for (name, body) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
                    for l in body.lines() {
                        text.push_str(&format!("  {name}| {l}\n"));
                    }
                }
            }
            Err(e) => text.push_str(&format!("  error: {e}\n")),
        }
        self.write(&text);
        r
    }
    fn writing(&mut self, path: &Path, len: usize, mode: u32) {
        self.write(&format!("{} write {} ({len} bytes, mode {mode:o})\n", keel_installer::exec::journal::now(), path.display()));
    }
}
